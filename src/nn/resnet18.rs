//! CIFAR ResNet-18 (post-activation BasicBlocks), names as in the RSLAD / ARD code:
//! conv1, bn1, layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, linear.
use super::blocks::stages;
use super::layers::{Builder, ConvBn, Ctx, Linear, Net};
use crate::ops::pool::avgpool;
use crate::tape::Var;

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
