//! Fused losses on logits: per-sample values and the gradient of their batch SUM with respect to
//! every logit set, in one pass over the logits (softmaxes computed once per row). A reduction is
//! then a plain scaling chosen by the caller. Temperature τ divides the logits; no τ² factor here.
use crate::tensor::Tensor;

/// Per-sample values and one gradient per logit set, in argument order.
#[derive(Debug)]
pub struct LossOut {
    pub per_sample: Vec<f32>,
    pub grads: Vec<Tensor>,
}

impl LossOut {
    pub fn sum(&self) -> f64 {
        self.per_sample.iter().map(|&v| v as f64).sum()
    }
    pub fn mean(&self) -> f64 {
        self.sum() / self.per_sample.len().max(1) as f64
    }
    /// Multiplies sample i's value and gradient rows by `w[i]` (per-sample weights, e.g. IAD's trust).
    pub fn weighted(mut self, w: &[f32]) -> Self {
        let n = self.per_sample.len();
        assert_eq!(w.len(), n, "weighted: {} weights for {n} samples", w.len());
        self.per_sample.iter_mut().zip(w).for_each(|(v, w)| *v *= w);
        for g in &mut self.grads {
            let c = g.numel() / n.max(1);
            g.data_mut().chunks_mut(c.max(1)).zip(w).for_each(|(row, w)| row.iter_mut().for_each(|v| *v *= w));
        }
        self
    }

    /// Multiplies the gradients by `k`, e.g. 1/N for a batch mean.
    pub fn scaled(mut self, k: f32) -> Self {
        self.grads.iter_mut().for_each(|g| g.data_mut().iter_mut().for_each(|v| *v *= k));
        self
    }
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
    let mut g = Tensor::zeros(&[n, c]);
    let per_sample = (0..n)
        .map(|i| {
            assert!(labels[i] < c, "cross_entropy: label {} out of range for {c} classes", labels[i]);
            let mut lp = vec![0.0; c];
            log_softmax(&logits.data()[i * c..][..c], 1.0, &mut lp);
            let gr = &mut g.data_mut()[i * c..][..c];
            gr.iter_mut().zip(&lp).for_each(|(o, &l)| *o = l.exp());
            gr[labels[i]] -= 1.0;
            -lp[labels[i]]
        })
        .collect();
    LossOut { per_sample, grads: vec![g] }
}

/// KL(softmax(a/τ) ‖ softmax(b/τ)) per sample; gradients for a, then b.
pub fn kl_div(a: &Tensor, b: &Tensor, tau: f32) -> LossOut {
    check_same(&[a, b]);
    let (n, c) = a.dims2();
    let (mut ga, mut gb) = (Tensor::zeros(&[n, c]), Tensor::zeros(&[n, c]));
    let per_sample = (0..n)
        .map(|i| Rows::new(&[a, b], tau, i).kl(0, 1, 1.0, tau, &mut ga.data_mut()[i * c..][..c], &mut gb.data_mut()[i * c..][..c]))
        .collect();
    LossOut { per_sample, grads: vec![ga, gb] }
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
    LossOut { per_sample, grads: g.into() }
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
        assert!((cross_entropy(&t(&[2.0, 2.0, 2.0]), &[1]).per_sample[0] - 3f32.ln()).abs() < 1e-6);
        assert!(kl_div(&t(&[1.0, -2.0, 0.5]), &t(&[1.0, -2.0, 0.5]), 2.0).per_sample[0].abs() < 1e-7);
        // KL([ln 1, ln 3, ln 0+]-ish): p = (1/4, 3/4, 0), q = uniform -> Σ p ln(3p)
        let p = t(&[0.0, 3f32.ln(), -1e4]);
        let want = 0.25 * (0.75f32).ln() + 0.75 * (2.25f32).ln();
        assert!((kl_div(&p, &t(&[0.0, 0.0, 0.0]), 1.0).per_sample[0] - want).abs() < 1e-6);
    }

    #[test]
    fn triangle_is_the_weighted_sum_of_its_edges() {
        let (a, b, c) = (t(&[1.0, 0.0, -1.0, 0.3, 2.0, 0.1]), t(&[0.5, 0.2, -0.3, 1.0, -1.0, 0.0]), t(&[-1.0, 2.0, 0.0, 0.2, 0.2, 0.9]));
        let w = Triangle { teacher_adv: 0.7, teacher_nat: 0.2, adv_nat: 1.5 };
        let tri = triangle(&a, &b, &c, w, 2.0);
        let (ab, ac, bc) = (kl_div(&a, &b, 2.0), kl_div(&a, &c, 2.0), kl_div(&b, &c, 2.0));
        for i in 0..2 {
            let want = 0.7 * ab.per_sample[i] + 0.2 * ac.per_sample[i] + 1.5 * bc.per_sample[i];
            assert!((tri.per_sample[i] - want).abs() < 1e-6);
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
