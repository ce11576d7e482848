//! What the attacks maximise, per sample, with the gradient of the batch sum w.r.t. the logits:
//! cross-entropy, the Carlini–Wagner margin and APGD-T's targeted DLR loss. Tested in
//! `tests/attacks.rs` (values by hand, gradients by finite differences).
use crate::nn::Model;
use crate::nn::eval::input_grad;
use crate::ops::loss::{self, LossOut};
use crate::tape::Tape;
use crate::tensor::Tensor;

/// A per-sample loss an attack climbs.
#[derive(Clone, Debug, PartialEq)]
pub enum AttackLoss {
    /// Cross-entropy with the true label.
    Ce,
    /// The Carlini–Wagner margin max_{j≠y} z_j − z_y (see [`cw_margin`]).
    Margin,
    /// APGD-T's targeted DLR loss, with one target class per sample (see [`dlr_targeted`]).
    DlrTargeted(Vec<usize>),
}

impl AttackLoss {
    /// Per-sample values and the gradient of their sum w.r.t. the logits.
    pub fn eval(&self, logits: &Tensor, y: &[usize]) -> LossOut {
        match self {
            AttackLoss::Ce => loss::cross_entropy(logits, y),
            AttackLoss::Margin => cw_margin(logits, y),
            AttackLoss::DlrTargeted(t) => dlr_targeted(logits, y, t),
        }
    }

    /// Logits at `x`, the input gradient of the batch sum, and the per-sample values.
    pub fn grad(&self, model: &mut Model, tape: &mut Tape, x: &Tensor, y: &[usize]) -> (Tensor, Tensor, Vec<f32>) {
        input_grad(model, tape, x, |z| {
            let LossOut { per_sample, mut grads } = self.eval(z, y);
            (grads.swap_remove(0), per_sample.into_vec())
        })
    }
}

/// The Carlini–Wagner margin max_{j≠y} z_j − z_y per sample; its logit gradient is +1 at the best
/// other class and −1 at y. Positive exactly when the sample is misclassified (up to ties).
pub fn cw_margin(logits: &Tensor, y: &[usize]) -> LossOut {
    let (n, c) = logits.dims2();
    assert_eq!(y.len(), n, "cw_margin: {n} rows, {} labels", y.len());
    assert!(c >= 2, "cw_margin: needs at least 2 classes, got {c}");
    let mut g = Tensor::zeros(&[n, c]);
    let per_sample = (0..n)
        .map(|i| {
            let z = &logits.data()[i * c..][..c];
            let other = (0..c).filter(|&j| j != y[i]).max_by(|&a, &b| z[a].total_cmp(&z[b])).expect("c >= 2");
            let gr = &mut g.data_mut()[i * c..][..c];
            gr[other] = 1.0;
            gr[y[i]] = -1.0;
            z[other] - z[y[i]]
        })
        .collect();
    LossOut::new(per_sample, vec![g])
}

/// The targeted DLR loss −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12) per sample (π: the classes
/// by decreasing logit), with the gradient of its batch sum w.r.t. the logits. The denominator
/// makes it invariant to shifting and scaling the logits.
pub fn dlr_targeted(logits: &Tensor, y: &[usize], targets: &[usize]) -> LossOut {
    let (n, c) = logits.dims2();
    assert!(
        y.len() == n && targets.len() == n,
        "dlr_targeted: {n} rows, {} labels, {} targets",
        y.len(),
        targets.len()
    );
    assert!(c >= 4, "dlr_targeted: needs at least 4 classes, got {c}");
    let mut g = Tensor::zeros(&[n, c]);
    let per_sample = (0..n)
        .map(|i| {
            let z = &logits.data()[i * c..][..c];
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
            let (p1, p3, p4) = (order[0], order[2], order[3]);
            let num = z[targets[i]] - z[y[i]];
            let den = z[p1] - 0.5 * (z[p3] + z[p4]) + 1e-12;
            // d(num/den) = d num / den − num · d den / den²
            let gr = &mut g.data_mut()[i * c..][..c];
            gr[targets[i]] += 1.0 / den;
            gr[y[i]] -= 1.0 / den;
            let q = num / (den * den);
            gr[p1] -= q;
            gr[p3] += 0.5 * q;
            gr[p4] += 0.5 * q;
            num / den
        })
        .collect();
    LossOut::new(per_sample, vec![g])
}
