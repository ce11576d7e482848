//! CIFAR ResNet-18 (post-activation BasicBlocks), names as in the RSLAD / ARD code:
//! conv1, bn1, layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, linear.
use super::arch::{ArchName, Fields, Spec};
use super::blocks::stages;
use super::detect::Shapes;
use super::layers::{Builder, ConvBn, Ctx, Linear, Net};
use crate::error::Result;
use crate::ops::pool::avgpool;
use crate::tape::Var;
use serde_json::{Value, json};

struct Block {
    conv1: ConvBn,
    conv2: ConvBn,
    shortcut: Option<ConvBn>,
}

impl Block {
    fn new(b: &mut Builder, p: &str, cin: usize, planes: usize, stride: usize) -> Self {
        let shortcut = (stride != 1 || cin != planes)
            .then(|| b.conv_bn(&format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), (cin, planes), 1, stride, 1));
        Block {
            conv1: b.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"), (cin, planes), 3, stride, 1),
            conv2: b.conv_bn(&format!("{p}.conv2"), &format!("{p}.bn2"), (planes, planes), 3, 1, 1),
            shortcut,
        }
    }

    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = self.conv1.fwd(cx, x, true);
        let h = self.conv2.fwd(cx, &h, false);
        let sc = match &self.shortcut {
            Some(conv) => conv.fwd(cx, x, false),
            None => x.clone(),
        };
        let y = cx.add(&h, &sc);
        cx.relu(&y)
    }
}

pub struct ResNet18 {
    stem: ConvBn,
    blocks: Vec<Block>,
    linear: Linear,
}

impl ResNet18 {
    pub fn new(b: &mut Builder, in_channels: usize, width: usize, classes: usize) -> Self {
        let stem = b.conv_bn("conv1", "bn1", (in_channels, width), 3, 1, 1);
        let blocks = stages(b, width, Block::new);
        ResNet18 { stem, blocks, linear: b.linear("linear", 8 * width, classes) }
    }
}

impl Net for ResNet18 {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let mut h = self.stem.fwd(cx, x, true);
        for blk in &self.blocks {
            h = blk.forward(cx, &h);
        }
        let h = avgpool(cx.tape, &h);
        self.linear.fwd(cx, &h)
    }
}

/// CIFAR ResNet-18 (3x3 stem, no max-pool), post-activation blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNet18Cfg {
    pub in_channels: usize,
    /// the stem's width; stages are width·{1, 2, 4, 8}
    pub width: usize,
    pub classes: usize,
}

impl Spec for ResNet18Cfg {
    const NAME: ArchName = ArchName::ResNet18;
    fn in_channels(&self) -> usize {
        self.in_channels
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn from_config(c: &Fields) -> Result<Self> {
        Ok(ResNet18Cfg { in_channels: c.count("in_channels", 3)?, width: c.count("width", 64)?, classes: c.classes()? })
    }
    fn config(&self) -> Value {
        json!({"in_channels": self.in_channels, "width": self.width, "classes": self.classes})
    }
    fn invalid(&self) -> Option<String> {
        (self.width == 0).then(|| "width must be positive".to_string())
    }
    fn recognises(t: &Shapes) -> bool {
        // PreActResNet-18 has the same blocks and a final `bn`
        t.has("layer1.0.conv1.weight") && !t.has("bn.weight")
    }
    fn read(t: &Shapes) -> Result<Value> {
        let (in_channels, width) = (t.dim("conv1.weight", 1)?, t.dim("conv1.weight", 0)?);
        Ok(json!({"in_channels": in_channels, "width": width, "classes": t.dim("linear.weight", 0)?}))
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net> {
        Box::new(ResNet18::new(b, self.in_channels, self.width, self.classes))
    }
}
