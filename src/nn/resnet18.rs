//! CIFAR ResNet-18 (post-activation BasicBlocks), names as in the RSLAD / ARD code:
//! conv1, bn1, layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, linear.
use super::blocks::stages;
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use crate::ops::pool::avgpool;
use crate::tape::Var;

struct Block {
    conv1: Conv,
    bn1: Bn,
    conv2: Conv,
    bn2: Bn,
    shortcut: Option<(Conv, Bn)>,
}

impl Block {
    fn new(b: &mut Builder, p: &str, cin: usize, planes: usize, stride: usize) -> Self {
        let shortcut = (stride != 1 || cin != planes).then(|| {
            (b.conv(&format!("{p}.shortcut.0"), cin, planes, 1, stride, 1), b.bn(&format!("{p}.shortcut.1"), planes))
        });
        Block {
            conv1: b.conv(&format!("{p}.conv1"), cin, planes, 3, stride, 1),
            bn1: b.bn(&format!("{p}.bn1"), planes),
            conv2: b.conv(&format!("{p}.conv2"), planes, planes, 3, 1, 1),
            bn2: b.bn(&format!("{p}.bn2"), planes),
            shortcut,
        }
    }

    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = self.conv1.fwd(cx, x);
        let h = self.bn1.relu(cx, &h);
        let h = self.conv2.fwd(cx, &h);
        let h = self.bn2.fwd(cx, &h);
        let sc = match &self.shortcut {
            Some((conv, bn)) => {
                let s = conv.fwd(cx, x);
                bn.fwd(cx, &s)
            }
            None => x.clone(),
        };
        let y = cx.add(&h, &sc);
        cx.relu(&y)
    }
}

pub struct ResNet18 {
    conv1: Conv,
    bn1: Bn,
    blocks: Vec<Block>,
    linear: Linear,
}

impl ResNet18 {
    pub fn new(b: &mut Builder, in_channels: usize, width: usize, classes: usize) -> Self {
        let conv1 = b.conv("conv1", in_channels, width, 3, 1, 1);
        let bn1 = b.bn("bn1", width);
        let blocks = stages(b, width, Block::new);
        ResNet18 { conv1, bn1, blocks, linear: b.linear("linear", 8 * width, classes) }
    }
}

impl Net for ResNet18 {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = self.conv1.fwd(cx, x);
        let mut h = self.bn1.relu(cx, &h);
        for blk in &self.blocks {
            h = blk.forward(cx, &h);
        }
        let h = avgpool(cx.tape, &h);
        self.linear.fwd(cx, &h)
    }
}
