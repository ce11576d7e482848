//! AutoAttack's standard protocol, L∞ (Croce & Hein 2020; fra31/auto-attack `version='standard'`,
//! `run_standard_evaluation`): one clean pass marks the robust points; then APGD-CE, APGD-T, FAB-T
//! and Square run in that order, each on the points still robust (in index order, in batches of
//! `batch`), each from the clean images, with its random stream reset to `seed` at every batch as
//! the reference does. A point an attack breaks is no longer robust; AA is the share still robust
//! (points wrong on clean data count as broken). The reference's sanity checks are warnings.
//! The ranks of a data-parallel run take a stage's batches in turn and pool what they broke after
//! it, so each batch is attacked as in one process and the result is one process's.
//! Tests: `tests/attacks.rs`; against the reference in `scripts/compare_autoattack.py`.
use super::{apgd, fab, square};
use crate::dist::{Group, pool_rows};
use crate::nn::Model;
use crate::nn::eval::{logits, misclassified, predictions};
use crate::samples::{gather, sample_len};
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Instant;

/// The protocol's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoAttack {
    pub eps: f32,
    /// Points per batch (the reference's default is 250; results depend on it through the seeds).
    pub batch: usize,
    pub seed: u64,
}

/// Iterations of APGD and FAB, target classes of APGD-T and FAB-T, queries of Square.
const ITERS: usize = 100;
const TARGETS: usize = 9;
const QUERIES: usize = 5000;
const P_INIT: f64 = 0.8;

/// The attacks in the order the protocol runs them.
pub const STAGES: [&str; 4] = ["apgd-ce", "apgd-t", "fab-t", "square"];

/// Robust accuracy after one stage, and that stage's time.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: &'static str,
    /// Percent of all points still robust.
    pub accuracy: f64,
    pub seconds: f64,
}

/// What a run reports as it goes (the library draws nothing; the CLI draws a bar): the points a
/// stage has attacked so far, and each stage as it ends.
pub enum Event<'a> {
    Points { stage: &'static str, done: usize, of: usize },
    Stage(&'a Stage),
}

/// What a run found.
pub struct Report {
    /// Percent classified correctly on the clean images.
    pub clean: f64,
    pub stages: Vec<Stage>,
    /// Per point: the attack's output where one broke it, else the clean image.
    pub x_adv: Tensor,
    pub robust: Vec<bool>,
    /// The reference's checks that fired, each naming what it saw.
    pub warnings: Vec<String>,
}

impl Report {
    /// AA: percent of the points still robust after every stage.
    pub fn accuracy(&self) -> f64 {
        percent(&self.robust)
    }
}

fn percent(flags: &[bool]) -> f64 {
    100.0 * flags.iter().filter(|&&f| f).count() as f64 / flags.len().max(1) as f64
}

impl AutoAttack {
    /// Runs the protocol on `x` (NCHW in [0, 1], on the host) with labels `y`, telling `on_event`
    /// of its progress.
    pub fn run(
        &self,
        model: &mut Model,
        x: &Tensor,
        y: &[usize],
        group: &dyn Group,
        mut on_event: impl FnMut(Event),
    ) -> Report {
        let n = y.len();
        let batch = self.batch.max(1);
        let mut warnings = checks(model, &x.rows(0, n.min(batch)), &y[..n.min(batch)]);
        // this rank's batches of a list of points: every size-th from its rank on
        let mine = |idx: &[usize]| -> Vec<Vec<usize>> {
            idx.chunks(batch).skip(group.rank()).step_by(group.size()).map(<[usize]>::to_vec).collect()
        };
        let mut broken = vec![0.0; n];
        for part in mine(&(0..n).collect::<Vec<_>>()) {
            let wrong = misclassified(&logits(model, &gather(x, &part), batch), &y[part[0]..][..part.len()]);
            part.iter().zip(wrong).for_each(|(&i, w)| broken[i] = w as u8 as f64);
        }
        group.sum_f64(&mut broken);
        let mut robust: Vec<bool> = broken.iter().map(|&b| b == 0.0).collect();
        let clean = percent(&robust);
        let mut x_adv = x.clone();
        let per = sample_len(x);
        let mut mine_broken = vec![false; n];
        let mut stages = Vec::new();
        for name in STAGES {
            let idx: Vec<usize> = (0..n).filter(|&i| robust[i]).collect();
            if idx.is_empty() {
                break;
            }
            let started = Instant::now();
            let mut broken = vec![0.0; n];
            for (k, part) in mine(&idx).iter().enumerate() {
                let (xb, yb): (Tensor, Vec<usize>) = (gather(x, part), part.iter().map(|&i| y[i]).collect());
                let adv = self.stage(name, model, &xb, &yb);
                let wrong = misclassified(&logits(model, &adv, batch), &yb);
                for (r, &i) in part.iter().enumerate().filter(|&(r, _)| wrong[r]) {
                    broken[i] = 1.0;
                    mine_broken[i] = true;
                    x_adv.data_mut()[i * per..][..per].copy_from_slice(&adv.data()[r * per..][..per]);
                }
                // the points of every rank's batches up to this one
                let done = idx.len().min((k + 1) * group.size() * batch);
                on_event(Event::Points { stage: name, done, of: idx.len() });
            }
            group.sum_f64(&mut broken);
            robust.iter_mut().zip(&broken).for_each(|(r, &b)| *r &= b == 0.0);
            let stage = Stage { name, accuracy: percent(&robust), seconds: started.elapsed().as_secs_f64() };
            on_event(Event::Stage(&stage));
            stages.push(stage);
        }
        pool_rows(group, &mut x_adv, &mine_broken);
        warnings.extend(square_check(clean, &stages));
        Report { clean, stages, x_adv, robust, warnings }
    }

    /// One attack on one batch, its random stream reset to the seed.
    fn stage(&self, name: &str, model: &mut Model, x: &Tensor, y: &[usize]) -> Tensor {
        let mut rng = StdRng::seed_from_u64(self.seed);
        match name {
            "apgd-ce" => apgd::apgd_ce(model, x, y, self.eps, ITERS, 1, &mut rng),
            "apgd-t" => apgd::apgd_t(model, x, y, self.eps, ITERS, TARGETS, &mut rng),
            "fab-t" => fab::fab_t(model, x, y, self.eps, ITERS, TARGETS),
            "square" => square::square(model, x, y, self.eps, QUERIES, P_INIT, self.seed),
            other => unreachable!("no AutoAttack stage {other}"),
        }
    }
}

/// The reference's checks (`checks.py`) on the first batch, as warnings: a randomised model,
/// probabilities as outputs, zero input gradients, more target classes than the model has.
fn checks(model: &mut Model, x: &Tensor, y: &[usize]) -> Vec<String> {
    let mut w = Vec::new();
    if y.is_empty() {
        return w;
    }
    let runs: Vec<Tensor> = (0..5).map(|_| logits(model, x, y.len())).collect();
    let unit = |z: &Tensor| -> Vec<f64> {
        let c = z.dims2().1;
        z.host()
            .chunks(c)
            .flat_map(|r| {
                let norm = r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() + 1e-10;
                r.iter().map(move |&v| v as f64 / norm).collect::<Vec<_>>()
            })
            .collect()
    };
    let first = (unit(&runs[0]), predictions(&runs[0]));
    let drift = runs[1..].iter().map(|z| {
        let u = unit(z);
        (first.0.iter().zip(&u).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max), predictions(z) != first.1)
    });
    if let Some((d, _)) = drift.into_iter().find(|&(d, flipped)| d > 1e-4 || flipped) {
        w.push(format!(
            "repeated forwards of the same batch disagree (normalised logits differ by {d:.2e}): the model seems \
             randomised, and AutoAttack's standard version assumes a deterministic one"
        ));
    }
    let (c, z) = (runs[0].dims2().1, runs[0].host());
    let sums_to_one = z.chunks(c).all(|r| (r.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-5);
    if z.iter().all(|&v| v > -1e-5 && v < 1.0 + 1e-5) && sums_to_one {
        w.push(
            "the outputs look like probabilities (in [0, 1], each row summing to 1): the attacks need logits".into(),
        );
    }
    if c < TARGETS + 1 {
        w.push(format!(
            "{TARGETS} target classes asked of APGD-T and FAB-T, but the model has {c} classes: {} targets are used",
            c - 1
        ));
    }
    let mut tape = crate::tape::Tape::new(crate::tape::GradMode::Input);
    // The margin's logit gradient is ±1, so its input gradient is zero only where the model's is.
    let (_, g, _) = super::AttackLoss::Margin.grad(model, &mut tape, x, y);
    let per = sample_len(x);
    let zero = g.host().chunks(per).filter(|r| r.iter().all(|&v| v == 0.0)).count();
    if zero > 0 {
        w.push(format!(
            "{zero} of {} points have an input gradient of exactly zero: gradient-based attacks are unreliable there",
            y.len()
        ));
    }
    w
}

/// The reference's last check: Square, the black-box attack, lowering the accuracy the white-box
/// stages left by more than 0.2 points hints at gradient masking.
fn square_check(clean: f64, stages: &[Stage]) -> Option<String> {
    let sq = stages.iter().find(|s| s.name == "square")?;
    let white = stages.iter().filter(|s| s.name != "square").map(|s| s.accuracy).fold(clean, f64::min);
    (sq.accuracy < white - 0.2).then(|| {
        format!(
            "Square lowered the robust accuracy by {:.2} points after the white-box attacks ({white:.2}% -> {:.2}%): \
             the gradients may be masked, so the evaluation may be unreliable",
            white - sq.accuracy,
            sq.accuracy
        )
    })
}
