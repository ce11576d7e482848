//! PreActResNet-18, RobustBench names: conv1, layer{1..4}.{0,1}.{bn1,conv1,bn2,conv2,shortcut.0},
//! bn, linear. The projection shortcut reads the pre-activated input, as in the reference.
use super::blocks::{PreActBlock, stages};
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use crate::ops::pool::avgpool;
use crate::tape::Var;

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
