//! Square Attack, L∞ (Andriushchenko et al. 2020), as AutoAttack's standard version runs it
//! (fra31/auto-attack, `square.py`: margin loss, 5,000 queries, p_init 0.8, no rescaled schedule):
//! a score-based random search that uses forward passes only. It starts from vertical stripes of
//! ±ε, then each iteration draws one square window and one sign per channel for the whole batch,
//! sets that window to x ± ε in every image still robust, and keeps the change where the margin
//! z_y − max_{j≠y} z_j fell (or the image is misclassified). The draws come from PyTorch's stream
//! (`torch_rng.rs`) in the reference's order, so with the same seed they are the reference's.
//! Tests: `tests/attacks.rs`; against the reference in `scripts/compare_autoattack.py`.
use super::torch_rng::TorchRng;
use crate::nn::Model;
use crate::nn::eval::{logits, misclassified};
use crate::samples::{gather, sample_len};
use crate::tensor::Tensor;

/// Square on the batch `x` with labels `y`: per sample, the clean image unless the search found a
/// misclassified point (always within `eps`). The stream is seeded with `seed` after the clean
/// forward, as the reference's `perturb` does.
pub fn square(model: &mut Model, x: &Tensor, y: &[usize], eps: f32, queries: usize, p_init: f64, seed: u64) -> Tensor {
    let robust: Vec<usize> = misclassified(&logits(model, x, y.len().max(1)), y)
        .iter()
        .enumerate()
        .filter_map(|(i, &m)| (!m).then_some(i))
        .collect();
    let mut out = x.clone();
    if robust.is_empty() {
        return out;
    }
    let mut rng = TorchRng::manual_seed(seed);
    let ys: Vec<usize> = robust.iter().map(|&i| y[i]).collect();
    let x0 = gather(x, &robust);
    let best = search(model, &x0, &ys, eps, queries, p_init, &mut rng);
    let per = sample_len(x);
    for (r, broken) in misclassified(&logits(model, &best, ys.len()), &ys).into_iter().enumerate() {
        if broken {
            out.data_mut()[robust[r] * per..][..per].copy_from_slice(&best.data()[r * per..][..per]);
        }
    }
    out
}

/// The share p of the image a window covers at iteration `it` (the reference's `p_selection`).
fn p_at(p_init: f64, it: usize) -> f64 {
    let halvings = match it {
        0..=10 => 0,
        11..=50 => 1,
        51..=200 => 2,
        201..=500 => 3,
        501..=1000 => 4,
        1001..=2000 => 5,
        2001..=4000 => 6,
        4001..=6000 => 7,
        6001..=8000 => 8,
        _ => 9,
    };
    p_init / (1u32 << halvings) as f64
}

/// The window side for p on `c × h × w` images: √(p·h·w) rounded half to even (Python's `round`),
/// at least 1 and at most the image side.
fn side(p: f64, (c, h, w): (usize, usize, usize)) -> usize {
    let s = (p * (c * h * w) as f64 / c as f64).sqrt().round_ties_even() as usize;
    s.max(1).min(h.min(w))
}

/// `low + (high − low)·rand`, truncated: the reference's `random_int`, which never draws `high`.
fn random_int(rng: &mut TorchRng, high: usize) -> usize {
    (high as f32 * rng.rand()) as usize
}

/// z_y − max_{j≠y} z_j per sample.
fn margins(model: &mut Model, x: &Tensor, y: &[usize]) -> Vec<f32> {
    let z = logits(model, x, y.len().max(1));
    let (c, zh) = (z.dims2().1, z.host());
    y.iter()
        .enumerate()
        .map(|(i, &yi)| {
            let row = &zh[i * c..][..c];
            let other = (0..c).filter(|&j| j != yi).map(|j| row[j]).fold(f32::NEG_INFINITY, f32::max);
            row[yi] - other
        })
        .collect()
}

/// The search on `x` (every sample classified correctly): per sample, its best point.
fn search(
    model: &mut Model,
    x: &Tensor,
    y: &[usize],
    eps: f32,
    queries: usize,
    p_init: f64,
    rng: &mut TorchRng,
) -> Tensor {
    let (n, c, h, w) = x.dims4();
    let per = c * h * w;
    // Vertical stripes: one sign per image, channel and column.
    let signs: Vec<f32> = (0..n * c * w).map(|_| rng.sign()).collect();
    let mut best = Tensor::from_vec(
        x.shape(),
        x.data().iter().enumerate().map(|(k, &v)| (v + eps * signs[k / (h * w) * w + k % w]).clamp(0.0, 1.0)).collect(),
    );
    let mut margin = margins(model, &best, y);
    if margin.iter().all(|&m| m < 0.0) {
        return best;
    }
    let step = 2.0 * eps;
    for it in 0..queries {
        let active: Vec<usize> = (0..n).filter(|&i| margin[i] > 0.0).collect();
        let s = side(p_at(p_init, it), (c, h, w));
        let (vh, vw) = (random_int(rng, h - s), random_int(rng, w - s));
        let window: Vec<f32> = (0..c).map(|_| step * rng.sign()).collect();
        // The candidates: each active image's best point with the window moved to x ± ε.
        let mut cand = gather(&best, &active);
        for (r, &i) in active.iter().enumerate() {
            let (xi, ci) = (&x.data()[i * per..][..per], &mut cand.data_mut()[r * per..][..per]);
            for (ch, &delta) in window.iter().enumerate() {
                for row in vh..vh + s {
                    for k in ch * h * w + row * w + vw..ch * h * w + row * w + vw + s {
                        ci[k] = (ci[k] + delta).max(xi[k] - eps).min(xi[k] + eps).clamp(0.0, 1.0);
                    }
                }
            }
        }
        let ys: Vec<usize> = active.iter().map(|&i| y[i]).collect();
        let m = margins(model, &cand, &ys);
        for (r, &i) in active.iter().enumerate() {
            // With the margin loss the loss is the margin: keep a strictly lower one, or a miss.
            if m[r] < margin[i] || m[r] <= 0.0 {
                margin[i] = m[r];
                best.data_mut()[i * per..][..per].copy_from_slice(&cand.data()[r * per..][..per]);
            }
        }
        if margin.iter().all(|&v| v <= 0.0) {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's schedule (p_init 0.8, 5,000 queries) and window sides on CIFAR and MNIST shapes.
    #[test]
    fn schedule_and_windows_follow_the_reference() {
        let cifar = [0, 11, 51, 201, 501, 1001, 2001, 4001].map(|it| side(p_at(0.8, it), (3, 32, 32)));
        assert_eq!(cifar, [29, 20, 14, 10, 7, 5, 4, 3]);
        let mnist = [0, 11, 51, 201, 501, 1001, 2001, 4001].map(|it| side(p_at(0.8, it), (1, 28, 28)));
        assert_eq!(mnist, [25, 18, 13, 9, 6, 4, 3, 2]);
        assert_eq!((p_at(0.8, 10), p_at(0.8, 4999)), (0.8, 0.00625));
        assert_eq!(side(1.0, (1, 5, 5)), 5);
    }
}
