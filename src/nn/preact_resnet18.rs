//! PreActResNet-18, RobustBench names: conv1, layer{1..4}.{0,1}.{bn1,conv1,bn2,conv2,shortcut.0},
//! bn, linear. The projection shortcut reads the pre-activated input, as in the reference.
use super::layers::{Bn, Builder, Conv, Ctx, Linear};
use super::model::Net;
use super::resnet18::stages;
use crate::ops::pool::avgpool;
use crate::tape::Var;

/// The pre-activation block, shared with WideResNet: relu(bn1(x)) feeds conv1 and, when the shape
/// changes, the projection shortcut; otherwise the shortcut is x itself.
pub(super) struct PreActBlock {
    bn1: Bn,
    conv1: Conv,
    bn2: Bn,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl PreActBlock {
    /// `shortcut` names the projection conv: `shortcut.0` here, `convShortcut` in WideResNet.
    pub(super) fn new(b: &mut Builder, p: &str, cin: usize, planes: usize, stride: usize, shortcut: &str) -> Self {
        PreActBlock {
            bn1: b.bn(&format!("{p}.bn1"), cin),
            conv1: b.conv(&format!("{p}.conv1"), cin, planes, 3, stride, 1),
            bn2: b.bn(&format!("{p}.bn2"), planes),
            conv2: b.conv(&format!("{p}.conv2"), planes, planes, 3, 1, 1),
            shortcut: (stride != 1 || cin != planes)
                .then(|| b.conv(&format!("{p}.{shortcut}"), cin, planes, 1, stride, 1)),
        }
    }

    pub(super) fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let a = self.bn1.relu(cx, x);
        let sc = match &self.shortcut {
            Some(conv) => conv.fwd(cx, &a),
            None => x.clone(),
        };
        let h = self.conv1.fwd(cx, &a);
        let h = self.bn2.relu(cx, &h);
        let h = self.conv2.fwd(cx, &h);
        cx.add(&h, &sc)
    }
}

pub struct PreActResNet18 {
    conv1: Conv,
    blocks: Vec<PreActBlock>,
    bn: Bn,
    linear: Linear,
}

impl PreActResNet18 {
    pub fn new(b: &mut Builder, in_channels: usize, width: usize, classes: usize) -> Self {
        let conv1 = b.conv("conv1", in_channels, width, 3, 1, 1);
        let blocks =
            stages(b, width, |b, p, cin, planes, stride| PreActBlock::new(b, p, cin, planes, stride, "shortcut.0"));
        PreActResNet18 { conv1, blocks, bn: b.bn("bn", 8 * width), linear: b.linear("linear", 8 * width, classes) }
    }
}

impl Net for PreActResNet18 {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let mut h = self.conv1.fwd(cx, x);
        for blk in &self.blocks {
            h = blk.forward(cx, &h);
        }
        let h = self.bn.relu(cx, &h);
        let h = avgpool(cx.tape, &h);
        self.linear.fwd(cx, &h)
    }
}
