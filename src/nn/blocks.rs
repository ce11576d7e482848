//! Blocks shared by several architectures: ResNet-18's four stages (ResNet-18 and
//! PreActResNet-18) and the pre-activation block (PreActResNet-18 and WideResNet). Tested through
//! the model fixtures (`tests/parity.rs`).
use super::layers::{Bn, Builder, Conv, ConvBn, Ctx};
use crate::tape::Var;

/// The four stages of two blocks each, with names layer{1..4}.{0,1}; `make` builds one block.
pub fn stages<B>(
    b: &mut Builder,
    width: usize,
    mut make: impl FnMut(&mut Builder, &str, usize, usize, usize) -> B,
) -> Vec<B> {
    let mut cin = width;
    let mut blocks = Vec::new();
    for (i, mult) in [1, 2, 4, 8].into_iter().enumerate() {
        for j in 0..2 {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            blocks.push(make(b, &format!("layer{}.{j}", i + 1), cin, width * mult, stride));
            cin = width * mult;
        }
    }
    blocks
}

/// The pre-activation block, shared with WideResNet: relu(bn1(x)) feeds conv1 and, when the shape
/// changes, the projection shortcut; otherwise the shortcut is x itself. bn1 follows the previous
/// block's addition, so only bn2 folds into a convolution (conv1).
pub struct PreActBlock {
    bn1: Bn,
    conv1: ConvBn,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl PreActBlock {
    /// `shortcut` names the projection conv: `shortcut.0` here, `convShortcut` in WideResNet.
    pub fn new(b: &mut Builder, p: &str, cin: usize, planes: usize, stride: usize, shortcut: &str) -> Self {
        PreActBlock {
            bn1: b.bn(&format!("{p}.bn1"), cin),
            conv1: b.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn2"), (cin, planes), 3, stride, 1),
            conv2: b.conv(&format!("{p}.conv2"), planes, planes, 3, 1, 1),
            shortcut: (stride != 1 || cin != planes)
                .then(|| b.conv(&format!("{p}.{shortcut}"), cin, planes, 1, stride, 1)),
        }
    }

    pub fn forward(&self, cx: &mut Ctx, x: &Var) -> Var {
        let a = self.bn1.relu(cx, x);
        let sc = match &self.shortcut {
            Some(conv) => conv.fwd(cx, &a),
            None => x.clone(),
        };
        let h = self.conv1.fwd(cx, &a, true);
        let h = self.conv2.fwd(cx, &h);
        cx.add(&h, &sc)
    }
}
