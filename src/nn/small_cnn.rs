//! SmallCNN: three conv3x3-BN-ReLU-maxpool2 stages and a linear layer (names conv1..3, bn1..3, fc).
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use crate::ops::{linear::flatten, pool::maxpool2};
use crate::tape::Var;

pub struct SmallCnn {
    stages: Vec<(Conv, Bn)>,
    fc: Linear,
}

impl SmallCnn {
    pub fn new(b: &mut Builder, in_channels: usize, size: usize, widths: [usize; 3], classes: usize) -> Self {
        let mut cin = in_channels;
        let stages = (0..3)
            .map(|i| {
                let s = (
                    b.conv(&format!("conv{}", i + 1), cin, widths[i], 3, 1, 1),
                    b.bn(&format!("bn{}", i + 1), widths[i]),
                );
                cin = widths[i];
                s
            })
            .collect();
        let side = size / 8;
        SmallCnn { stages, fc: b.linear("fc", widths[2] * side * side, classes) }
    }
}

impl Net for SmallCnn {
    fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let mut h = x.clone();
        for (conv, bn) in &self.stages {
            let y = conv.fwd(cx, &h);
            let y = bn.relu(cx, &y);
            h = maxpool2(cx.tape, &y);
        }
        let h = flatten(cx.tape, &h);
        self.fc.fwd(cx, &h)
    }
}
