//! Blocks shared by several architectures: ResNet-18's four stages (ResNet-18 and
//! PreActResNet-18), the pre-activation block (PreActResNet-18 and WideResNet) and the WideResNet
//! layout (both WideResNets). Tested through
//! the model fixtures (`tests/parity.rs`).
use super::layers::{Bn, Builder, Conv, ConvBn, Ctx};
use crate::tape::Var;

/// One block of a WideResNet: its group and index in the group, channels and stride.
pub struct WideBlock {
    pub group: usize,
    pub index: usize,
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
}

/// A WideResNet-depth-widen's channels (stem, then its three groups) and its blocks in order. Both
/// WideResNets (TRADES' and DeepMind's) lay their blocks out this way and differ only in the
/// blocks and names.
pub fn wide_layout(depth: usize, widen: usize) -> ([usize; 4], Vec<WideBlock>) {
    let ch = [16, 16 * widen, 32 * widen, 64 * widen];
    let n = (depth - 4) / 6;
    let blocks = (0..3)
        .flat_map(|group| (0..n).map(move |index| (group, index)))
        .map(|(group, index)| {
            let (cin, stride) = match (group, index) {
                (0, 0) => (ch[0], 1),
                (g, 0) => (ch[g], 2),
                (g, _) => (ch[g + 1], 1),
            };
            WideBlock { group, index, cin, cout: ch[group + 1], stride }
        })
        .collect();
    (ch, blocks)
}

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
