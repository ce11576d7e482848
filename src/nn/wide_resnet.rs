//! WideResNet-depth-widen, RobustBench / TRADES names: conv1, block{1,2,3}.layer.i.{bn1,conv1,bn2,
//! conv2,convShortcut}, bn1, fc. TRADES checkpoints also carry an unused `sub_block1`; the loader
//! reports it as extra.
use super::arch::{ArchName, Fields, Spec};
use super::blocks::{PreActBlock, wide_layout};
use super::detect::Shapes;
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use crate::error::Result;
use crate::ops::pool::avgpool;
use crate::tape::Var;
use serde_json::{Value, json};

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

/// WideResNet-depth-widen (depth = 6n + 4), RobustBench / TRADES names.
#[derive(Clone, Debug, PartialEq)]
pub struct WideResNetCfg {
    pub in_channels: usize,
    pub depth: usize,
    pub widen: usize,
    pub classes: usize,
}

impl Spec for WideResNetCfg {
    const NAME: ArchName = ArchName::WideResNet;
    fn in_channels(&self) -> usize {
        self.in_channels
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn from_config(c: &Fields) -> Result<Self> {
        let (in_channels, depth, widen) = (c.count("in_channels", 3)?, c.count("depth", 34)?, c.count("widen", 10)?);
        Ok(WideResNetCfg { in_channels, depth, widen, classes: c.classes()? })
    }
    fn config(&self) -> Value {
        json!({"in_channels": self.in_channels, "depth": self.depth, "widen": self.widen, "classes": self.classes})
    }
    fn invalid(&self) -> Option<String> {
        let (depth, widen) = (self.depth, self.widen);
        (depth < 10 || (depth - 4) % 6 != 0 || widen == 0)
            .then(|| format!("depth {depth} must be 6n+4 (n ≥ 1) and widen {widen} ≥ 1"))
    }
    fn recognises(t: &Shapes) -> bool {
        t.has("block1.layer.0.conv1.weight")
    }
    fn read(t: &Shapes) -> Result<Value> {
        let depth = 6 * t.count(|i| format!("block1.layer.{i}.conv1.weight")) + 4;
        let widen = t.dim("block1.layer.0.conv1.weight", 0)? / 16;
        let (in_channels, classes) = (t.dim("conv1.weight", 1)?, t.dim("fc.weight", 0)?);
        Ok(json!({"in_channels": in_channels, "depth": depth, "widen": widen, "classes": classes}))
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net> {
        Box::new(WideResNet::new(b, self.in_channels, self.depth, self.widen, self.classes))
    }
}
