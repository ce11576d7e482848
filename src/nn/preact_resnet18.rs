//! PreActResNet-18, RobustBench names: conv1, layer{1..4}.{0,1}.{bn1,conv1,bn2,conv2,shortcut.0},
//! bn, linear. The projection shortcut reads the pre-activated input, as in the reference.
use super::arch::{ArchName, Fields, Spec};
use super::blocks::{PreActBlock, stages};
use super::detect::Shapes;
use super::layers::{Bn, Builder, Conv, Ctx, Linear, Net};
use super::resnet18::ResNet18Cfg;
use crate::error::Result;
use crate::ops::pool::avgpool;
use crate::tape::Var;
use serde_json::Value;

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

/// PreActResNet-18 (RobustBench), pre-activation blocks and a final BN: ResNet-18's config, read
/// from the same tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct PreActResNet18Cfg(pub ResNet18Cfg);

impl Spec for PreActResNet18Cfg {
    const NAME: ArchName = ArchName::PreActResNet18;
    fn in_channels(&self) -> usize {
        self.0.in_channels
    }
    fn classes(&self) -> usize {
        self.0.classes
    }
    fn from_config(c: &Fields) -> Result<Self> {
        ResNet18Cfg::from_config(c).map(Self)
    }
    fn config(&self) -> Value {
        self.0.config()
    }
    fn invalid(&self) -> Option<String> {
        self.0.invalid()
    }
    fn recognises(t: &Shapes) -> bool {
        t.has("layer1.0.conv1.weight") && t.has("bn.weight")
    }
    fn read(t: &Shapes) -> Result<Value> {
        ResNet18Cfg::read(t)
    }
    fn build(&self, b: &mut Builder) -> Box<dyn Net> {
        Box::new(PreActResNet18::new(b, self.0.in_channels, self.0.width, self.0.classes))
    }
}
