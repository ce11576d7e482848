//! RobustBench's DeepMind WideResNet (`DMWideResNet`, robustbench/model_zoo/architectures/
//! dm_wide_resnet.py), the architecture of most strong CIFAR L∞ teachers there: names init_conv,
//! layer.{0,1,2}.block.I.{batchnorm_0, conv_0, batchnorm_1, conv_1, shortcut}, batchnorm, logits.
//! The input is standardised inside the model; blocks are pre-activation ones whose stride-2
//! convolution reads its input padded by 0 left/top and 1 right/bottom; the activation is ReLU or
//! Swish; the head is an 8×8 average pool.
use super::arch::{Activation, ArchName, Fields, NO_ACTIVATION, Spec, robustbench_constants};
use super::blocks::wide_layout;
use super::detect::Shapes;
use super::layers::{Bn, Builder, Conv, ConvBn, Ctx, Linear, Net};
use crate::error::{Error, Result};
use crate::ops::elementwise::{Standardize, standardize, swish};
use crate::ops::pad::{Pad, pad2d};
use crate::ops::pool::avgpool;
use crate::tape::Var;
use serde_json::{Value, json};

/// The padding of a stride-2 block's first convolution (TensorFlow's `SAME`).
const SAME_STRIDE_2: Pad = Pad { top: 0, bottom: 1, left: 0, right: 1 };

struct Block {
    bn0: Bn,
    /// conv_0 with batchnorm_1 after it.
    conv0: ConvBn,
    conv1: Conv,
    shortcut: Option<Conv>,
    stride: usize,
}

impl Block {
    fn new(b: &mut Builder, p: &str, cin: usize, cout: usize, stride: usize) -> Self {
        let bn0 = b.bn(&format!("{p}.batchnorm_0"), cin);
        // Stride 1 pads 1 all round, which the convolution's own padding does; stride 2 pads
        // explicitly and convolves without.
        let pad = if stride == 1 { 1 } else { 0 };
        let conv0 =
            b.conv_bn(&format!("{p}.conv_0"), &format!("{p}.batchnorm_1"), (cin, cout), 3, stride, 1).padded(pad);
        let conv1 = b.conv(&format!("{p}.conv_1"), cout, cout, 3, 1, 1);
        let shortcut = (cin != cout).then(|| b.conv(&format!("{p}.shortcut"), cin, cout, 1, stride, 1));
        Block { bn0, conv0, conv1, shortcut, stride }
    }

    fn forward(&self, cx: &mut Ctx, x: &Var, act: Activation) -> Var {
        let a = bn_act(cx, &self.bn0, x, act);
        // With a projection the shortcut reads the activated input, without it the raw one.
        let sc = match &self.shortcut {
            Some(conv) => conv.fwd(cx, &a),
            None => x.clone(),
        };
        let v = if self.stride == 2 { pad2d(cx.tape, &a, SAME_STRIDE_2) } else { a };
        let h = match act {
            Activation::Relu => self.conv0.fwd(cx, &v, true),
            Activation::Swish => {
                let h = self.conv0.fwd(cx, &v, false);
                swish(cx.tape, &h)
            }
        };
        let h = self.conv1.fwd(cx, &h);
        cx.add(&sc, &h)
    }
}

/// act(BN(x)): one fused op for ReLU, BN then Swish otherwise.
fn bn_act(cx: &mut Ctx, bn: &Bn, x: &Var, act: Activation) -> Var {
    match act {
        Activation::Relu => bn.relu(cx, x),
        Activation::Swish => {
            let h = bn.fwd(cx, x);
            swish(cx.tape, &h)
        }
    }
}

pub struct DmWideResNet {
    input: Standardize,
    init_conv: Conv,
    blocks: Vec<Block>,
    bn: Bn,
    logits: Linear,
    act: Activation,
}

impl DmWideResNet {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        b: &mut Builder,
        in_channels: usize,
        depth: usize,
        width: usize,
        classes: usize,
        act: Activation,
        input: Standardize,
    ) -> Self {
        let (ch, layout) = wide_layout(depth, width);
        let init_conv = b.conv("init_conv", in_channels, ch[0], 3, 1, 1);
        let blocks = layout
            .into_iter()
            .map(|k| Block::new(b, &format!("layer.{}.block.{}", k.group, k.index), k.cin, k.cout, k.stride))
            .collect();
        DmWideResNet {
            input,
            init_conv,
            blocks,
            bn: b.bn("batchnorm", ch[3]),
            logits: b.linear("logits", ch[3], classes),
            act,
        }
    }
}

impl Net for DmWideResNet {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = standardize(cx.tape, x, &self.input);
        let mut h = self.init_conv.fwd(cx, &h);
        for blk in &self.blocks {
            h = blk.forward(cx, &h, self.act);
        }
        let h = bn_act(cx, &self.bn, &h, self.act);
        // an 8×8 average pool on the 8×8 map of a 32×32 input (`Model::check_input`)
        let h = avgpool(cx.tape, &h);
        self.logits.fwd(cx, &h)
    }
}

/// DeepMind WideResNet-depth-width (depth = 6n + 4): pre-activation blocks whose stride-2
/// convolutions pad 0 left/top and 1 right/bottom, ReLU or Swish, the input standardised inside
/// the model by per-channel `mean` and `std`, an 8×8 average-pool head (32×32 inputs).
#[derive(Clone, Debug, PartialEq)]
pub struct DmWideResNetCfg {
    pub in_channels: usize,
    pub depth: usize,
    pub width: usize,
    pub classes: usize,
    pub activation: Activation,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Spec for DmWideResNetCfg {
    const NAME: ArchName = ArchName::DmWideResNet;
    fn in_channels(&self) -> usize {
        self.in_channels
    }
    fn classes(&self) -> usize {
        self.classes
    }
    /// WRN-28-10 by default, with RobustBench's mean and std for its class count; the activation
    /// has no default.
    fn from_config(c: &Fields) -> Result<Self> {
        let activation = match c.get("activation") {
            Some(Value::String(a)) => a.parse()?,
            Some(v) => return Err(Error::Msg(format!("config `activation`: expected relu or swish, found {v}"))),
            None => return Err(Error::Msg(NO_ACTIVATION.into())),
        };
        let classes = c.classes()?;
        let floats = |k: &str, default: Option<[f32; 3]>| -> Result<Vec<f32>> {
            match (c.get(k), default) {
                (Some(v), _) => serde_json::from_value(v.clone())
                    .map_err(|_| Error::Msg(format!("config `{k}`: expected a list of numbers, found {v}"))),
                (None, Some(d)) => Ok(d.to_vec()),
                (None, None) => Err(Error::Msg(format!(
                    "dm_wide_resnet: no `{k}` for {classes} classes (RobustBench's constants are for 10 and 100): pass --mean and --std"
                ))),
            }
        };
        let (mean, std) = robustbench_constants(classes).unzip();
        Ok(DmWideResNetCfg {
            in_channels: c.count("in_channels", 3)?,
            depth: c.count("depth", 28)?,
            width: c.count("width", 10)?,
            classes,
            activation,
            mean: floats("mean", mean)?,
            std: floats("std", std)?,
        })
    }
    fn config(&self) -> Value {
        let DmWideResNetCfg { in_channels, depth, width, classes, activation, mean, std } = self;
        json!({"in_channels": in_channels, "depth": depth, "width": width, "classes": classes,
               "activation": activation.name(), "mean": mean, "std": std})
    }
    fn invalid(&self) -> Option<String> {
        let DmWideResNetCfg { in_channels, depth, width, mean, std, .. } = self;
        if *depth < 10 || (depth - 4) % 6 != 0 || *width == 0 {
            Some(format!("depth {depth} must be 6n+4 (n ≥ 1) and width {width} ≥ 1"))
        } else if mean.len() != *in_channels || std.len() != *in_channels || std.iter().any(|&s| s.is_nan() || s <= 0.0)
        {
            Some(format!("mean {mean:?} and std {std:?} need one value per input channel ({in_channels}), std > 0"))
        } else {
            None
        }
    }
    fn recognises(t: &Shapes) -> bool {
        t.has("init_conv.weight") && t.has("layer.0.block.0.conv_0.weight")
    }
    /// Depth, width and classes; the activation, mean and std are not in the tensors.
    fn read(t: &Shapes) -> Result<Value> {
        let depth = 6 * t.count(|i| format!("layer.0.block.{i}.conv_0.weight")) + 4;
        let width = t.dim("layer.0.block.0.conv_0.weight", 0)? / 16;
        let (in_channels, classes) = (t.dim("init_conv.weight", 1)?, t.dim("logits.weight", 0)?);
        Ok(json!({"in_channels": in_channels, "depth": depth, "width": width, "classes": classes}))
    }
    fn misfit(&self, h: usize, w: usize) -> Option<String> {
        ((h, w) != (32, 32)).then(|| "dm_wide_resnet's 8x8 average-pool head needs 32x32 images".to_string())
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net> {
        let input = Standardize { mean: self.mean.clone(), std: self.std.clone() };
        Box::new(DmWideResNet::new(b, self.in_channels, self.depth, self.width, self.classes, self.activation, input))
    }
}
