//! CIFAR MobileNetV2 (stride-1 stem and first stages), names as in the RSLAD / ARD code:
//! conv1, bn1, layers.i.{conv1,bn1,conv2,bn2,conv3,bn3,shortcut.0,shortcut.1}, conv2, bn2, linear.
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use crate::ops::pool::avgpool;
use crate::tape::Var;

/// (expansion, out channels, blocks, first stride) per stage.
const CFG: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

struct Block {
    expand: (Conv, Bn),
    depthwise: (Conv, Bn),
    project: (Conv, Bn),
    /// `None`: no residual (stride 2); `Some(None)`: identity; `Some(Some(..))`: 1x1 projection.
    shortcut: Option<Option<(Conv, Bn)>>,
}

impl Block {
    fn new(b: &mut Builder, p: &str, cin: usize, cout: usize, expansion: usize, stride: usize) -> Self {
        let planes = expansion * cin;
        let mut cb = |n: usize, ci, co, k, s, g| {
            (b.conv(&format!("{p}.conv{n}"), ci, co, k, s, g), b.bn(&format!("{p}.bn{n}"), co))
        };
        let (expand, depthwise, project) =
            (cb(1, cin, planes, 1, 1, 1), cb(2, planes, planes, 3, stride, planes), cb(3, planes, cout, 1, 1, 1));
        let shortcut = (stride == 1).then(|| {
            (cin != cout).then(|| {
                (b.conv(&format!("{p}.shortcut.0"), cin, cout, 1, 1, 1), b.bn(&format!("{p}.shortcut.1"), cout))
            })
        });
        Block { expand, depthwise, project, shortcut }
    }

    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = self.expand.0.fwd(cx, x);
        let h = self.expand.1.relu(cx, &h);
        let h = self.depthwise.0.fwd(cx, &h);
        let h = self.depthwise.1.relu(cx, &h);
        let h = self.project.0.fwd(cx, &h);
        let h = self.project.1.fwd(cx, &h);
        match &self.shortcut {
            None => h,
            Some(None) => cx.add(&h, x),
            Some(Some((conv, bn))) => {
                let s = conv.fwd(cx, x);
                let s = bn.fwd(cx, &s);
                cx.add(&h, &s)
            }
        }
    }
}

pub struct MobileNetV2 {
    stem: (Conv, Bn),
    blocks: Vec<Block>,
    head: (Conv, Bn),
    linear: Linear,
}

impl MobileNetV2 {
    pub fn new(b: &mut Builder, in_channels: usize, classes: usize) -> Self {
        let stem = (b.conv("conv1", in_channels, 32, 3, 1, 1), b.bn("bn1", 32));
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
        let head = (b.conv("conv2", 320, 1280, 1, 1, 1), b.bn("bn2", 1280));
        MobileNetV2 { stem, blocks, head, linear: b.linear("linear", 1280, classes) }
    }
}

impl Net for MobileNetV2 {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let h = self.stem.0.fwd(cx, x);
        let mut h = self.stem.1.relu(cx, &h);
        for blk in &self.blocks {
            h = blk.forward(cx, &h);
        }
        let h = self.head.0.fwd(cx, &h);
        let h = self.head.1.relu(cx, &h);
        let h = avgpool(cx.tape, &h);
        self.linear.fwd(cx, &h)
    }
}
