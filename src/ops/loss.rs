//! Fused losses on logits: per-sample values and the gradient of their batch SUM with respect to
//! every logit set, in one pass over the logits (softmaxes computed once per row). A reduction is
//! then a plain scaling chosen by the caller. Temperature τ divides the logits; no τ² factor here.
//! On a GPU, `kernels/loss.cu` does the same per row, and everything stays on the device.
//! Tests: below, the fixtures' losses case (`tests/parity.rs`), `tests/gradcheck.rs`, CPU against
//! GPU in `tests/cuda_parity.rs`; kernels in `kernels/loss.cu`.
use crate::tensor::Tensor;

/// Per-sample values ([N], on the logits' device) and one gradient per logit set, in argument order.
#[derive(Debug)]
pub struct LossOut {
    pub per_sample: Tensor,
    pub grads: Vec<Tensor>,
}

impl LossOut {
    /// From host-computed values.
    pub fn new(per_sample: Vec<f32>, grads: Vec<Tensor>) -> Self {
        LossOut { per_sample: Tensor::from_vec(&[per_sample.len()], per_sample), grads }
    }
    pub fn sum(&self) -> f64 {
        self.per_sample.host().iter().map(|&v| v as f64).sum()
    }
    pub fn mean(&self) -> f64 {
        self.sum() / self.per_sample.numel().max(1) as f64
    }
    /// Multiplies sample i's value and gradient rows by `w[i]` (per-sample weights, e.g. IAD's trust).
    pub fn weighted(mut self, w: &[f32]) -> Self {
        let n = self.per_sample.numel();
        assert_eq!(w.len(), n, "weighted: {} weights for {n} samples", w.len());
        for t in std::iter::once(&mut self.per_sample).chain(&mut self.grads) {
            scale_rows(t, w);
        }
        self
    }
}

/// Row i (of `w.len()` rows) of `t` times `w[i]`.
fn scale_rows(t: &mut Tensor, w: &[f32]) {
    let cols = (t.numel() / w.len().max(1)).max(1);
    crate::on_gpu!(t, |g| {
        let (wd, rows, c) = (g.upload(w), w.len() as i32, cols as i32);
        crate::cuda::kernels::scale_rows(&g, g.grid(t.numel()), t.cu_mut(), &wd, rows, c);
    });
    t.data_mut().chunks_mut(cols).zip(w).for_each(|(row, w)| row.iter_mut().for_each(|v| *v *= w));
}

/// log-softmax of `z / tau`, into `out`.
fn log_softmax(z: &[f32], tau: f32, out: &mut [f32]) {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) / tau;
    let lse = z.iter().map(|&v| ((v / tau - m) as f64).exp()).sum::<f64>().ln() as f32 + m;
    out.iter_mut().zip(z).for_each(|(o, &v)| *o = v / tau - lse);
}

/// Rows of the given logit sets, as log-probabilities at temperature `tau`.
struct Rows {
    c: usize,
    logp: Vec<Vec<f32>>,
}

impl Rows {
    fn new(sets: &[&Tensor], tau: f32, row: usize) -> Self {
        let c = sets[0].dims2().1;
        let logp = sets
            .iter()
            .map(|t| {
                let mut lp = vec![0.0; c];
                log_softmax(&t.data()[row * c..][..c], tau, &mut lp);
                lp
            })
            .collect();
        Rows { c, logp }
    }

    /// KL(p_a ‖ p_b) for sets a, b of this row, adding its gradients (times `w`, of the sum) into
    /// the rows `ga`, `gb` of the logit gradients.
    fn kl(&self, a: usize, b: usize, w: f32, tau: f32, ga: &mut [f32], gb: &mut [f32]) -> f32 {
        let (la, lb) = (&self.logp[a], &self.logp[b]);
        let kl: f64 = la.iter().zip(lb).map(|(&x, &y)| (x.exp() * (x - y)) as f64).sum();
        let kl = kl as f32;
        for j in 0..self.c {
            let (pa, pb) = (la[j].exp(), lb[j].exp());
            // d/dz_a: p_a (log p_a − log p_b − KL) / τ;  d/dz_b: (p_b − p_a) / τ
            ga[j] += w * pa * (la[j] - lb[j] - kl) / tau;
            gb[j] += w * (pb - pa) / tau;
        }
        kl
    }
}

fn check_same(sets: &[&Tensor]) {
    for t in sets {
        assert_eq!(t.shape(), sets[0].shape(), "loss: logit sets differ in shape");
    }
}

/// Cross-entropy per sample.
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> LossOut {
    let (n, c) = logits.dims2();
    assert_eq!(labels.len(), n, "cross_entropy: {n} rows, {} labels", labels.len());
    assert!(labels.iter().all(|&l| l < c), "cross_entropy: a label is out of range for {c} classes");
    crate::on_gpu!(logits, |_g| cuda::cross_entropy(logits, labels));
    let mut g = Tensor::zeros(&[n, c]);
    let per_sample = (0..n)
        .map(|i| {
            let mut lp = vec![0.0; c];
            log_softmax(&logits.data()[i * c..][..c], 1.0, &mut lp);
            let gr = &mut g.data_mut()[i * c..][..c];
            gr.iter_mut().zip(&lp).for_each(|(o, &l)| *o = l.exp());
            gr[labels[i]] -= 1.0;
            -lp[labels[i]]
        })
        .collect();
    LossOut::new(per_sample, vec![g])
}

/// KL(softmax(a/τ) ‖ softmax(b/τ)) per sample; gradients for a, then b.
pub fn kl_div(a: &Tensor, b: &Tensor, tau: f32) -> LossOut {
    check_same(&[a, b]);
    crate::on_gpu!(a, |_g| cuda::kl_div(a, b, tau));
    let (n, c) = a.dims2();
    let (mut ga, mut gb) = (Tensor::zeros(&[n, c]), Tensor::zeros(&[n, c]));
    let per_sample = (0..n)
        .map(|i| {
            Rows::new(&[a, b], tau, i).kl(
                0,
                1,
                1.0,
                tau,
                &mut ga.data_mut()[i * c..][..c],
                &mut gb.data_mut()[i * c..][..c],
            )
        })
        .collect();
    LossOut::new(per_sample, vec![ga, gb])
}

/// Weights of the triangle's three edges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Triangle {
    /// KL(p_T ‖ p_S(x'))
    pub teacher_adv: f32,
    /// KL(p_T ‖ p_S(x))
    pub teacher_nat: f32,
    /// KL(p_S(x') ‖ p_S(x))
    pub adv_nat: f32,
}

/// The MMARD triangle a·KL(p_T‖p_S') + b·KL(p_T‖p_S) + c·KL(p_S'‖p_S) per sample, with the
/// teacher, robust-student and natural-student logits as the vertices; gradients in that order.
pub fn triangle(t: &Tensor, s_adv: &Tensor, s_nat: &Tensor, w: Triangle, tau: f32) -> LossOut {
    check_same(&[t, s_adv, s_nat]);
    crate::on_gpu!(t, |_g| cuda::triangle(t, s_adv, s_nat, w, tau));
    let (n, c) = t.dims2();
    let mut g = [Tensor::zeros(&[n, c]), Tensor::zeros(&[n, c]), Tensor::zeros(&[n, c])];
    let per_sample = (0..n)
        .map(|i| {
            let rows = Rows::new(&[t, s_adv, s_nat], tau, i);
            let [gt, ga, gn] = g.each_mut().map(|g| &mut g.data_mut()[i * c..][..c]);
            rows.kl(0, 1, w.teacher_adv, tau, gt, ga) * w.teacher_adv
                + rows.kl(0, 2, w.teacher_nat, tau, gt, gn) * w.teacher_nat
                + rows.kl(1, 2, w.adv_nat, tau, ga, gn) * w.adv_nat
        })
        .collect();
    LossOut::new(per_sample, g.into())
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{LossOut, Triangle};
    use crate::tensor::Tensor;

    /// Per-sample values and `k` zeroed gradient buffers for logits like `z`.
    fn outputs(z: &Tensor, k: usize) -> (std::sync::Arc<crate::cuda::Gpu>, usize, usize, Vec<Tensor>, Tensor) {
        let (n, c) = z.dims2();
        let g = z.gpu().unwrap().clone();
        let grads = (0..k).map(|_| Tensor::zeros_on(&[n, c], &z.device())).collect();
        (g, n, c, grads, Tensor::zeros_on(&[n], &z.device()))
    }

    pub fn cross_entropy(z: &Tensor, labels: &[usize]) -> LossOut {
        let (g, n, c, mut grads, mut ps) = outputs(z, 1);
        let y = g.labels(labels);
        let (ni, ci) = (n as i32, c as i32);
        crate::cuda::kernels::cross_entropy(&g, g.rows(n), z.cu(), &y, ps.cu_mut(), grads[0].cu_mut(), ni, ci);
        LossOut { per_sample: ps, grads }
    }

    pub fn kl_div(a: &Tensor, b: &Tensor, tau: f32) -> LossOut {
        let (g, n, c, mut grads, mut ps) = outputs(a, 2);
        let (ni, ci) = (n as i32, c as i32);
        let [ga, gb] = grads.get_disjoint_mut([0, 1]).unwrap();
        crate::cuda::kernels::kl_div(&g, g.rows(n), a.cu(), b.cu(), tau, ps.cu_mut(), ga.cu_mut(), gb.cu_mut(), ni, ci);
        LossOut { per_sample: ps, grads }
    }

    pub fn triangle(t: &Tensor, sa: &Tensor, sn: &Tensor, w: Triangle, tau: f32) -> LossOut {
        let (g, n, c, mut grads, mut ps) = outputs(t, 3);
        let (ni, ci) = (n as i32, c as i32);
        let [gt, gsa, gsn] = grads.get_disjoint_mut([0, 1, 2]).unwrap();
        #[rustfmt::skip]
        crate::cuda::kernels::triangle(&g, g.rows(n), t.cu(), sa.cu(), sn.cu(), w.teacher_adv, w.teacher_nat, w.adv_nat, tau, ps.cu_mut(), gt.cu_mut(), gsa.cu_mut(), gsn.cu_mut(), ni, ci);
        LossOut { per_sample: ps, grads }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_vec(&[v.len() / 3, 3], v.to_vec())
    }

    #[test]
    fn hand_computed_values() {
        // uniform logits: CE = ln 3, KL to itself = 0
        assert!((cross_entropy(&t(&[2.0, 2.0, 2.0]), &[1]).per_sample.data()[0] - 3f32.ln()).abs() < 1e-6);
        assert!(kl_div(&t(&[1.0, -2.0, 0.5]), &t(&[1.0, -2.0, 0.5]), 2.0).per_sample.data()[0].abs() < 1e-7);
        // KL([ln 1, ln 3, ln 0+]-ish): p = (1/4, 3/4, 0), q = uniform -> Σ p ln(3p)
        let p = t(&[0.0, 3f32.ln(), -1e4]);
        let want = 0.25 * (0.75f32).ln() + 0.75 * (2.25f32).ln();
        assert!((kl_div(&p, &t(&[0.0, 0.0, 0.0]), 1.0).per_sample.data()[0] - want).abs() < 1e-6);
    }

    #[test]
    fn triangle_is_the_weighted_sum_of_its_edges() {
        let (a, b, c) = (
            t(&[1.0, 0.0, -1.0, 0.3, 2.0, 0.1]),
            t(&[0.5, 0.2, -0.3, 1.0, -1.0, 0.0]),
            t(&[-1.0, 2.0, 0.0, 0.2, 0.2, 0.9]),
        );
        let w = Triangle { teacher_adv: 0.7, teacher_nat: 0.2, adv_nat: 1.5 };
        let tri = triangle(&a, &b, &c, w, 2.0);
        let (ab, ac, bc) = (kl_div(&a, &b, 2.0), kl_div(&a, &c, 2.0), kl_div(&b, &c, 2.0));
        for i in 0..2 {
            let want = 0.7 * ab.per_sample.data()[i] + 0.2 * ac.per_sample.data()[i] + 1.5 * bc.per_sample.data()[i];
            assert!((tri.per_sample.data()[i] - want).abs() < 1e-6);
        }
        for j in 0..6 {
            let gt = 0.7 * ab.grads[0].data()[j] + 0.2 * ac.grads[0].data()[j];
            let gs_adv = 0.7 * ab.grads[1].data()[j] + 1.5 * bc.grads[0].data()[j];
            let gs_nat = 0.2 * ac.grads[1].data()[j] + 1.5 * bc.grads[1].data()[j];
            for (g, want) in tri.grads.iter().zip([gt, gs_adv, gs_nat]) {
                assert!((g.data()[j] - want).abs() < 1e-6);
            }
        }
    }
}
