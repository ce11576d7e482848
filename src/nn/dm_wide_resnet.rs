//! RobustBench's DeepMind WideResNet (`DMWideResNet`, robustbench/model_zoo/architectures/
//! dm_wide_resnet.py), the architecture of most strong CIFAR L∞ teachers there: names init_conv,
//! layer.{0,1,2}.block.I.{batchnorm_0, conv_0, batchnorm_1, conv_1, shortcut}, batchnorm, logits.
//! The input is standardised inside the model; blocks are pre-activation ones whose stride-2
//! convolution reads its input padded by 0 left/top and 1 right/bottom; the activation is ReLU or
//! Swish; the head is an 8×8 average pool.
use super::arch::Activation;
use super::blocks::wide_layout;
use super::layers::{Bn, Builder, Conv, ConvBn, Ctx, Linear, Net};
use crate::ops::elementwise::{Standardize, standardize, swish};
use crate::ops::pad::{Pad, pad2d};
use crate::ops::pool::avgpool;
use crate::tape::Var;

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
