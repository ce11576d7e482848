//! Training objectives (DESIGN.md §4, docs/methods.md): each method is an inner objective, which
//! PGD maximises over the ε-ball, and an outer objective, which SGD minimises. The two halves are
//! separately selectable, so MMARD's inner loop or triangle loss plugs into the other methods.
//! Every outer loss is a batch mean of per-sample values.
use crate::err;
use crate::error::Result;
use crate::ops::loss::{LossOut, Triangle, cross_entropy, kl_div, triangle};
use crate::tensor::Tensor;
use std::str::FromStr;

/// Names, for flags and messages.
pub const METHODS: [&str; 8] = ["natural", "pgd_at", "trades", "ard", "iad", "rslad", "adaad", "mmard"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Natural,
    PgdAt,
    Trades,
    Ard,
    Iad,
    Rslad,
    Adaad,
    Mmard,
}

/// What PGD maximises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// No attack: natural training.
    None,
    /// CE(S(x'), y): PGD-AT, ARD, IAD.
    Ce,
    /// KL(p_S(x) ‖ p_S(x')): TRADES.
    Trades,
    /// KL(p_T(x) ‖ p_S(x')): RSLAD.
    Rslad,
    /// KL(p_T(x') ‖ p_S(x')), gradient through teacher and student: AdaAD.
    Adaad,
    /// KL(p_T(x) ‖ p_S(x')) + λ·KL(p_T(x) ‖ p_T(x')): MMARD, the teacher's own robust prediction
    /// pulling x' toward the teacher's decision boundary.
    Mmard,
}

/// What SGD minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outer {
    /// CE(S(x), y)
    Natural,
    /// CE(S(x'), y)
    PgdAt,
    /// CE(S(x), y) + β·KL(p_S(x) ‖ p_S(x'))
    Trades,
    /// α·τ²·KL(p_T(x) ‖ p_S(x')) + (1−α)·CE(S(x), y)
    Ard,
    /// ARD term + α·(1 − P_T(x')[y]^β_iad)·KL(p_S(x) ‖ p_S(x'))
    Iad,
    /// α·KL(p_T(x') ‖ p_S(x')) + (1−α)·KL(p_T(x) ‖ p_S(x))
    Adaad,
    /// a·KL(p_T ‖ p_S(x')) + b·KL(p_T ‖ p_S(x)) + c·KL(p_S(x') ‖ p_S(x)); RSLAD is (5/6, 1/6, 0).
    Triangle,
}

/// How the inner loop starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// x + U(−ε, ε) (PGD-AT, ARD, IAD)
    Uniform,
    /// x + U(−σ, σ) with a small σ (TRADES, RSLAD, AdaAD and MMARD start near x)
    Small(f32),
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
    /// Triangle's teacher vertex: p_T(x') instead of p_T(x).
    pub teacher_adv: bool,
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

impl FromStr for Method {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let i = METHODS
            .iter()
            .position(|m| *m == s)
            .ok_or_else(|| err!("unknown method `{s}` (expected one of {})", METHODS.join(", ")))?;
        Ok([
            Method::Natural,
            Method::PgdAt,
            Method::Trades,
            Method::Ard,
            Method::Iad,
            Method::Rslad,
            Method::Adaad,
            Method::Mmard,
        ][i])
    }
}

impl FromStr for Inner {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Inner::None,
            "ce" | "pgd_at" | "ard" | "iad" => Inner::Ce,
            "trades" => Inner::Trades,
            "rslad" => Inner::Rslad,
            "adaad" => Inner::Adaad,
            "mmard" => Inner::Mmard,
            _ => {
                return Err(err!("unknown inner objective `{s}` (expected none, ce, trades, rslad, adaad or mmard)"));
            }
        })
    }
}

impl FromStr for Outer {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "natural" => Outer::Natural,
            "pgd_at" => Outer::PgdAt,
            "trades" => Outer::Trades,
            "ard" => Outer::Ard,
            "iad" => Outer::Iad,
            "adaad" => Outer::Adaad,
            "triangle" | "rslad" | "mmard" => Outer::Triangle,
            _ => {
                return Err(err!(
                    "unknown outer objective `{s}` (expected natural, pgd_at, trades, ard, iad, adaad, rslad or triangle)"
                ));
            }
        })
    }
}

impl Method {
    pub fn name(self) -> &'static str {
        METHODS[self as usize]
    }

    /// The method as its paper defines it, with its published default coefficients.
    pub fn objective(self) -> Objective {
        let c = Coeffs {
            tau: 1.0,
            beta: 6.0,
            alpha: 1.0,
            iad_beta: 0.1,
            lambda: 1.0,
            tri: Triangle { teacher_adv: 5.0 / 6.0, teacher_nat: 1.0 / 6.0, adv_nat: 1.0 },
            teacher_adv: false,
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
    /// Whether either half reads a teacher.
    pub fn needs_teacher(&self) -> bool {
        matches!(self.inner, Inner::Rslad | Inner::Adaad | Inner::Mmard)
            || matches!(self.outer, Outer::Ard | Outer::Iad | Outer::Adaad | Outer::Triangle)
    }

    /// Which logits the outer loss reads, so the step computes only those.
    pub fn outer_needs(&self) -> Needs {
        let o = self.outer;
        Needs {
            s_nat: !matches!(o, Outer::PgdAt) && !(matches!(o, Outer::Ard | Outer::Adaad) && self.c.alpha == 1.0),
            s_adv: o != Outer::Natural,
            t_adv: matches!(o, Outer::Iad | Outer::Adaad) || (o == Outer::Triangle && self.c.teacher_adv),
        }
    }

    /// The outer loss (batch mean) and its gradients w.r.t. the natural and adversarial student
    /// logits. `l` holds the logits the outer loss reads (see `outer_needs`).
    pub fn outer_loss(&self, l: &Logits, y: &[usize]) -> Result<OuterLoss> {
        let c = &self.c;
        let n = y.len();
        let mut acc = OuterLoss { per_sample: Tensor::zeros_on(&[n], &l.device()), g_nat: None, g_adv: None };
        let outer = self.outer;
        fn want<'t>(t: Option<&'t Tensor>, what: &str, outer: Outer) -> Result<&'t Tensor> {
            t.ok_or_else(|| err!("outer loss {outer:?} needs the {what} logits"))
        }
        let want = |t, what| want(t, what, outer);
        match self.outer {
            Outer::Natural => acc.add(1.0, cross_entropy(want(l.s_nat, "natural student")?, y), [Slot::Nat]),
            Outer::PgdAt => acc.add(1.0, cross_entropy(want(l.s_adv, "adversarial student")?, y), [Slot::Adv]),
            Outer::Trades => {
                let (sn, sa) = (want(l.s_nat, "natural student")?, want(l.s_adv, "adversarial student")?);
                acc.add(1.0, cross_entropy(sn, y), [Slot::Nat]);
                acc.add(c.beta, kl_div(sn, sa, 1.0), [Slot::Nat, Slot::Adv]);
            }
            Outer::Ard | Outer::Iad => {
                let (tn, sa) = (want(l.t_nat, "natural teacher")?, want(l.s_adv, "adversarial student")?);
                acc.add(c.alpha * c.tau * c.tau, kl_div(tn, sa, c.tau), [Slot::None, Slot::Adv]);
                if c.alpha != 1.0 {
                    acc.add(1.0 - c.alpha, cross_entropy(want(l.s_nat, "natural student")?, y), [Slot::Nat]);
                }
                if self.outer == Outer::Iad {
                    // Trust the teacher less where it is unsure of the true class at x'.
                    let ta = want(l.t_adv, "adversarial teacher")?;
                    let (k, ta_host) = (ta.dims2().1, ta.host());
                    let w: Vec<f32> =
                        (0..n).map(|i| 1.0 - softmax_at(&ta_host[i * k..][..k], y[i]).powf(c.iad_beta)).collect();
                    acc.add(
                        c.alpha,
                        kl_div(want(l.s_nat, "natural student")?, sa, 1.0).weighted(&w),
                        [Slot::Nat, Slot::Adv],
                    );
                }
            }
            Outer::Adaad => {
                let (ta, sa) = (want(l.t_adv, "adversarial teacher")?, want(l.s_adv, "adversarial student")?);
                acc.add(c.alpha, kl_div(ta, sa, c.tau), [Slot::None, Slot::Adv]);
                if c.alpha != 1.0 {
                    acc.add(
                        1.0 - c.alpha,
                        kl_div(want(l.t_nat, "natural teacher")?, want(l.s_nat, "natural student")?, c.tau),
                        [Slot::None, Slot::Nat],
                    );
                }
            }
            Outer::Triangle => {
                let t = if c.teacher_adv {
                    want(l.t_adv, "adversarial teacher")?
                } else {
                    want(l.t_nat, "natural teacher")?
                };
                let (sa, sn) = (want(l.s_adv, "adversarial student")?, want(l.s_nat, "natural student")?);
                acc.add(1.0, triangle(t, sa, sn, c.tri, c.tau), [Slot::None, Slot::Adv, Slot::Nat]);
            }
        }
        acc.mean(n);
        Ok(acc)
    }

    /// The gradient of the inner objective (batch sum) w.r.t. the student's and the teacher's
    /// logits at x'. `s_nat`/`t_nat` are the eval-mode logits at x, fixed during the attack.
    pub fn inner_grads(
        &self,
        s_adv: &Tensor,
        t_adv: Option<&Tensor>,
        s_nat: Option<&Tensor>,
        t_nat: Option<&Tensor>,
        y: &[usize],
    ) -> (Tensor, Option<Tensor>) {
        let c = &self.c;
        fn need(t: Option<&Tensor>) -> &Tensor {
            t.expect("the inner objective's logits were computed")
        }
        match self.inner {
            Inner::None => unreachable!("natural training has no inner loop"),
            Inner::Ce => (cross_entropy(s_adv, y).grads.remove(0), None),
            Inner::Trades => (kl_div(need(s_nat), s_adv, 1.0).grads.remove(1), None),
            Inner::Rslad => (kl_div(need(t_nat), s_adv, c.tau).grads.remove(1), None),
            Inner::Adaad => {
                let mut g = kl_div(need(t_adv), s_adv, c.tau).grads;
                let gs = g.remove(1);
                (gs, Some(g.remove(0)))
            }
            Inner::Mmard => {
                let gs = kl_div(need(t_nat), s_adv, c.tau).grads.remove(1);
                let gt = kl_div(need(t_nat), need(t_adv), c.tau).scaled(c.lambda).grads.remove(1);
                (gs, Some(gt))
            }
        }
    }

    /// Whether the inner loop needs the teacher at x' (with input gradients).
    pub fn inner_needs_teacher_adv(&self) -> bool {
        matches!(self.inner, Inner::Adaad | Inner::Mmard)
    }

    /// Checks a combination the user assembled; names the flag at fault.
    pub fn validate(&self) -> Result<()> {
        let c = &self.c;
        if !(c.tau > 0.0) {
            return Err(err!("--tau must be positive, got {}", c.tau));
        }
        if !(0.0..=1.0).contains(&c.alpha) {
            return Err(err!("--alpha must be in [0, 1], got {}", c.alpha));
        }
        let w = [c.beta, c.lambda, c.iad_beta, c.tri.teacher_adv, c.tri.teacher_nat, c.tri.adv_nat];
        if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(err!("--beta, --lambda, --iad-beta and the triangle weights must be finite and ≥ 0"));
        }
        if self.inner == Inner::None && self.outer != Outer::Natural {
            return Err(err!("--inner none only goes with the natural outer objective"));
        }
        if self.outer == Outer::Natural && self.inner != Inner::None {
            return Err(err!("the natural outer objective reads no adversarial example; use --inner none"));
        }
        Ok(())
    }
}

/// Which logits an outer loss reads besides the natural teacher's.
#[derive(Clone, Copy, Debug)]
pub struct Needs {
    pub s_nat: bool,
    pub s_adv: bool,
    pub t_adv: bool,
}

/// Logits available to an outer loss.
#[derive(Default)]
pub struct Logits<'a> {
    pub s_nat: Option<&'a Tensor>,
    pub s_adv: Option<&'a Tensor>,
    pub t_nat: Option<&'a Tensor>,
    pub t_adv: Option<&'a Tensor>,
}

impl Logits<'_> {
    /// Where the logits live (the CPU when there are none).
    fn device(&self) -> crate::Device {
        [self.s_nat, self.s_adv, self.t_nat, self.t_adv]
            .into_iter()
            .flatten()
            .next()
            .map_or(crate::Device::Cpu, Tensor::device)
    }
}

/// Where a loss term's gradient for one logit set goes.
#[derive(Clone, Copy)]
enum Slot {
    Nat,
    Adv,
    /// A teacher's logits: no gradient in the outer step.
    None,
}

/// An outer loss: per-sample values and the gradients for the two student logit sets.
pub struct OuterLoss {
    pub per_sample: Tensor,
    pub g_nat: Option<Tensor>,
    pub g_adv: Option<Tensor>,
}

impl OuterLoss {
    fn add<const K: usize>(&mut self, w: f32, out: LossOut, slots: [Slot; K]) {
        self.per_sample.add_scaled(&out.per_sample, w);
        for (g, slot) in out.grads.into_iter().zip(slots) {
            let dst = match slot {
                Slot::Nat => &mut self.g_nat,
                Slot::Adv => &mut self.g_adv,
                Slot::None => continue,
            };
            let mut g = g;
            g.scale(w);
            match dst {
                Some(d) => d.add_assign(&g),
                None => *dst = Some(g),
            }
        }
    }

    fn mean(&mut self, n: usize) {
        let k = 1.0 / n.max(1) as f32;
        for g in [&mut self.g_nat, &mut self.g_adv].into_iter().flatten() {
            g.scale(k);
        }
    }

    /// The batch mean.
    pub fn value(&self) -> f64 {
        self.per_sample.host().iter().map(|&v| v as f64).sum::<f64>() / self.per_sample.numel().max(1) as f64
    }
}

fn softmax_at(z: &[f32], i: usize) -> f32 {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f64 = z.iter().map(|&v| ((v - m) as f64).exp()).sum();
    (((z[i] - m) as f64).exp() / s) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[[f32; 3]]) -> Tensor {
        Tensor::from_vec(&[rows.len(), 3], rows.iter().flatten().copied().collect())
    }

    #[test]
    fn every_method_is_consistent() {
        for name in METHODS {
            let o = name.parse::<Method>().unwrap().objective();
            o.validate().unwrap();
            assert_eq!(o.method.name(), name);
        }
    }

    #[test]
    fn rslad_outer_by_hand() {
        let (tn, sa, sn) = (t(&[[2.0, 0.0, -1.0]]), t(&[[0.0, 1.0, 0.0]]), t(&[[1.0, 0.5, -0.5]]));
        let o = Method::Rslad.objective();
        let l =
            o.outer_loss(&Logits { s_nat: Some(&sn), s_adv: Some(&sa), t_nat: Some(&tn), t_adv: None }, &[0]).unwrap();
        let want = 5.0 / 6.0 * kl_div(&tn, &sa, 1.0).per_sample.data()[0]
            + 1.0 / 6.0 * kl_div(&tn, &sn, 1.0).per_sample.data()[0];
        assert!((l.value() - want as f64).abs() < 1e-6);
        // RSLAD's gradient on the adversarial logits is (5/6)(p_S(x') − p_T(x)).
        let ga = kl_div(&tn, &sa, 1.0).grads.remove(1);
        for (a, b) in l.g_adv.unwrap().data().iter().zip(ga.data()) {
            assert!((a - 5.0 / 6.0 * b).abs() < 1e-6);
        }
    }

    #[test]
    fn trades_and_ard_outer_by_hand() {
        let (sn, sa, tn) = (
            t(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
            t(&[[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
            t(&[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]),
        );
        let y = [0, 1];
        let l = Logits { s_nat: Some(&sn), s_adv: Some(&sa), t_nat: Some(&tn), t_adv: None };
        let tr = Method::Trades.objective().outer_loss(&l, &y).unwrap();
        let ce = cross_entropy(&sn, &y).mean();
        let kl = kl_div(&sn, &sa, 1.0).mean();
        assert!((tr.value() - (ce + 6.0 * kl)).abs() < 1e-6);
        let ard = Method::Ard.objective().outer_loss(&l, &y).unwrap();
        assert!((ard.value() - 900.0 * kl_div(&tn, &sa, 30.0).mean()).abs() < 1e-4);
        assert!(ard.g_nat.is_none(), "α = 1 leaves the natural student out");
    }

    #[test]
    fn iad_and_adaad_outer_by_hand() {
        let (sn, sa) = (t(&[[1.0, 0.0, 0.0], [0.0, 2.0, 0.5]]), t(&[[0.0, 0.5, 1.0], [0.0, 1.0, 1.0]]));
        let (tn, ta) = (t(&[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), t(&[[1.0, 1.0, 0.0], [0.0, 0.5, 1.0]]));
        let y = [0, 1];
        let l = Logits { s_nat: Some(&sn), s_adv: Some(&sa), t_nat: Some(&tn), t_adv: Some(&ta) };
        // IAD: the ARD term (τ = 1, α = 1) plus each sample's self-introspection KL weighted by
        // 1 − P_T(x')[y]^0.1.
        let iad = Method::Iad.objective().outer_loss(&l, &y).unwrap();
        let ard = kl_div(&tn, &sa, 1.0).per_sample.into_vec();
        let intro = kl_div(&sn, &sa, 1.0).per_sample.into_vec();
        let p_true = [softmax_at(&[1.0, 1.0, 0.0], 0), softmax_at(&[0.0, 0.5, 1.0], 1)];
        let want: f32 = (0..2).map(|i| ard[i] + (1.0 - p_true[i].powf(0.1)) * intro[i]).sum::<f32>() / 2.0;
        assert!((iad.value() - want as f64).abs() < 1e-6);
        assert!(iad.g_nat.is_some() && iad.g_adv.is_some());
        // AdaAD with α = 0.7: 0.7·KL(p_T(x') ‖ p_S(x')) + 0.3·KL(p_T(x) ‖ p_S(x)).
        let mut o = Method::Adaad.objective();
        o.c.alpha = 0.7;
        let ada = o.outer_loss(&l, &y).unwrap();
        let want = 0.7 * kl_div(&ta, &sa, 1.0).mean() + 0.3 * kl_div(&tn, &sn, 1.0).mean();
        assert!((ada.value() - want).abs() < 1e-6);
    }

    #[test]
    fn mmard_inner_pulls_the_teacher_too() {
        let (sa, ta, tn) = (t(&[[0.0, 1.0, 0.0]]), t(&[[1.0, 1.0, 0.0]]), t(&[[2.0, 0.0, 0.0]]));
        let o = Method::Mmard.objective();
        let (gs, gt) = o.inner_grads(&sa, Some(&ta), None, Some(&tn), &[0]);
        assert_eq!(gs.data(), kl_div(&tn, &sa, 1.0).grads[1].data());
        assert_eq!(gt.unwrap().data(), kl_div(&tn, &ta, 1.0).grads[1].data());
    }
}
