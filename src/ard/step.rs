//! One training step of any objective (DESIGN.md §1): teacher forward without a tape, the inner
//! PGD loop on Input-mode tapes (BN in eval mode, models frozen), then the outer step on a
//! Params-mode tape (student BN in train mode) and the SGD update.
use super::attacks::{self, predictions};
use super::grad::{forward_input, logits};
use super::methods::{Inner, Logits, Objective, Start};
use crate::err;
use crate::error::Result;
use crate::nn::Model;
use crate::nn::optim::Sgd;
use crate::ops::pgd;
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;
use rand::rngs::StdRng;

/// The inner loop's L∞ PGD.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pgd {
    pub eps: f32,
    pub step: f32,
    pub steps: usize,
}

/// The tapes a step reuses from batch to batch (their buffers keep their capacity).
pub struct Stepper {
    student_in: Tape,
    teacher_in: Tape,
    outer: Tape,
}

/// What one step reports.
pub struct StepStats {
    /// The outer loss, batch mean.
    pub loss: f64,
    /// Training-batch samples the student classified correctly (natural images when the outer
    /// loss reads them, else the adversarial ones).
    pub correct: usize,
}

impl Default for Stepper {
    fn default() -> Self {
        Stepper {
            student_in: Tape::new(GradMode::Input),
            teacher_in: Tape::new(GradMode::Input),
            outer: Tape::new(GradMode::Params),
        }
    }
}

/// `x` moved to a random start inside the ε-ball and [0, 1].
pub fn random_start(x: &Tensor, start: Start, eps: f32, rng: &mut StdRng) -> Tensor {
    let r = match start {
        Start::Uniform => eps,
        Start::Small(s) => s.min(eps),
    };
    attacks::random_start(x, r, rng)
}

impl Stepper {
    /// Adversarial examples of the inner objective for the batch `x`, `y`.
    pub fn inner(
        &mut self,
        obj: &Objective,
        pgd: Pgd,
        student: &mut Model,
        mut teacher: Option<&mut Model>,
        x: &Tensor,
        y: &[usize],
        t_nat: Option<&Tensor>,
        rng: &mut StdRng,
    ) -> Tensor {
        let mut xa = random_start(x, obj.start, pgd.eps, rng);
        let s_nat = (obj.inner == Inner::Trades).then(|| logits(student, x, y.len()));
        for _ in 0..pgd.steps {
            let (xs, ls) = forward_input(student, &mut self.student_in, &xa);
            let tv = match (&mut teacher, obj.inner_needs_teacher_adv()) {
                (Some(t), true) => Some(forward_input(t, &mut self.teacher_in, &xa)),
                _ => None,
            };
            let (gs, gt) = obj.inner_grads(&ls.val, tv.as_ref().map(|(_, l)| &*l.val), s_nat.as_ref(), t_nat, y);
            self.student_in.backward(vec![(&ls, gs)]);
            let mut g = self.student_in.grad(&xs).expect("input gradient").clone();
            if let (Some((xt, lt)), Some(gt)) = (&tv, gt) {
                self.teacher_in.backward(vec![(lt, gt)]);
                g.add_assign(self.teacher_in.grad(xt).expect("input gradient"));
            }
            pgd::step(&mut xa, &g, x, pgd.step, pgd.eps);
        }
        // The last iteration's activations and weights are not needed past here: dropped, they
        // leave the outer pass's memory, and after the update the old weights' cached filters go.
        self.student_in.clear();
        self.teacher_in.clear();
        xa
    }

    /// One full step: attack, outer loss, backward, SGD update. A non-finite loss is an error
    /// raised before the update, so the model stays as it was. The batch is copied to the
    /// student's device once; everything after stays there.
    pub fn step(
        &mut self,
        obj: &Objective,
        pgd: Pgd,
        student: &mut Model,
        mut teacher: Option<&mut Model>,
        opt: &mut Sgd,
        x: &Tensor,
        y: &[usize],
        rng: &mut StdRng,
    ) -> Result<StepStats> {
        let n = y.len();
        let x = &*x.on(&student.device());
        if obj.needs_teacher() && teacher.is_none() {
            return Err(err!("method {} needs a teacher (--teacher)", obj.method.name()));
        }
        let t_nat = teacher.as_deref_mut().map(|t| logits(t, x, n));
        let xa = (obj.inner != Inner::None)
            .then(|| self.inner(obj, pgd, student, teacher.as_deref_mut(), x, y, t_nat.as_ref(), rng));
        self.outer(obj, student, teacher, opt, x, xa.as_ref(), y, t_nat.as_ref())
    }

    /// The outer half of a step, given the teacher's natural logits and the adversarial batch.
    pub fn outer(
        &mut self,
        obj: &Objective,
        student: &mut Model,
        teacher: Option<&mut Model>,
        opt: &mut Sgd,
        x: &Tensor,
        xa: Option<&Tensor>,
        y: &[usize],
        t_nat: Option<&Tensor>,
    ) -> Result<StepStats> {
        let n = y.len();
        let needs = obj.outer_needs();
        self.outer.clear();
        let s_adv = match (xa, needs.s_adv) {
            (Some(xa), true) => {
                let v = self.outer.input(xa.clone());
                Some(student.forward(&mut self.outer, &v, true))
            }
            _ => None,
        };
        let s_nat = needs.s_nat.then(|| {
            let v = self.outer.input(x.clone());
            student.forward(&mut self.outer, &v, true)
        });
        let t_adv = match (xa, teacher, needs.t_adv) {
            (Some(xa), Some(t), true) => Some(logits(t, xa, n)),
            _ => None,
        };
        let l = Logits {
            s_nat: s_nat.as_ref().map(|v| &*v.val),
            s_adv: s_adv.as_ref().map(|v| &*v.val),
            t_nat,
            t_adv: t_adv.as_ref(),
        };
        let loss = obj.outer_loss(&l, y)?;
        let value = loss.value();
        if !value.is_finite() {
            return Err(err!("the {} loss is {value}", obj.method.name()));
        }
        let seen = l.s_nat.or(l.s_adv).expect("the outer loss reads a student");
        let correct = predictions(seen).iter().zip(y).filter(|(p, t)| p == t).count();
        let mut seeds = Vec::new();
        if let (Some(v), Some(g)) = (&s_nat, loss.g_nat) {
            seeds.push((v, g));
        }
        if let (Some(v), Some(g)) = (&s_adv, loss.g_adv) {
            seeds.push((v, g));
        }
        self.outer.backward(seeds);
        opt.step(&mut student.params, &self.outer);
        // The tape holds the weights the step started from; dropped now, their cached Winograd
        // filters go before anything runs on the new ones.
        self.outer.clear();
        Ok(StepStats { loss: value, correct })
    }
}
