//! One training step of any objective (docs/ARCHITECTURE.md, "one step"): the teacher's natural
//! logits without a tape, the inner PGD loop on one Input-mode tape (BN in eval mode, both models
//! frozen), then the outer step on a Params-mode tape (student BN in train mode) and the SGD
//! update. Each phase computes exactly the logit sets its objective reads (`methods.rs`). Tested in
//! `tests/train.rs` and, on a GPU, `tests/cuda_parity.rs` (a whole step against the CPU).
use super::methods::{INNER_GRADS, OUTER_GRADS, Objective};
use super::terms::Logit::{self, StudentAdv as SA, StudentNat as SN, TeacherAdv as TA, TeacherNat as TN};
use super::terms::{Logits, Loss};
use crate::Device;
use crate::dist::{self, Ranks};
use crate::err;
use crate::error::Result;
use crate::nn::Model;
use crate::nn::eval::{correct, logits};
use crate::nn::optim::Sgd;
use crate::ops::pgd;
use crate::tape::{GradMode, Tape, Var};
use crate::tensor::Tensor;
use rand::RngExt;
use rand::rngs::StdRng;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// The inner loop's L∞ PGD: budget, step size and number of steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InnerPgd {
    pub eps: f32,
    pub step: f32,
    pub steps: usize,
}

/// This rank's share of a training batch on the models' device, with the teacher's natural logits
/// where read (`Stepper::batch`).
pub struct Batch<'a> {
    pub x: Cow<'a, Tensor>,
    pub y: &'a [usize],
    pub t_nat: Option<Tensor>,
    /// The index of the share's first sample in the whole batch, and the whole batch's size.
    pub first: usize,
    pub total: usize,
}

/// Where the inner loop starts: noise in the objective's start radius, drawn where x lives from a
/// Philox stream whose seed comes from the run's generator (`pgd::counter_start`: a GPU draws it in
/// place; a rank draws its share's part of the whole batch's stream), or noise the caller gives
/// for the whole batch (a fixture's stored start). Either is added to x and projected onto the
/// ε-ball and [0, 1].
pub enum Noise<'a> {
    Draw(&'a mut StdRng),
    Given(&'a Tensor),
}

/// An objective and its inner loop, with the tapes a step reuses from batch to batch (their buffers
/// keep their capacity).
pub struct Stepper {
    pub obj: Objective,
    pub pgd: InnerPgd,
    /// Whether `step` times its phases (waiting for the device at each phase's end).
    pub timed: bool,
    /// The ranks a batch is shared by (one process by default): each runs its share, and the
    /// parameter gradients, the loss and the count of correct samples are summed over them.
    /// Without `sync_bn` (the model's BN normalising over all ranks, so moving the same running
    /// statistics on each), rank 0's running statistics are copied to all after each step, as
    /// PyTorch DDP broadcasts its buffers.
    pub ranks: Ranks,
    inner: Tape,
    outer: Tape,
}

/// What one step reports.
pub struct StepStats {
    /// The outer loss, batch mean.
    pub loss: f64,
    /// Training-batch samples the student classified correctly (natural images when the outer
    /// loss reads them, else the adversarial ones).
    pub correct: usize,
    /// Seconds of the teacher forward, the inner loop and the outer step, when `timed`.
    pub seconds: Option<[f64; 3]>,
}

impl Stepper {
    pub fn new(obj: Objective, pgd: InnerPgd) -> Self {
        Stepper {
            obj,
            pgd,
            timed: false,
            ranks: Ranks::default(),
            inner: Tape::new(GradMode::Input),
            outer: Tape::new(GradMode::Params),
        }
    }

    /// One full step: `batch`, `inner` and `outer` in turn (teacher logits, attack, outer loss,
    /// backward, SGD update). A non-finite loss is an error raised before the update, so the model
    /// stays as it was.
    pub fn step(
        &mut self,
        student: &mut Model,
        mut teacher: Option<&mut Model>,
        opt: &mut Sgd,
        x: &Tensor,
        y: &[usize],
        noise: Noise,
    ) -> Result<StepStats> {
        let dev = student.device();
        let mut clock = Clock::start(self.timed, &dev);
        let batch = self.batch(&dev, teacher.as_deref_mut(), x, y)?;
        clock.lap();
        let xa = self.obj.attacks().then(|| self.inner(student, teacher.as_deref_mut(), &batch, noise));
        clock.lap();
        let stats = self.outer(student, teacher, opt, &batch, xa.as_ref())?;
        clock.lap();
        Ok(StepStats { seconds: clock.laps(), ..stats })
    }

    /// This rank's share of the batch (x, y) on the models' device `dev` (copied once; everything
    /// after stays there), with the teacher's natural logits where either half reads them.
    pub fn batch<'a>(
        &self,
        dev: &Device,
        teacher: Option<&mut Model>,
        x: &'a Tensor,
        y: &'a [usize],
    ) -> Result<Batch<'a>> {
        if self.obj.needs_teacher() && teacher.is_none() {
            return Err(err!("method {} needs a teacher (--teacher)", self.obj.method.name()));
        }
        let (total, share) = (y.len(), self.ranks.group.share(y.len()));
        let (x, y) = match share.len() == total {
            true => (x.on(dev), y),
            false => (Cow::Owned(x.rows(share.start, share.end).into_device(dev)), &y[share.clone()]),
        };
        let reads_tn = self.obj.inner_terms().reads().has(TN) || self.obj.outer_terms().reads().has(TN);
        let t_nat = teacher.filter(|_| reads_tn).map(|t| logits(t, &x, y.len()));
        Ok(Batch { x, y, t_nat, first: share.start, total })
    }

    /// Adversarial examples of the inner objective for the batch: PGD on one tape over x′ that holds
    /// the student's forward and, where the objective reads it, the teacher's, so that one backward
    /// from both logit gradients gives ∇x′ of the whole objective.
    pub fn inner(&mut self, student: &mut Model, teacher: Option<&mut Model>, b: &Batch, noise: Noise) -> Tensor {
        let (terms, cfg, x) = (self.obj.inner_terms(), self.pgd, &*b.x);
        let reads = terms.reads();
        let mut xa = match noise {
            Noise::Draw(rng) => {
                let first = (b.first * x.numel()).checked_div(b.y.len()).unwrap_or(0);
                pgd::counter_start(x, self.obj.start.radius(cfg.eps), rng.random(), first as u64)
            }
            Noise::Given(u) => pgd::start(x, &u.rows(b.first, b.first + b.y.len()).host(), cfg.eps),
        };
        let s_nat = reads.has(SN).then(|| logits(student, x, b.y.len()));
        let mut teacher = teacher.filter(|_| reads.has(TA));
        for _ in 0..cfg.steps {
            let tape = &mut self.inner;
            // The tape owns x′ for the pass and gives it back after, so no iteration copies it.
            let xv = tape.input(xa);
            let sa = student.forward(tape, &xv, false);
            let ta = teacher.as_deref_mut().map(|t| t.forward(tape, &xv, false));
            let mut l = fixed(s_nat.as_ref(), b.t_nat.as_ref());
            l.set(SA, &sa.val);
            if let Some(ta) = &ta {
                l.set(TA, &ta.val);
            }
            let loss = terms.eval(&l, b.y, INNER_GRADS);
            tape.backward(seeds(loss, [(SA, Some(&sa)), (TA, ta.as_ref())]));
            let g = tape.take_grad(&xv).expect("the inner objective reads the adversarial logits");
            // Cleared, the tape lets go of the ops that kept x′ for their backward (x′ comes back
            // unshared) and of the activations and weights (after the last iteration they leave
            // the outer pass's memory, and after the update the old weights' cached filters go).
            tape.clear();
            xa = Arc::unwrap_or_clone(xv.val);
            pgd::step(&mut xa, &g, x, cfg.step, cfg.eps);
        }
        xa
    }

    /// The outer half of a step on the batch and its adversarial counterpart `xa`.
    pub fn outer(
        &mut self,
        student: &mut Model,
        teacher: Option<&mut Model>,
        opt: &mut Sgd,
        b: &Batch,
        xa: Option<&Tensor>,
    ) -> Result<StepStats> {
        let (terms, n) = (self.obj.outer_terms(), b.y.len());
        let (reads, named) = (terms.reads(), terms.names());
        let tape = &mut self.outer;
        tape.clear();
        // Every student set the formula names, even at weight 0 (its forward moves BatchNorm's
        // running statistics); S(x') first, so they see the adversarial batch first.
        let mut forward = |x: Option<&Tensor>, set: Logit| match x.filter(|_| named.has(set)) {
            Some(x) => {
                let v = tape.input(x.clone());
                Some(student.forward(tape, &v, true))
            }
            None => None,
        };
        let s_adv = forward(xa, SA);
        let s_nat = forward(Some(&b.x), SN);
        let t_adv = match (xa, teacher) {
            (Some(xa), Some(t)) if reads.has(TA) => Some(logits(t, xa, n)),
            _ => None,
        };
        let mut l = fixed(None, b.t_nat.as_ref());
        for (set, v) in
            [(SN, s_nat.as_ref().map(|v| &*v.val)), (SA, s_adv.as_ref().map(|v| &*v.val)), (TA, t_adv.as_ref())]
        {
            if let Some(v) = v {
                l.set(set, v);
            }
        }
        // the mean over the whole batch: summed over the ranks, the shares' gradients are its gradient
        let loss = terms.eval(&l, b.y, OUTER_GRADS).mean(b.total);
        let seen = l.get(SN).or(l.get(SA)).expect("the outer loss reads a student");
        let mut sums = [loss.sum(), correct(seen, b.y) as f64];
        self.outer.backward(seeds(loss, [(SN, s_nat.as_ref()), (SA, s_adv.as_ref())]));
        let value = match self.ranks.parallel() {
            false => sums[0] / n.max(1) as f64,
            true => {
                dist::sum_grads(&self.ranks, &mut self.outer)?;
                self.ranks.group.sum_f64(&mut sums);
                sums[0] / b.total.max(1) as f64
            }
        };
        if !value.is_finite() {
            self.outer.clear();
            return Err(err!("the {} loss is {value}", self.obj.method.name()));
        }
        opt.step(&mut student.params, &self.outer);
        if self.ranks.parallel() && !self.ranks.sync_bn {
            dist::broadcast_buffers(&*self.ranks.group, &mut student.params);
        }
        // The tape holds the weights the step started from; dropped now, their cached Winograd
        // filters go before anything runs on the new ones.
        self.outer.clear();
        Ok(StepStats { loss: value, correct: sums[1] as usize, seconds: None })
    }
}

/// The logit sets fixed during a step: the natural student's (eval mode) and teacher's.
fn fixed<'a>(s_nat: Option<&'a Tensor>, t_nat: Option<&'a Tensor>) -> Logits<'a> {
    let mut l = Logits::default();
    for (set, t) in [(SN, s_nat), (TN, t_nat)] {
        if let Some(t) = t {
            l.set(set, t);
        }
    }
    l
}

/// Backward seeds: each computed logit set with the gradient the loss gave it.
fn seeds<const K: usize>(mut loss: Loss, sets: [(Logit, Option<&Var>); K]) -> Vec<(&Var, Tensor)> {
    sets.into_iter().filter_map(|(set, v)| Some((v?, loss.take(set)?))).collect()
}

/// Phase times of a step, each phase ended by waiting for the device (a GPU runs ahead of the host).
struct Clock<'d> {
    dev: Option<&'d Device>,
    last: Instant,
    laps: Vec<f64>,
}

impl<'d> Clock<'d> {
    fn start(on: bool, dev: &'d Device) -> Self {
        let dev = on.then_some(dev);
        dev.inspect(|d| d.sync());
        Clock { dev, last: Instant::now(), laps: Vec::new() }
    }

    fn lap(&mut self) {
        if let Some(d) = self.dev {
            d.sync();
            let now = Instant::now();
            self.laps.push((now - self.last).as_secs_f64());
            self.last = now;
        }
    }

    fn laps(&self) -> Option<[f64; 3]> {
        self.laps.as_slice().try_into().ok()
    }
}
