//! The training objectives (docs/methods.md; docs/ARCHITECTURE.md for where they run): each method
//! is an inner objective, which PGD maximises over the ε-ball, and an outer objective, which SGD
//! minimises. Each half is written once, as its paper's formula in the terms of `terms.rs`; what it
//! reads (which of the four logit sets the step computes) is derived from that formula. The halves
//! are separately selectable, so MMARD's inner loop or triangle plugs into the other methods. The
//! inner objective is maximised on its batch sum, the outer loss is the batch mean. Tests: by hand
//! below, `tests/train.rs` (every method and pairing trains).
use super::terms::{Logit, Reads, Sum, Term};
use crate::err;
use crate::error::Result;
pub use crate::ops::loss::Triangle;
use Logit::{StudentAdv as SA, StudentNat as SN, TeacherAdv as TA, TeacherNat as TN};

crate::named_enum! { "method",
/// A method of the literature: both halves and its published coefficients.
pub enum Method {
    /// Natural training (no attack).
    Natural = "natural",
    /// PGD adversarial training (Madry et al. 2018).
    PgdAt = "pgd_at",
    /// TRADES (Zhang et al. 2019).
    Trades = "trades",
    /// Adversarially robust distillation (Goldblum et al. 2020).
    Ard = "ard",
    /// Introspective adversarial distillation (Zhu et al. 2022).
    Iad = "iad",
    /// Robust soft label adversarial distillation (Zi et al. 2021).
    Rslad = "rslad",
    /// Adaptive adversarial distillation (Huang et al. 2023).
    Adaad = "adaad",
    /// MMARD (Wang et al. 2025): the teacher-pulled inner loop and the triangle outer loss.
    Mmard = "mmard",
}
}

crate::named_enum! { "inner objective",
/// What PGD maximises (`--inner`).
pub enum Inner {
    /// No attack: natural training.
    None = "none",
    /// CE(S(x'), y): PGD-AT, ARD, IAD.
    Ce = "ce" | "pgd_at" | "ard" | "iad",
    /// KL(p_S(x) ‖ p_S(x')): TRADES.
    Trades = "trades",
    /// KL(p_T(x) ‖ p_S(x')): RSLAD.
    Rslad = "rslad",
    /// KL(p_T(x') ‖ p_S(x')), gradient through teacher and student: AdaAD.
    Adaad = "adaad",
    /// KL(p_T(x) ‖ p_S(x')) + λ·KL(p_T(x) ‖ p_T(x')): MMARD, the teacher's own robust prediction
    /// pulling x' toward the teacher's decision boundary.
    Mmard = "mmard",
}
}

crate::named_enum! { "outer objective",
/// What SGD minimises (`--outer`).
pub enum Outer {
    /// CE(S(x), y).
    Natural = "natural",
    /// CE(S(x'), y).
    PgdAt = "pgd_at",
    /// CE(S(x), y) + β·KL(p_S(x) ‖ p_S(x')).
    Trades = "trades",
    /// α·τ²·KL(p_T(x) ‖ p_S(x')) + (1−α)·CE(S(x), y).
    Ard = "ard",
    /// The ARD loss + α·(1 − P_T(x')[y]^β_iad)·KL(p_S(x) ‖ p_S(x')).
    Iad = "iad",
    /// α·KL(p_T(x') ‖ p_S(x')) + (1−α)·KL(p_T(x) ‖ p_S(x)).
    Adaad = "adaad",
    /// a·KL(p_T ‖ p_S(x')) + b·KL(p_T ‖ p_S(x)) + c·KL(p_S(x') ‖ p_S(x)); RSLAD is (5/6, 1/6, 0).
    Triangle = "triangle" | "rslad" | "mmard",
}
}

/// How the inner loop starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// x + U(−ε, ε) (PGD-AT, ARD, IAD)
    Uniform,
    /// x + U(−σ, σ) with a small σ (TRADES, RSLAD, AdaAD and MMARD start near x)
    Small(f32),
}

impl Start {
    /// The radius of the start's noise for a budget ε.
    pub fn radius(self, eps: f32) -> f32 {
        match self {
            Start::Uniform => eps,
            Start::Small(s) => s.min(eps),
        }
    }
}

/// Every coefficient of every method; each is a CLI flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Coeffs {
    /// Temperature τ of the KL terms.
    pub tau: f32,
    /// TRADES' β.
    pub beta: f32,
    /// ARD / IAD / AdaAD mixing weight α.
    pub alpha: f32,
    /// IAD's exponent on the teacher's confidence.
    pub iad_beta: f32,
    /// MMARD inner λ.
    pub lambda: f32,
    /// Triangle edge weights.
    pub tri: Triangle,
    /// The triangle's teacher vertex: p_T(x) (`TeacherNat`) or p_T(x') (`TeacherAdv`).
    pub tri_teacher: Logit,
}

impl Inner {
    /// The inner objective as a sum of terms (maximised on its batch sum).
    pub fn terms(self, c: &Coeffs) -> Sum {
        let tau = c.tau;
        Sum::new(match self {
            Inner::None => vec![],
            Inner::Ce => vec![(1.0, Term::Ce(SA))],
            Inner::Trades => vec![(1.0, Term::Kl { a: SN, b: SA, tau: 1.0 })],
            Inner::Rslad => vec![(1.0, Term::Kl { a: TN, b: SA, tau })],
            Inner::Adaad => vec![(1.0, Term::Kl { a: TA, b: SA, tau })],
            Inner::Mmard => vec![(1.0, Term::Kl { a: TN, b: SA, tau }), (c.lambda, Term::Kl { a: TN, b: TA, tau })],
        })
    }
}

impl Outer {
    /// The outer objective as a sum of terms (minimised on its batch mean).
    pub fn terms(self, c: &Coeffs) -> Sum {
        let (tau, a) = (c.tau, c.alpha);
        let ard = [(a * tau * tau, Term::Kl { a: TN, b: SA, tau }), (1.0 - a, Term::Ce(SN))];
        Sum::new(match self {
            Outer::Natural => vec![(1.0, Term::Ce(SN))],
            Outer::PgdAt => vec![(1.0, Term::Ce(SA))],
            Outer::Trades => vec![(1.0, Term::Ce(SN)), (c.beta, Term::Kl { a: SN, b: SA, tau: 1.0 })],
            Outer::Ard => ard.to_vec(),
            Outer::Iad => [&ard[..], &[(a, Term::Introspection { a: SN, b: SA, beta: c.iad_beta })]].concat(),
            Outer::Adaad => vec![(a, Term::Kl { a: TA, b: SA, tau }), (1.0 - a, Term::Kl { a: TN, b: SN, tau })],
            Outer::Triangle => vec![(1.0, Term::Triangle { teacher: c.tri_teacher, w: c.tri, tau })],
        })
    }
}

/// A complete objective: method name (for records), both halves and their coefficients.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub method: Method,
    pub inner: Inner,
    pub outer: Outer,
    pub start: Start,
    pub c: Coeffs,
}

impl Method {
    /// The method as its paper defines it, with its published default coefficients.
    pub fn objective(self) -> Objective {
        let c = Coeffs {
            tau: 1.0,
            beta: 6.0,
            alpha: 1.0,
            iad_beta: 0.1,
            lambda: 1.0,
            tri: Triangle { teacher_adv: 5.0 / 6.0, teacher_nat: 1.0 / 6.0, adv_nat: 1.0 },
            tri_teacher: TN,
        };
        let small = Start::Small(0.001);
        let (inner, outer, start, c) = match self {
            Method::Natural => (Inner::None, Outer::Natural, Start::Uniform, c),
            Method::PgdAt => (Inner::Ce, Outer::PgdAt, Start::Uniform, c),
            Method::Trades => (Inner::Trades, Outer::Trades, small, c),
            // ARD's code defaults: τ = 30, α = 1 (the CE term off).
            Method::Ard => (Inner::Ce, Outer::Ard, Start::Uniform, Coeffs { tau: 30.0, ..c }),
            Method::Iad => (Inner::Ce, Outer::Iad, Start::Uniform, c),
            Method::Rslad => {
                (Inner::Rslad, Outer::Triangle, small, Coeffs { tri: Triangle { adv_nat: 0.0, ..c.tri }, ..c })
            }
            Method::Adaad => (Inner::Adaad, Outer::Adaad, small, c),
            Method::Mmard => (Inner::Mmard, Outer::Triangle, small, c),
        };
        Objective { method: self, inner, outer, start, c }
    }

    /// Weight decay of the method's paper (AdaAD trains with 5e-4, the others with 2e-4).
    pub fn weight_decay(self) -> f32 {
        if self == Method::Adaad { 5e-4 } else { 2e-4 }
    }
}

impl Objective {
    pub fn inner_terms(&self) -> Sum {
        self.inner.terms(&self.c)
    }

    pub fn outer_terms(&self) -> Sum {
        self.outer.terms(&self.c)
    }

    /// Whether there is an inner loop (some inner term to maximise).
    pub fn attacks(&self) -> bool {
        !self.inner_terms().is_empty()
    }

    /// Whether either half reads a teacher.
    pub fn needs_teacher(&self) -> bool {
        self.inner_terms().reads().teacher() || self.outer_terms().reads().teacher()
    }

    /// Both halves as JSON (`Sum::to_json`), with the inner loop's start radius for the budget
    /// `eps`, the student sets the outer step forwards (in that order, in train mode) and the
    /// method's weight decay: `mmard bench objective`, read by bench/pytorch_step.py.
    pub fn to_json(&self, eps: f32) -> serde_json::Value {
        let forwards: Vec<&str> =
            [SA, SN].into_iter().filter(|&s| self.outer_terms().names().has(s)).map(Logit::key).collect();
        serde_json::json!({
            "method": self.method.name(), "inner": self.inner.name(), "outer": self.outer.name(),
            "inner_terms": self.inner_terms().to_json(), "start_radius": self.start.radius(eps),
            "outer_terms": self.outer_terms().to_json(), "outer_forwards": forwards,
            "weight_decay": self.method.weight_decay(),
        })
    }

    /// Checks a combination the user assembled; names the flag at fault.
    pub fn validate(&self) -> Result<()> {
        let c = &self.c;
        if c.tau.is_nan() || c.tau <= 0.0 {
            return Err(err!("--tau must be positive, got {}", c.tau));
        }
        if !(0.0..=1.0).contains(&c.alpha) {
            return Err(err!("--alpha must be in [0, 1], got {}", c.alpha));
        }
        let w = [c.beta, c.lambda, c.iad_beta, c.tri.teacher_adv, c.tri.teacher_nat, c.tri.adv_nat];
        if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(err!("--beta, --lambda, --iad-beta and the triangle weights must be finite and ≥ 0"));
        }
        if !c.tri_teacher.is_teacher() {
            return Err(err!("the triangle's teacher vertex must be a teacher's logits, got {:?}", c.tri_teacher));
        }
        let outer = self.outer_terms().reads();
        let reads_adv = outer.has(SA) || outer.has(TA);
        if !self.attacks() && reads_adv {
            return Err(err!("--inner none only goes with an outer objective that reads no adversarial example"));
        }
        if self.attacks() && !reads_adv {
            return Err(err!("the {:?} outer objective reads no adversarial example; use --inner none", self.outer));
        }
        Ok(())
    }
}

/// Which logit sets receive gradients: in the inner loop those at x' (the variable), in the outer
/// step the student's (the teacher is frozen).
pub const INNER_GRADS: Reads = Reads::of(&[SA, TA]);
pub const OUTER_GRADS: Reads = Reads::of(&[SN, SA]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ard::terms::{Logits, softmax_at};
    use crate::ops::loss::{cross_entropy, kl_div};
    use crate::tensor::Tensor;

    fn t(rows: &[[f32; 3]]) -> Tensor {
        Tensor::from_vec(&[rows.len(), 3], rows.iter().flatten().copied().collect())
    }

    fn logits<'a>(sets: &[(Logit, &'a Tensor)]) -> Logits<'a> {
        let mut l = Logits::default();
        sets.iter().for_each(|&(s, v)| l.set(s, v));
        l
    }

    fn outer(o: &Objective, l: &Logits, y: &[usize]) -> crate::ard::terms::Loss {
        o.outer_terms().eval(l, y, OUTER_GRADS).mean(y.len())
    }

    #[test]
    fn every_method_is_consistent() {
        for &m in Method::ALL {
            let o = m.objective();
            o.validate().unwrap();
            assert_eq!(m.name().parse::<Method>().ok(), Some(m));
            assert_eq!(o.attacks(), m != Method::Natural);
        }
    }

    #[test]
    fn reads_follow_the_formulas() {
        let reads = |m: Method| (m.objective().inner_terms().reads(), m.objective().outer_terms().reads());
        let (inner, outer) = reads(Method::Mmard);
        assert!(inner.has(TN) && inner.has(TA) && inner.has(SA) && !inner.has(SN));
        assert!(outer.has(TN) && outer.has(SA) && outer.has(SN) && !outer.has(TA));
        // α = 1 leaves ARD's CE term unevaluated, but the formula still names the natural student
        // (the outer step forwards it, as ARD's code does, for BatchNorm's running statistics).
        let ard = Method::Ard.objective().outer_terms();
        assert!(!ard.reads().has(SN) && ard.names().has(SN));
        let mut o = Method::Ard.objective();
        o.c.alpha = 0.5;
        assert!(o.outer_terms().reads().has(SN));
        // λ = 0 leaves MMARD's teacher term out of the inner loop: RSLAD's inner loop.
        o = Method::Mmard.objective();
        o.c.lambda = 0.0;
        assert_eq!(o.inner_terms().reads(), Method::Rslad.objective().inner_terms().reads());
        assert!(!Method::PgdAt.objective().needs_teacher() && Method::Iad.objective().needs_teacher());
    }

    #[test]
    fn rslad_outer_by_hand() {
        let (tn, sa, sn) = (t(&[[2.0, 0.0, -1.0]]), t(&[[0.0, 1.0, 0.0]]), t(&[[1.0, 0.5, -0.5]]));
        let o = Method::Rslad.objective();
        let mut l = outer(&o, &logits(&[(SN, &sn), (SA, &sa), (TN, &tn)]), &[0]);
        let want = 5.0 / 6.0 * kl_div(&tn, &sa, 1.0).per_sample.data()[0]
            + 1.0 / 6.0 * kl_div(&tn, &sn, 1.0).per_sample.data()[0];
        assert!((l.value() - want as f64).abs() < 1e-6);
        // RSLAD's gradient on the adversarial logits is (5/6)(p_S(x') − p_T(x)).
        let ga = kl_div(&tn, &sa, 1.0).grads.remove(1);
        for (a, b) in l.take(SA).unwrap().data().iter().zip(ga.data()) {
            assert!((a - 5.0 / 6.0 * b).abs() < 1e-6);
        }
    }

    #[test]
    fn trades_and_ard_outer_by_hand() {
        let (sn, sa) = (t(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]), t(&[[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]));
        let tn = t(&[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]);
        let y = [0, 1];
        let l = logits(&[(SN, &sn), (SA, &sa), (TN, &tn)]);
        let tr = outer(&Method::Trades.objective(), &l, &y);
        let ce = cross_entropy(&sn, &y).mean();
        let kl = kl_div(&sn, &sa, 1.0).mean();
        assert!((tr.value() - (ce + 6.0 * kl)).abs() < 1e-6);
        let ard = outer(&Method::Ard.objective(), &l, &y);
        assert!((ard.value() - 900.0 * kl_div(&tn, &sa, 30.0).mean()).abs() < 1e-4);
        assert!(ard.grad(SN).is_none(), "α = 1 leaves the natural student out");
    }

    #[test]
    fn iad_and_adaad_outer_by_hand() {
        let (sn, sa) = (t(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.5]]), t(&[[0.0, 0.5, 1.0], [0.0, 1.0, 1.0]]));
        let (tn, ta) = (t(&[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), t(&[[1.0, 1.0, 0.0], [0.0, 0.5, 1.0]]));
        let y = [0, 1];
        let l = logits(&[(SN, &sn), (SA, &sa), (TN, &tn), (TA, &ta)]);
        // IAD: the ARD term (τ = 1, α = 1) plus each sample's self-introspection KL weighted by
        // 1 − P_T(x')[y]^0.1.
        let iad = outer(&Method::Iad.objective(), &l, &y);
        let ard = kl_div(&tn, &sa, 1.0).per_sample.into_vec();
        let intro = kl_div(&sn, &sa, 1.0).per_sample.into_vec();
        let p_true = [softmax_at(&[1.0, 1.0, 0.0], 0), softmax_at(&[0.0, 0.5, 1.0], 1)];
        let want: f32 = (0..2).map(|i| ard[i] + (1.0 - p_true[i].powf(0.1)) * intro[i]).sum::<f32>() / 2.0;
        assert!((iad.value() - want as f64).abs() < 1e-6);
        assert!(iad.grad(SN).is_some() && iad.grad(SA).is_some());
        // AdaAD with α = 0.7: 0.7·KL(p_T(x') ‖ p_S(x')) + 0.3·KL(p_T(x) ‖ p_S(x)).
        let mut o = Method::Adaad.objective();
        o.c.alpha = 0.7;
        let ada = outer(&o, &l, &y);
        let want = 0.7 * kl_div(&ta, &sa, 1.0).mean() + 0.3 * kl_div(&tn, &sn, 1.0).mean();
        assert!((ada.value() - want).abs() < 1e-6);
    }

    #[test]
    fn mmard_inner_pulls_the_teacher_too() {
        let (sa, ta, tn) = (t(&[[0.0, 1.0, 0.0]]), t(&[[1.0, 1.0, 0.0]]), t(&[[2.0, 0.0, 0.0]]));
        let o = Method::Mmard.objective();
        let mut g = o.inner_terms().eval(&logits(&[(SA, &sa), (TA, &ta), (TN, &tn)]), &[0], INNER_GRADS);
        assert_eq!(g.take(SA).unwrap().data(), kl_div(&tn, &sa, 1.0).grads[1].data());
        assert_eq!(g.take(TA).unwrap().data(), kl_div(&tn, &ta, 1.0).grads[1].data());
        assert!(g.take(TN).is_none(), "the natural teacher is fixed during the attack");
    }
}
