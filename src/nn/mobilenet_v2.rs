//! CIFAR MobileNetV2 (stride-1 stem and first stages), names as in the RSLAD / ARD code:
//! conv1, bn1, layers.i.{conv1,bn1,conv2,bn2,conv3,bn3,shortcut.0,shortcut.1}, conv2, bn2, linear.
use super::arch::{ArchName, Fields, Spec};
use super::detect::Shapes;
use super::layers::{Builder, ConvBn, Ctx, Linear, Net};
use crate::error::Result;
use crate::ops::pool::avgpool;
use crate::tape::Var;
use serde_json::{Value, json};

/// (expansion, out channels, blocks, first stride) per stage.
const CFG: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

struct Block {
    expand: ConvBn,
    depthwise: ConvBn,
    project: ConvBn,
    /// `None`: no residual (stride 2); `Some(None)`: identity; `Some(Some(..))`: 1x1 projection.
    shortcut: Option<Option<ConvBn>>,
}

impl Block {
    fn new(b: &mut Builder, p: &str, cin: usize, cout: usize, expansion: usize, stride: usize) -> Self {
        let planes = expansion * cin;
        let mut cb =
            |n: usize, ci, co, k, s, g| b.conv_bn(&format!("{p}.conv{n}"), &format!("{p}.bn{n}"), (ci, co), k, s, g);
        let (expand, depthwise, project) =
            (cb(1, cin, planes, 1, 1, 1), cb(2, planes, planes, 3, stride, planes), cb(3, planes, cout, 1, 1, 1));
        let shortcut = (stride == 1).then(|| {
            (cin != cout)
                .then(|| b.conv_bn(&format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), (cin, cout), 1, 1, 1))
        });
        Block { expand, depthwise, project, shortcut }
    }

    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = self.expand.fwd(cx, x, true);
        let h = self.depthwise.fwd(cx, &h, true);
        let h = self.project.fwd(cx, &h, false);
        match &self.shortcut {
            None => h,
            Some(None) => cx.add(&h, x),
            Some(Some(conv)) => {
                let s = conv.fwd(cx, x, false);
                cx.add(&h, &s)
            }
        }
    }
}

pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<Block>,
    head: ConvBn,
    linear: Linear,
}

impl MobileNetV2 {
    pub fn new(b: &mut Builder, in_channels: usize, classes: usize) -> Self {
        let stem = b.conv_bn("conv1", "bn1", (in_channels, 32), 3, 1, 1);
        let (mut cin, mut blocks) = (32, Vec::new());
        for (e, cout, n, s) in CFG {
            for i in 0..n {
                blocks.push(Block::new(
                    b,
                    &format!("layers.{}", blocks.len()),
                    cin,
                    cout,
                    e,
                    if i == 0 { s } else { 1 },
                ));
                cin = cout;
            }
        }
        let head = b.conv_bn("conv2", "bn2", (320, 1280), 1, 1, 1);
        MobileNetV2 { stem, blocks, head, linear: b.linear("linear", 1280, classes) }
    }
}

impl Net for MobileNetV2 {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let mut h = self.stem.fwd(cx, x, true);
        for blk in &self.blocks {
            h = blk.forward(cx, &h);
        }
        let h = self.head.fwd(cx, &h, true);
        let h = avgpool(cx.tape, &h);
        self.linear.fwd(cx, &h)
    }
}

/// CIFAR MobileNetV2 (stride-1 stem and first stages).
#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetV2Cfg {
    pub in_channels: usize,
    pub classes: usize,
}

impl Spec for MobileNetV2Cfg {
    const NAME: ArchName = ArchName::MobileNetV2;
    fn in_channels(&self) -> usize {
        self.in_channels
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn from_config(c: &Fields) -> Result<Self> {
        Ok(MobileNetV2Cfg { in_channels: c.count("in_channels", 3)?, classes: c.classes()? })
    }
    fn config(&self) -> Value {
        json!({"in_channels": self.in_channels, "classes": self.classes})
    }
    fn recognises(t: &Shapes) -> bool {
        t.has("layers.0.conv1.weight")
    }
    fn read(t: &Shapes) -> Result<Value> {
        Ok(json!({"in_channels": t.dim("conv1.weight", 1)?, "classes": t.dim("linear.weight", 0)?}))
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net> {
        Box::new(MobileNetV2::new(b, self.in_channels, self.classes))
    }
}
