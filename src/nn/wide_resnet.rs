//! WideResNet-depth-widen, RobustBench / TRADES names: conv1, block{1,2,3}.layer.i.{bn1,conv1,bn2,
//! conv2,convShortcut}, bn1, fc. TRADES checkpoints also carry an unused `sub_block1`; the loader
//! reports it as extra.
use super::blocks::{PreActBlock, wide_layout};
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use crate::ops::pool::avgpool;
use crate::tape::Var;

pub struct WideResNet {
    conv1: Conv,
    blocks: Vec<PreActBlock>,
    bn1: Bn,
    fc: Linear,
}

impl WideResNet {
    pub fn new(b: &mut Builder, in_channels: usize, depth: usize, widen: usize, classes: usize) -> Self {
        let (ch, layout) = wide_layout(depth, widen);
        let conv1 = b.conv("conv1", in_channels, ch[0], 3, 1, 1);
        let blocks = layout
            .into_iter()
            .map(|k| {
                PreActBlock::new(
                    b,
                    &format!("block{}.layer.{}", k.group + 1, k.index),
                    k.cin,
                    k.cout,
                    k.stride,
                    "convShortcut",
                )
            })
            .collect();
        WideResNet { conv1, blocks, bn1: b.bn("bn1", ch[3]), fc: b.linear("fc", ch[3], classes) }
    }
}

impl Net for WideResNet {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let mut h = self.conv1.fwd(cx, x);
        for blk in &self.blocks {
            h = blk.forward(cx, &h);
        }
        let h = self.bn1.relu(cx, &h);
        let h = avgpool(cx.tape, &h);
        self.fc.fwd(cx, &h)
    }
}
