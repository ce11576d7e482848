//! SmallCNN: three conv3x3-BN-ReLU-maxpool2 stages and a linear layer (names conv1..3, bn1..3, fc).
use super::layers::{Builder, ConvBn, Ctx, Linear, Net};
use crate::ops::{linear::flatten, pool::maxpool2};
use crate::tape::Var;

pub struct SmallCnn {
    stages: Vec<ConvBn>,
    fc: Linear,
}

impl SmallCnn {
    pub fn new(b: &mut Builder, in_channels: usize, size: usize, widths: [usize; 3], classes: usize) -> Self {
        let mut cin = in_channels;
        let stages = (0..3)
            .map(|i| {
                let s = b.conv_bn(&format!("conv{}", i + 1), &format!("bn{}", i + 1), (cin, widths[i]), 3, 1, 1);
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
        for stage in &self.stages {
            let y = stage.fwd(cx, &h, true);
            h = maxpool2(cx.tape, &y);
        }
        let h = flatten(cx.tape, &h);
        self.fc.fwd(cx, &h)
    }
}
