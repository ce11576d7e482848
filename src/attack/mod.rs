//! L∞ attacks for evaluation and as a library, selectable by name through [`Attack`]: FGSM, PGD and
//! CW∞ (`pgd.rs`), APGD-CE and APGD-T (`apgd.rs`), FAB-T (`fab.rs`), Square (`square.rs`, drawing
//! from PyTorch's stream, `torch_rng.rs`) and AutoAttack's standard protocol over the last four
//! (`autoattack.rs`), on the losses of `losses.rs`. Imports point down: this file knows the
//! attacks, they know the losses, `nn::eval` and `samples`, nothing in the family knows this file;
//! nothing here knows `ard` (the training step imports the attacks' helpers, not the attacks).
//!
//! Rules every attack follows (tested in `tests/attacks.rs`):
//! - the model runs with BatchNorm in eval mode, gradients come from `nn::eval::input_grad`;
//! - steps follow the gradient of the batch *sum* of a per-sample loss, so a sample's path does not
//!   depend on the rest of its batch;
//! - points are projected with the f32 ops of `ops::pgd::pgd_step`, so ‖x_adv − x‖∞ ≤ ε and
//!   x_adv ∈ [0, 1] hold exactly as the training loop's do;
//! - per sample, the returned point is one the model misclassifies when the attack found one
//!   (samples misclassified from the start are returned unchanged), and otherwise the attack's last
//!   (PGD) or highest-loss (APGD) point. So a sample is counted robust by [`robust_accuracy`] only
//!   if every point the attack visited was classified correctly.
pub mod apgd;
pub mod autoattack;
pub mod fab;
pub mod losses;
pub mod pgd;
pub mod square;
mod torch_rng;

pub use autoattack::{AutoAttack, Event, Stage};
pub use losses::AttackLoss;
pub use pgd::Pgd;

use crate::dist::Group;
use crate::error::{Error, Result};
use crate::nn::Model;
use crate::nn::eval::{correct, logits};
use crate::samples::gather;
use crate::tensor::Tensor;
use clap::builder::{PossibleValue, TypedValueParser};
use rand::SeedableRng;
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
    /// FAB-T: the closest point on the linearised boundary towards each of `targets` classes.
    FabT { iters: usize, targets: usize },
    /// Square: random search with forward passes only, seeded with `seed` at every batch.
    Square { queries: usize, p_init: f64, seed: u64 },
    /// AutoAttack's standard protocol (APGD-CE, APGD-T, FAB-T, Square) in batches of `batch`.
    Aa { batch: usize, seed: u64 },
}

/// PGD of the evaluation protocol: steps of ε/4 from a random start.
const fn pgd(steps: usize) -> Pgd {
    Pgd { steps, step: None, random_start: true }
}

/// Every name the command line accepts, what it means, and the attack it runs: the one list that
/// parsing, `--help` and error messages read. `pgd<N>` is also accepted, for N steps.
const ATTACKS: [(&str, &str, Attack); 9] = [
    ("clean", "no attack: accuracy on the clean images", Attack::Clean),
    ("fgsm", "one step of size ε on the sign of the cross-entropy gradient", Attack::Fgsm),
    ("pgd20", "PGD-20 on cross-entropy, steps of ε/4 from a random start (pgd<N>: N steps)", Attack::Pgd(pgd(20))),
    ("cw", "CW∞: PGD-30 on the Carlini–Wagner margin, steps of ε/4 from a random start", Attack::Cw(pgd(30))),
    ("apgd-ce", "APGD on cross-entropy, 100 iterations, 1 restart", Attack::ApgdCe { iters: 100, restarts: 1 }),
    (
        "apgd-t",
        "APGD on the targeted DLR loss, 100 iterations, 9 target classes",
        Attack::ApgdT { iters: 100, targets: 9 },
    ),
    ("fab-t", "FAB-T, 100 iterations, 9 target classes (AutoAttack's)", Attack::FabT { iters: 100, targets: 9 }),
    (
        "square",
        "Square, 5,000 queries, p_init 0.8, margin loss (AutoAttack's)",
        Attack::Square { queries: 5000, p_init: 0.8, seed: 0 },
    ),
    (
        "aa",
        "AutoAttack, standard version: APGD-CE, APGD-T, FAB-T, Square on the points still robust",
        Attack::Aa { batch: 250, seed: 0 },
    ),
];

impl Attack {
    /// The names [`FromStr`] accepts (`pgd20` also as `pgd<N>` for N steps).
    pub fn names() -> impl Iterator<Item = &'static str> {
        ATTACKS.iter().map(|(name, _, _)| *name)
    }

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
                Pgd { steps: 1, step: Some(eps), random_start: false }.run(model, x, y, eps, &AttackLoss::Ce, rng)
            }
            Attack::Pgd(p) => p.run(model, x, y, eps, &AttackLoss::Ce, rng),
            Attack::Cw(p) => p.run(model, x, y, eps, &AttackLoss::Margin, rng),
            Attack::ApgdCe { iters, restarts } => apgd::apgd_ce(model, x, y, eps, iters, restarts, rng),
            Attack::ApgdT { iters, targets } => apgd::apgd_t(model, x, y, eps, iters, targets, rng),
            Attack::FabT { iters, targets } => fab::fab_t(model, x, y, eps, iters, targets),
            Attack::Square { queries, p_init, seed } => square::square(model, x, y, eps, queries, p_init, seed),
            Attack::Aa { batch, seed } => {
                AutoAttack { eps, batch, seed }.run(model, x, y, &crate::dist::Solo, |_| {}).x_adv
            }
        }
    }

    /// Whether the attack can run on a model with `classes` classes (the targeted DLR loss needs
    /// 4), naming the attack when it cannot.
    pub fn check_classes(&self, classes: usize) -> Result<()> {
        let needs = match self {
            Attack::ApgdT { .. } | Attack::Aa { .. } => 4,
            Attack::Cw(_) | Attack::FabT { .. } | Attack::Square { .. } => 2,
            _ => 1,
        };
        if classes < needs {
            return Err(Error::Msg(format!(
                "attack {self}: needs a model with at least {needs} classes, this one has {classes}"
            )));
        }
        Ok(())
    }

    /// The attack with the seed of its own random stream (Square's, AutoAttack's) set to `seed`.
    pub fn with_seed(self, seed: u64) -> Attack {
        match self {
            Attack::Square { queries, p_init, .. } => Attack::Square { queries, p_init, seed },
            Attack::Aa { batch, .. } => Attack::Aa { batch, seed },
            _ => self,
        }
    }

    /// AutoAttack with `batch` points per batch (the others have no such setting).
    pub fn with_aa_batch(self, batch: usize) -> Attack {
        match self {
            Attack::Aa { seed, .. } => Attack::Aa { batch, seed },
            _ => self,
        }
    }

    /// The attack with `step` as the step size of PGD and CW∞ (the others have none).
    pub fn with_step(self, step: Option<f32>) -> Attack {
        match (self, step) {
            (Attack::Pgd(p), Some(s)) => Attack::Pgd(Pgd { step: Some(s), ..p }),
            (Attack::Cw(p), Some(s)) => Attack::Cw(Pgd { step: Some(s), ..p }),
            _ => self,
        }
    }

    /// The clap parser of attack names: it accepts what [`FromStr`] does and lists the table in `--help`.
    pub fn parser() -> impl TypedValueParser<Value = Attack> {
        AttackParser
    }
}

impl FromStr for Attack {
    type Err = Error;

    fn from_str(s: &str) -> Result<Attack> {
        if let Some((_, _, a)) = ATTACKS.iter().find(|(name, _, _)| *name == s) {
            return Ok(*a);
        }
        match s.strip_prefix("pgd").and_then(|n| n.parse().ok()) {
            Some(steps) => Ok(Attack::Pgd(pgd(steps))),
            None => Err(Error::Msg(format!(
                "unknown attack `{s}`: expected one of {} (or pgd<N> for N steps)",
                Attack::names().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Attack::Pgd(p) = self {
            return write!(f, "pgd{}", p.steps);
        }
        let same = |a: &Attack| std::mem::discriminant(a) == std::mem::discriminant(self);
        f.write_str(ATTACKS.iter().find(|(_, _, a)| same(a)).map_or("?", |(name, _, _)| name))
    }
}

#[derive(Clone)]
struct AttackParser;

impl TypedValueParser for AttackParser {
    type Value = Attack;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&clap::Arg>,
        v: &std::ffi::OsStr,
    ) -> std::result::Result<Attack, clap::Error> {
        let s = v.to_str().ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidUtf8).with_cmd(cmd))?;
        s.parse()
            .map_err(|e: Error| clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n")).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(ATTACKS.iter().map(|(name, help, _)| PossibleValue::new(*name).help(*help))))
    }
}

/// Percent of `x` classified correctly on the points `attack` returns, attacking and predicting
/// `batch` images at a time (`Clean`: plain accuracy). 0 for an empty set. Batch k draws from its
/// own stream (`batch_rng(seed, k)`), so the ranks of `group` can take batches in turn and count
/// what one process counts.
#[allow(clippy::too_many_arguments)]
pub fn robust_accuracy(
    model: &mut Model,
    x: &Tensor,
    y: &[usize],
    attack: &Attack,
    eps: f32,
    batch: usize,
    seed: u64,
    group: &dyn Group,
) -> f64 {
    let n = y.len();
    assert_eq!(x.shape().first(), Some(&n), "robust_accuracy: {n} labels for a set of shape {:?}", x.shape());
    let batch = batch.max(1);
    let mut kept = [0.0];
    for (k, start) in (0..n).step_by(batch).enumerate().filter(|(k, _)| k % group.size() == group.rank()) {
        let idx: Vec<usize> = (start..n.min(start + batch)).collect();
        let yb = &y[start..start + idx.len()];
        let x_adv = attack.run(model, &gather(x, &idx), yb, eps, &mut batch_rng(seed, k));
        kept[0] += correct(&logits(model, &x_adv, batch), yb) as f64;
    }
    group.sum_f64(&mut kept);
    100.0 * kept[0] / n.max(1) as f64
}

/// The random stream of batch `k` of an evaluation seeded with `seed` (batch 0's is `seed`'s own).
pub fn batch_rng(seed: u64, k: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_add((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}
