//! The vocabulary the objectives are written in: the four logit sets a step can compute, loss
//! terms over them, and their evaluation into per-sample values and one gradient per logit set.
//! `methods.rs` writes every inner and outer objective as a weighted list of these terms, so what
//! an objective reads is derived from its formula, never declared beside it. Tested in
//! `methods.rs` (each outer loss by hand) and `tests/train.rs`.
use crate::ops::loss::{LossOut, Triangle, cross_entropy, kl_div, triangle};
use crate::tensor::Tensor;

/// A logit set: the student's or the teacher's, at the clean batch x or at its adversarial x'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logit {
    StudentNat,
    StudentAdv,
    TeacherNat,
    TeacherAdv,
}

impl Logit {
    pub const ALL: [Logit; 4] = [Logit::StudentNat, Logit::StudentAdv, Logit::TeacherNat, Logit::TeacherAdv];

    pub fn is_teacher(self) -> bool {
        matches!(self, Logit::TeacherNat | Logit::TeacherAdv)
    }

    fn describe(self) -> &'static str {
        match self {
            Logit::StudentNat => "natural student",
            Logit::StudentAdv => "adversarial student",
            Logit::TeacherNat => "natural teacher",
            Logit::TeacherAdv => "adversarial teacher",
        }
    }

    /// The set's name in an objective's JSON (`Sum::to_json`).
    pub fn key(self) -> &'static str {
        match self {
            Logit::StudentNat => "student_nat",
            Logit::StudentAdv => "student_adv",
            Logit::TeacherNat => "teacher_nat",
            Logit::TeacherAdv => "teacher_adv",
        }
    }
}

/// A set of logit sets (what an objective reads, or where its gradients go).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads([bool; 4]);

impl Reads {
    pub const fn of(sets: &[Logit]) -> Reads {
        let (mut r, mut i) = ([false; 4], 0);
        while i < sets.len() {
            r[sets[i] as usize] = true;
            i += 1;
        }
        Reads(r)
    }
    pub fn has(&self, l: Logit) -> bool {
        self.0[l as usize]
    }
    pub fn teacher(&self) -> bool {
        self.has(Logit::TeacherNat) || self.has(Logit::TeacherAdv)
    }
    fn union(self, o: Reads) -> Reads {
        Reads(std::array::from_fn(|i| self.0[i] || o.0[i]))
    }
}

/// The logit sets a step computed, each on the device its models run on.
#[derive(Default)]
pub struct Logits<'a>([Option<&'a Tensor>; 4]);

impl<'a> Logits<'a> {
    pub fn set(&mut self, l: Logit, t: &'a Tensor) {
        self.0[l as usize] = Some(t);
    }
    pub fn get(&self, l: Logit) -> Option<&'a Tensor> {
        self.0[l as usize]
    }
    fn need(&self, l: Logit) -> &'a Tensor {
        self.get(l).unwrap_or_else(|| {
            panic!("the objective reads the {} logits, which the step did not compute", l.describe())
        })
    }
}

/// One term of an objective, per sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Term {
    /// CE(z, y).
    Ce(Logit),
    /// KL(p_a ‖ p_b), p = softmax(z / τ).
    Kl { a: Logit, b: Logit, tau: f32 },
    /// KL(p_a ‖ p_b) at τ = 1, times 1 − P_T(x')[y]^β: IAD's self-introspection, trusted where the
    /// teacher is unsure of the true class at x'.
    Introspection { a: Logit, b: Logit, beta: f32 },
    /// w.teacher_adv·KL(p_T ‖ p_S(x')) + w.teacher_nat·KL(p_T ‖ p_S(x)) + w.adv_nat·KL(p_S(x') ‖ p_S(x)),
    /// with the teacher vertex `teacher` (MMARD's triangle; RSLAD's outer loss is w.adv_nat = 0).
    Triangle { teacher: Logit, w: Triangle, tau: f32 },
}

impl Term {
    /// The logit sets the term reads, in the order its loss op takes them.
    fn operands(&self) -> Vec<Logit> {
        match *self {
            Term::Ce(z) => vec![z],
            Term::Kl { a, b, .. } => vec![a, b],
            Term::Introspection { a, b, .. } => vec![a, b, Logit::TeacherAdv],
            Term::Triangle { teacher, .. } => vec![teacher, Logit::StudentAdv, Logit::StudentNat],
        }
    }

    /// Per-sample values and the gradient of their sum for each operand (the teacher's confidence
    /// in `Introspection` is a weight, not an operand with a gradient).
    fn eval(&self, l: &Logits, y: &[usize]) -> LossOut {
        match *self {
            Term::Ce(z) => cross_entropy(l.need(z), y),
            Term::Kl { a, b, tau } => kl_div(l.need(a), l.need(b), tau),
            Term::Introspection { a, b, beta } => {
                let ta = l.need(Logit::TeacherAdv);
                let (k, ta) = (ta.dims2().1, ta.host());
                let w: Vec<f32> = (0..y.len()).map(|i| 1.0 - softmax_at(&ta[i * k..][..k], y[i]).powf(beta)).collect();
                kl_div(l.need(a), l.need(b), 1.0).weighted(&w)
            }
            Term::Triangle { teacher, w, tau } => {
                triangle(l.need(teacher), l.need(Logit::StudentAdv), l.need(Logit::StudentNat), w, tau)
            }
        }
    }
}

/// A weighted sum of terms: an inner or an outer objective, as its formula is written. A term of
/// weight 0 is evaluated by nobody and reads nothing (`reads`), but it is still part of the formula
/// (`names`): the outer step forwards every student logit set the formula names, because a
/// train-mode forward moves BatchNorm's running statistics (ARD's code forwards S(x) at α = 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Sum(Vec<(f32, Term)>);

impl Sum {
    pub fn new(terms: impl IntoIterator<Item = (f32, Term)>) -> Sum {
        Sum(terms.into_iter().collect())
    }

    /// The terms of nonzero weight.
    fn active(&self) -> impl Iterator<Item = &(f32, Term)> {
        self.0.iter().filter(|(w, _)| *w != 0.0)
    }

    /// Whether no term has a nonzero weight.
    pub fn is_empty(&self) -> bool {
        self.active().next().is_none()
    }

    /// Every logit set some term of nonzero weight reads.
    pub fn reads(&self) -> Reads {
        self.active().fold(Reads::default(), |r, (_, t)| r.union(Reads::of(&t.operands())))
    }

    /// Every logit set the formula names, whatever its terms' weights.
    pub fn names(&self) -> Reads {
        self.0.iter().fold(Reads::default(), |r, (_, t)| r.union(Reads::of(&t.operands())))
    }

    /// The formula as JSON, for other implementations to evaluate (bench/pytorch_step.py): a list
    /// of weighted terms `{"weight", "kind": "ce" | "kl" | "introspection", operands, "tau" /
    /// "beta"}`, the triangle written out as its three KL terms; terms of weight 0 included.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let kl = |w: f32, a: Logit, b: Logit, tau: f32| json!({"weight": w, "kind": "kl", "a": a.key(), "b": b.key(), "tau": tau});
        let terms = self.0.iter().flat_map(|&(w, t)| match t {
            Term::Ce(z) => vec![json!({"weight": w, "kind": "ce", "z": z.key()})],
            Term::Kl { a, b, tau } => vec![kl(w, a, b, tau)],
            Term::Introspection { a, b, beta } => {
                vec![json!({"weight": w, "kind": "introspection", "a": a.key(), "b": b.key(), "beta": beta})]
            }
            Term::Triangle { teacher, w: e, tau } => vec![
                kl(w * e.teacher_adv, teacher, Logit::StudentAdv, tau),
                kl(w * e.teacher_nat, teacher, Logit::StudentNat, tau),
                kl(w * e.adv_nat, Logit::StudentAdv, Logit::StudentNat, tau),
            ],
        });
        serde_json::Value::Array(terms.collect())
    }

    /// Per-sample values Σ w·term and the gradients of their batch sum for the logit sets in `to`.
    pub fn eval(&self, l: &Logits, y: &[usize], to: Reads) -> Loss {
        let dev = Logit::ALL.iter().find_map(|&s| l.get(s)).map_or(crate::Device::Cpu, Tensor::device);
        let mut loss = Loss { per_sample: Tensor::zeros_on(&[y.len()], &dev), grads: Default::default() };
        for (w, term) in self.active() {
            let out = term.eval(l, y);
            loss.per_sample.add_scaled(&out.per_sample, *w);
            for (mut g, set) in out.grads.into_iter().zip(term.operands()).filter(|(_, s)| to.has(*s)) {
                g.scale(*w);
                match &mut loss.grads[set as usize] {
                    Some(d) => d.add_assign(&g),
                    dst => *dst = Some(g),
                }
            }
        }
        loss
    }
}

/// An objective's per-sample values and its gradient for each logit set that receives one.
pub struct Loss {
    pub per_sample: Tensor,
    grads: [Option<Tensor>; 4],
}

impl Loss {
    /// The gradient for `l`, taken out (None when no term gave it one).
    pub fn take(&mut self, l: Logit) -> Option<Tensor> {
        self.grads[l as usize].take()
    }

    pub fn grad(&self, l: Logit) -> Option<&Tensor> {
        self.grads[l as usize].as_ref()
    }

    /// Gradients divided by `n`, those of the batch mean (`value` computes the mean of the
    /// per-sample values itself).
    pub fn mean(mut self, n: usize) -> Loss {
        let k = 1.0 / n.max(1) as f32;
        self.grads.iter_mut().flatten().for_each(|g| g.scale(k));
        self
    }

    /// The sum of the per-sample values.
    pub fn sum(&self) -> f64 {
        self.per_sample.host().iter().map(|&v| v as f64).sum::<f64>()
    }

    /// The batch mean of the per-sample values.
    pub fn value(&self) -> f64 {
        self.sum() / self.per_sample.numel().max(1) as f64
    }
}

/// softmax(z)[i], in f64.
pub(crate) fn softmax_at(z: &[f32], i: usize) -> f32 {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f64 = z.iter().map(|&v| ((v - m) as f64).exp()).sum();
    (((z[i] - m) as f64).exp() / s) as f32
}
