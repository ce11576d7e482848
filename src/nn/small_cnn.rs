//! SmallCNN: three conv3x3-BN-ReLU-maxpool2 stages and a linear layer (names conv1..3, bn1..3, fc).
use super::arch::{ArchName, Fields, Spec};
use super::detect::Shapes;
use super::layers::{Builder, ConvBn, Ctx, Linear, Net};
use crate::error::{Error, Result};
use crate::ops::pool::maxpool2;
use crate::tape::Var;
use serde_json::{Value, json};

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
        // the linear layer reads the [n, c, h, w] map as [n, c·h·w], as a flatten would
        self.fc.fwd(cx, &h)
    }
}

/// conv3x3-BN-ReLU-maxpool2 three times, then a linear layer on the (size/8)² map.
#[derive(Clone, Debug, PartialEq)]
pub struct SmallCnnCfg {
    pub in_channels: usize,
    pub size: usize,
    pub widths: [usize; 3],
    pub classes: usize,
}

impl Spec for SmallCnnCfg {
    const NAME: ArchName = ArchName::SmallCnn;
    fn in_channels(&self) -> usize {
        self.in_channels
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn from_config(c: &Fields) -> Result<Self> {
        let widths = match c.get("widths") {
            None => [32, 64, 128],
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| Error::Msg(format!("config `widths`: expected three whole numbers, found {v}")))?,
        };
        Ok(SmallCnnCfg {
            in_channels: c.count("in_channels", 1)?,
            size: c.count("size", 28)?,
            widths,
            classes: c.classes()?,
        })
    }
    fn config(&self) -> Value {
        json!({"in_channels": self.in_channels, "size": self.size, "widths": self.widths, "classes": self.classes})
    }
    fn invalid(&self) -> Option<String> {
        let SmallCnnCfg { size, widths, .. } = self;
        (*size < 8 || widths.contains(&0)).then(|| format!("size {size} must be ≥ 8 and widths {widths:?} positive"))
    }
    fn recognises(t: &Shapes) -> bool {
        t.has("conv3.weight") && t.has("fc.weight")
    }
    fn read(t: &Shapes) -> Result<Value> {
        let widths = [t.dim("conv1.weight", 0)?, t.dim("conv2.weight", 0)?, t.dim("conv3.weight", 0)?];
        let features = t.dim("fc.weight", 1)?;
        let side = ((features / widths[2]) as f64).sqrt().round() as usize;
        if widths[2] * side * side != features {
            return Err(Error::Msg(format!(
                "small_cnn: fc.weight {:?} does not fit a square map of {} channels",
                t.dims("fc.weight")?,
                widths[2]
            )));
        }
        // Sides 8s..8s+7 give the same network; prefer the datasets' 28 and 32.
        let size = [28, 32].into_iter().find(|&s| s / 8 == side).unwrap_or(8 * side);
        let (in_channels, classes) = (t.dim("conv1.weight", 1)?, t.dim("fc.weight", 0)?);
        Ok(json!({"in_channels": in_channels, "size": size, "widths": widths, "classes": classes}))
    }
    fn misfit(&self, h: usize, w: usize) -> Option<String> {
        let size = self.size;
        (h / 8 != size / 8 || w / 8 != size / 8).then(|| format!("small_cnn built for {size}x{size} images"))
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net> {
        Box::new(SmallCnn::new(b, self.in_channels, self.size, self.widths, self.classes))
    }
}
