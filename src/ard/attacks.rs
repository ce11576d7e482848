//! L∞ attacks for evaluation and as a library: FGSM, PGD, CW∞ (PGD on the Carlini–Wagner margin)
//! here, APGD-CE and APGD-T in `apgd.rs`, all selectable by name through [`Attack`].
//!
//! Rules every attack follows:
//! - the model runs with BatchNorm in eval mode, gradients come from `ard::grad::input_grad`;
//! - steps follow the gradient of the batch *sum* of a per-sample loss, so a sample's path does not
//!   depend on the rest of its batch;
//! - points are projected with the f32 ops of `ops::pgd::pgd_step`, so ‖x_adv − x‖∞ ≤ ε and
//!   x_adv ∈ [0, 1] hold exactly as the training loop's do;
//! - per sample, the returned point is one the model misclassifies when the attack found one
//!   (samples misclassified from the start are returned unchanged), and otherwise the attack's last
//!   (PGD) or highest-loss (APGD) point. So a sample is counted robust by [`robust_accuracy`] only
//!   if every point the attack visited was classified correctly.
use super::apgd;
use super::grad::{input_grad, logits};
use crate::error::{Error, Result};
use crate::nn::Model;
use crate::ops::loss::{self, LossOut};
use crate::ops::pgd::{self, pgd_step};
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;
use rand::RngExt;
use rand::rngs::StdRng;
use std::fmt;
use std::str::FromStr;

/// An attack as the command line names it; [`Attack::run`] runs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attack {
    /// No attack: the clean images.
    Clean,
    /// One step of size ε on the sign of the cross-entropy gradient, from x.
    Fgsm,
    /// PGD on cross-entropy.
    Pgd(Pgd),
    /// PGD on the Carlini–Wagner margin max_{j≠y} z_j − z_y.
    Cw(Pgd),
    /// APGD on cross-entropy, `restarts` runs from random points.
    ApgdCe { iters: usize, restarts: usize },
    /// APGD on the targeted DLR loss, one run for each of the `targets` classes ranked highest by
    /// the clean logits after the true one.
    ApgdT { iters: usize, targets: usize },
}

impl Attack {
    /// The names [`FromStr`] accepts (`pgd20` also as `pgd<N>` for N steps).
    pub const NAMES: [&'static str; 6] = ["clean", "fgsm", "pgd20", "cw", "apgd-ce", "apgd-t"];

    /// Adversarial examples for the batch `x` (NCHW in [0, 1]) with labels `y` in the L∞ ball of
    /// radius `eps`; `rng` draws the random starts.
    pub fn run(&self, model: &mut Model, x: &Tensor, y: &[usize], eps: f32, rng: &mut StdRng) -> Tensor {
        assert_eq!(
            x.shape().first(),
            Some(&y.len()),
            "attack: {} labels for a batch of shape {:?}",
            y.len(),
            x.shape()
        );
        assert!(eps >= 0.0, "attack: eps must be non-negative, got {eps}");
        match *self {
            Attack::Clean => x.clone(),
            Attack::Fgsm => {
                Pgd { steps: 1, step: Some(eps), random_start: false }.run(model, x, y, eps, &Objective::Ce, rng)
            }
            Attack::Pgd(p) => p.run(model, x, y, eps, &Objective::Ce, rng),
            Attack::Cw(p) => p.run(model, x, y, eps, &Objective::Margin, rng),
            Attack::ApgdCe { iters, restarts } => apgd::apgd_ce(model, x, y, eps, iters, restarts, rng),
            Attack::ApgdT { iters, targets } => apgd::apgd_t(model, x, y, eps, iters, targets, rng),
        }
    }
}

impl FromStr for Attack {
    type Err = Error;

    /// The evaluation protocol's attacks: `pgd20` and `cw` (30 steps, as in the ARD papers) step
    /// ε/4 from a random start; APGD runs 100 iterations, 1 restart for CE, 9 target classes for T.
    fn from_str(s: &str) -> Result<Attack> {
        let pgd = |steps| Pgd { steps, step: None, random_start: true };
        Ok(match s {
            "clean" => Attack::Clean,
            "fgsm" => Attack::Fgsm,
            "cw" => Attack::Cw(pgd(30)),
            "apgd-ce" => Attack::ApgdCe { iters: 100, restarts: 1 },
            "apgd-t" => Attack::ApgdT { iters: 100, targets: 9 },
            _ => match s.strip_prefix("pgd").and_then(|n| n.parse().ok()) {
                Some(steps) => Attack::Pgd(pgd(steps)),
                None => {
                    return Err(Error::Msg(format!(
                        "unknown attack `{s}`: expected one of {} (or pgd<N> for N steps)",
                        Attack::NAMES.join(", ")
                    )));
                }
            },
        })
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attack::Clean => f.write_str("clean"),
            Attack::Fgsm => f.write_str("fgsm"),
            Attack::Pgd(p) => write!(f, "pgd{}", p.steps),
            Attack::Cw(_) => f.write_str("cw"),
            Attack::ApgdCe { .. } => f.write_str("apgd-ce"),
            Attack::ApgdT { .. } => f.write_str("apgd-t"),
        }
    }
}

/// Settings of a PGD run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pgd {
    pub steps: usize,
    /// Step size; ε/4 when `None` (ε is only known when the attack runs).
    pub step: Option<f32>,
    /// Start from a uniform point of the ε-ball (clipped to [0, 1]) instead of from x.
    pub random_start: bool,
}

impl Pgd {
    /// `steps` signed-gradient steps that maximise `objective`. A sample is frozen at the first
    /// iterate the model misclassifies (the clean image for samples misclassified from the start):
    /// a later step could make it look robust again. Otherwise the final iterate is returned.
    pub fn run(
        &self,
        model: &mut Model,
        x: &Tensor,
        y: &[usize],
        eps: f32,
        objective: &Objective,
        rng: &mut StdRng,
    ) -> Tensor {
        let step = self.step.unwrap_or(eps / 4.0);
        let per = sample_len(x);
        let mut done = misclassified(&logits(model, x, y.len().max(1)), y);
        let mut x_adv = if self.random_start { random_start(x, eps, rng) } else { x.clone() };
        for s in (0..y.len()).filter(|&s| done[s]) {
            copy_sample(&mut x_adv, s, x, s);
        }
        let mut tape = Tape::new(GradMode::Input);
        for _ in 0..self.steps {
            let (z, grad, _) = loss_grad(model, &mut tape, &x_adv, y, objective);
            done.iter_mut().zip(misclassified(&z, y)).for_each(|(d, m)| *d |= m);
            for s in (0..y.len()).filter(|&s| !done[s]) {
                let r = s * per..(s + 1) * per;
                pgd_step(&mut x_adv.data_mut()[r.clone()], &grad.data()[r.clone()], &x.data()[r], step, eps);
            }
        }
        x_adv
    }
}

/// What an attack maximises, per sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// Cross-entropy with the true label.
    Ce,
    /// The Carlini–Wagner margin max_{j≠y} z_j − z_y (see [`cw_margin`]).
    Margin,
    /// APGD-T's targeted DLR loss, with one target class per sample (see [`apgd::dlr_targeted`]).
    DlrTargeted(Vec<usize>),
}

impl Objective {
    /// Per-sample values and the gradient of their sum w.r.t. the logits.
    pub fn eval(&self, logits: &Tensor, y: &[usize]) -> LossOut {
        match self {
            Objective::Ce => loss::cross_entropy(logits, y),
            Objective::Margin => cw_margin(logits, y),
            Objective::DlrTargeted(t) => apgd::dlr_targeted(logits, y, t),
        }
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

/// Percent of `x` classified correctly on the points `attack` returns, attacking and predicting
/// `batch` images at a time (`Clean`: plain accuracy). 0 for an empty set.
pub fn robust_accuracy(
    model: &mut Model,
    x: &Tensor,
    y: &[usize],
    attack: &Attack,
    eps: f32,
    batch: usize,
    rng: &mut StdRng,
) -> f64 {
    let n = y.len();
    assert_eq!(x.shape().first(), Some(&n), "robust_accuracy: {n} labels for a set of shape {:?}", x.shape());
    let batch = batch.max(1);
    let mut correct = 0;
    for start in (0..n).step_by(batch) {
        let idx: Vec<usize> = (start..n.min(start + batch)).collect();
        let yb = &y[start..start + idx.len()];
        let x_adv = attack.run(model, &gather(x, &idx), yb, eps, rng);
        correct += misclassified(&logits(model, &x_adv, batch), yb).iter().filter(|&&m| !m).count();
    }
    100.0 * correct as f64 / n.max(1) as f64
}

/// The predicted class of every row of `logits` (the first one on ties).
pub fn predictions(logits: &Tensor) -> Vec<usize> {
    let (n, c) = logits.dims2();
    let all = logits.host();
    (0..n)
        .map(|i| {
            let z = &all[i * c..][..c];
            (1..c).fold(0, |best, j| if z[j] > z[best] { j } else { best })
        })
        .collect()
}

/// Whether each sample's prediction differs from its label.
pub(crate) fn misclassified(logits: &Tensor, y: &[usize]) -> Vec<bool> {
    predictions(logits).iter().zip(y).map(|(p, t)| p != t).collect()
}

/// Logits at `x`, the input gradient of the batch sum of `objective`, and its per-sample values.
pub(crate) fn loss_grad(
    model: &mut Model,
    tape: &mut Tape,
    x: &Tensor,
    y: &[usize],
    objective: &Objective,
) -> (Tensor, Tensor, Vec<f32>) {
    input_grad(model, tape, x, |z| {
        let LossOut { per_sample, mut grads } = objective.eval(z, y);
        (grads.swap_remove(0), per_sample.into_vec())
    })
}

/// x plus uniform noise in [−ε, ε], projected.
pub(crate) fn random_start(x: &Tensor, eps: f32, rng: &mut StdRng) -> Tensor {
    let u: Vec<f32> = (0..x.numel()).map(|_| rng.random_range(-eps..=eps)).collect();
    pgd::start(x, &u, eps)
}

/// Values per sample of a batch.
pub(crate) fn sample_len(x: &Tensor) -> usize {
    x.numel() / x.shape()[0].max(1)
}

/// The samples `idx` of a batch, in that order.
pub(crate) fn gather(x: &Tensor, idx: &[usize]) -> Tensor {
    let per = sample_len(x);
    let mut shape = x.shape().to_vec();
    shape[0] = idx.len();
    Tensor::from_vec(&shape, idx.iter().flat_map(|&i| &x.data()[i * per..][..per]).copied().collect())
}

/// Overwrites sample `i` of `dst` with sample `k` of `src`.
pub(crate) fn copy_sample(dst: &mut Tensor, i: usize, src: &Tensor, k: usize) {
    let per = sample_len(src);
    dst.data_mut()[i * per..][..per].copy_from_slice(&src.data()[k * per..][..per]);
}
