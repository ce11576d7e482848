//! APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
//! diverse parameter-free attacks"): L∞ PGD with momentum whose per-sample step size starts at 2ε
//! and is halved at checkpoints where progress stalled, the sample then resuming from its best
//! point. APGD-CE maximises cross-entropy over random restarts, APGD-T the targeted DLR loss once
//! per target class. Where the paper leaves room this follows the reference code (fra31/auto-attack,
//! `autopgd_base.py`): checkpoints counted in whole iterations, condition 1 as "at most ρ·(w_j −
//! w_{j−1}) increases", condition 2 off at the first checkpoint, and the momentum after a restart
//! taken against the iterate before the abandoned one. Deliberate differences: increases are
//! counted from the starting point on (the reference compares its first step with a zeroed buffer),
//! and starts are uniform in the ball, as PGD's (the reference rescales its uniform noise so that
//! the largest coordinate reaches ε).
use super::losses::AttackLoss;
use crate::nn::Model;
use crate::nn::eval::{logits, misclassified};
use crate::ops::pgd::{pgd_step, project};
use crate::samples::{copy_sample, gather, random_start, sample_len};
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;
use rand::rngs::StdRng;

/// Share of the iterations between two checkpoints that must raise the loss for the step to stay.
const RHO: f32 = 0.75;
/// Weight of the new step against the previous displacement (the first step has no momentum).
const MOMENTUM: f32 = 0.75;

/// APGD on cross-entropy: `restarts` runs of `iters` iterations from random points of the ball,
/// each over the samples no earlier run broke.
pub fn apgd_ce(
    model: &mut Model,
    x: &Tensor,
    y: &[usize],
    eps: f32,
    iters: usize,
    restarts: usize,
    rng: &mut StdRng,
) -> Tensor {
    Apgd { model, tape: Tape::new(GradMode::Input), eps, iters }.attack(x, y, restarts, rng, |_, _, _| AttackLoss::Ce)
}

/// APGD on the targeted DLR loss: for r = 1..=`targets` (at most classes − 1), a run of `iters`
/// iterations from a random point towards each sample's r-th most likely wrong class under the clean
/// logits, over the samples no earlier run broke. Needs at least 4 classes (the DLR denominator).
pub fn apgd_t(
    model: &mut Model,
    x: &Tensor,
    y: &[usize],
    eps: f32,
    iters: usize,
    targets: usize,
    rng: &mut StdRng,
) -> Tensor {
    let runs = targets.min(model.arch.classes().saturating_sub(1));
    Apgd { model, tape: Tape::new(GradMode::Input), eps, iters }.attack(x, y, runs, rng, |r, samples, clean| {
        let c = clean.dims2().1;
        AttackLoss::DlrTargeted(
            samples.iter().map(|&i| ranked_wrong_class(&clean.data()[i * c..][..c], y[i], r)).collect(),
        )
    })
}

/// The classes other than `y` by decreasing logit, the `r`-th of them (from 0).
fn ranked_wrong_class(z: &[f32], y: usize, r: usize) -> usize {
    let mut order: Vec<usize> = (0..z.len()).filter(|&j| j != y).collect();
    order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
    order[r]
}

/// The checkpoints w_0 = 0 < w_1 < … ≤ `n_iter` where the step size may be halved. The paper's
/// w_j = ⌈p_j·n_iter⌉ (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)),
/// counted as the reference does, in whole iterations: a first interval of ⌊0.22·n⌋, each next one
/// ⌊0.03·n⌋ shorter but at least ⌊0.06·n⌋ (all at least 1). In f64, ⌈0.57·100⌉ would give 58, not 57.
pub fn checkpoints(n_iter: usize) -> Vec<usize> {
    let (mut len, decrease, min) = ((22 * n_iter / 100).max(1), (3 * n_iter / 100).max(1), (6 * n_iter / 100).max(1));
    let mut w = vec![0];
    while let Some(next) = w.last().map(|&last| last + len).filter(|&next| next <= n_iter) {
        w.push(next);
        len = len.saturating_sub(decrease).max(min);
    }
    w
}

/// The model and settings shared by the runs of one attack.
struct Apgd<'m> {
    model: &'m mut Model,
    tape: Tape,
    eps: f32,
    iters: usize,
}

/// What one run found, per sample.
struct Run {
    /// The highest-loss point and its loss.
    best: Tensor,
    best_loss: Vec<f32>,
    /// A point the model misclassifies, where `broken`.
    adv: Tensor,
    broken: Vec<bool>,
}

impl Run {
    fn note_misclassified(&mut self, x: &Tensor, logits: &Tensor, y: &[usize]) {
        for (s, _) in misclassified(logits, y).into_iter().enumerate().filter(|&(_, m)| m) {
            self.broken[s] = true;
            copy_sample(&mut self.adv, s, x, s);
        }
    }
}

impl Apgd<'_> {
    /// `runs` runs, each over the samples still classified correctly; `loss(run, samples,
    /// clean logits)` is what that run maximises for those samples. Returns, per sample, the clean
    /// image if it is misclassified, else a misclassified point if a run found one, else the
    /// highest-loss point over all runs.
    fn attack(
        &mut self,
        x: &Tensor,
        y: &[usize],
        runs: usize,
        rng: &mut StdRng,
        loss: impl Fn(usize, &[usize], &Tensor) -> AttackLoss,
    ) -> Tensor {
        let clean = logits(self.model, x, y.len().max(1));
        let mut broken = misclassified(&clean, y);
        let mut out = x.clone();
        let mut out_loss = vec![f32::NEG_INFINITY; y.len()];
        for r in 0..runs {
            let samples: Vec<usize> = (0..y.len()).filter(|&i| !broken[i]).collect();
            if samples.is_empty() {
                break;
            }
            let ys: Vec<usize> = samples.iter().map(|&i| y[i]).collect();
            let run = self.run(&gather(x, &samples), &ys, &loss(r, &samples, &clean), rng);
            for (k, &i) in samples.iter().enumerate() {
                if run.broken[k] {
                    broken[i] = true;
                    copy_sample(&mut out, i, &run.adv, k);
                } else if run.best_loss[k] > out_loss[i] {
                    // Targeted DLR losses for different targets share their denominator, so across
                    // APGD-T's runs the highest is still the nearest miss.
                    out_loss[i] = run.best_loss[k];
                    copy_sample(&mut out, i, &run.best, k);
                }
            }
        }
        out
    }

    /// One run of `iters` iterations from a random point of the ball around `x0`.
    fn run(&mut self, x0: &Tensor, y: &[usize], loss: &AttackLoss, rng: &mut StdRng) -> Run {
        let (n, per, eps) = (y.len(), sample_len(x0), self.eps);
        let mut x = random_start(x0, eps, rng);
        let (z, mut grad, mut value) = loss.grad(self.model, &mut self.tape, &x, y);
        let mut run = Run { best: x.clone(), best_loss: value.clone(), adv: x.clone(), broken: vec![false; n] };
        run.note_misclassified(&x, &z, y);
        let mut grad_best = grad.clone();
        let mut x_prev = x.clone();
        let mut step = vec![2.0 * eps; n];
        // Per sample, since the last checkpoint: the loss increases, whether the step was halved
        // there, and the best loss then.
        let (mut ups, mut halved, mut best_then) = (vec![0usize; n], vec![true; n], value.clone());
        let marks = checkpoints(self.iters);
        let mut next_mark = 1;
        let mut z_step = vec![0.0; per];
        for i in 0..self.iters {
            let alpha = if i == 0 { 1.0 } else { MOMENTUM };
            for (s, &eta) in step.iter().enumerate() {
                let r = s * per..(s + 1) * per;
                let (xs, ps, cs) =
                    (&mut x.data_mut()[r.clone()], &mut x_prev.data_mut()[r.clone()], &x0.data()[r.clone()]);
                // z = P(x_k + η·sign ∇), then x_{k+1} = P(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1})).
                z_step.copy_from_slice(xs);
                pgd_step(&mut z_step, &grad.data()[r], cs, eta, eps);
                for (((xv, pv), &zv), &c) in xs.iter_mut().zip(ps).zip(&z_step).zip(cs) {
                    let next = project(*xv + alpha * (zv - *xv) + (1.0 - alpha) * (*xv - *pv), c, eps);
                    (*pv, *xv) = (*xv, next);
                }
            }
            let (z, g, l) = loss.grad(self.model, &mut self.tape, &x, y);
            grad = g;
            run.note_misclassified(&x, &z, y);
            for s in 0..n {
                ups[s] += usize::from(l[s] > value[s]);
                if l[s] > run.best_loss[s] {
                    run.best_loss[s] = l[s];
                    copy_sample(&mut run.best, s, &x, s);
                    copy_sample(&mut grad_best, s, &grad, s);
                }
            }
            value = l;
            if marks.get(next_mark) == Some(&(i + 1)) {
                let len = (marks[next_mark] - marks[next_mark - 1]) as f32;
                next_mark += 1;
                for s in 0..n {
                    // Condition 1: too few increases; condition 2: the step was kept at the last
                    // checkpoint and the best loss has not moved since.
                    let stalled = ups[s] as f32 <= RHO * len || (!halved[s] && run.best_loss[s] <= best_then[s]);
                    (ups[s], halved[s], best_then[s]) = (0, stalled, run.best_loss[s]);
                    if stalled {
                        step[s] /= 2.0;
                        copy_sample(&mut x, s, &run.best, s);
                        copy_sample(&mut grad, s, &grad_best, s);
                    }
                }
            }
        }
        run
    }
}
