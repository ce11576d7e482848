//! FAB-T, L∞ (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive
//! boundary attack"), as AutoAttack's standard version runs it (fra31/auto-attack, `fab_base.py`):
//! for each target rank k = 2..=targets+1 of the clean logits, 100 iterations from the clean image
//! that project the current point and the clean one onto the linearised boundary z_t = z_y (inside
//! the box), step towards a mix of the two (α ≤ 0.1, overshoot η = 1.05), keep the closest point
//! misclassified so far and pull misclassified iterates back towards x (β = 0.9). The best point is
//! accepted only within ε; the first target that breaks a point wins. No randomness. Gradients come
//! from an Input-mode tape; the projection runs on the host, a row per thread. Tests: the
//! projection against the reference's outputs (the `fab_projection_linf` fixture, `tests/parity.rs`)
//! and brute force (below); the attack in `tests/attacks.rs` and `scripts/compare_autoattack.py`.
use crate::nn::Model;
use crate::nn::eval::{input_grad, logits, misclassified};
use crate::samples::{gather, sample_len};
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Largest share of the step taken from the clean image's projection.
const ALPHA_MAX: f32 = 0.1;
/// Overshoot of each projection step.
const ETA: f32 = 1.05;
/// Pull-back of a misclassified iterate towards the clean image.
const BETA: f32 = 0.9;

/// FAB-T on the batch `x` with labels `y`: `iters` iterations for each of the `targets` classes
/// ranked after the top one by the clean logits (at most classes − 1). Per sample, the clean image
/// unless some target found a misclassified point within `eps`.
pub fn fab_t(model: &mut Model, x: &Tensor, y: &[usize], eps: f32, iters: usize, targets: usize) -> Tensor {
    let clean = logits(model, x, y.len().max(1));
    let (c, zh) = (clean.dims2().1, clean.host());
    let mut robust: Vec<bool> = misclassified(&clean, y).into_iter().map(|m| !m).collect();
    let mut out = x.clone();
    let per = sample_len(x);
    let mut tape = Tape::new(GradMode::Input);
    for k in 2..=(targets + 1).min(c) {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| robust[i]).collect();
        if idx.is_empty() {
            break;
        }
        let ys: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        let ts: Vec<usize> = idx.iter().map(|&i| ranked(&zh[i * c..][..c], k)).collect();
        let x0 = gather(x, &idx);
        let adv = run(model, &mut tape, &x0, &ys, &ts, iters);
        let still = misclassified(&logits(model, &adv, idx.len()), &ys);
        for (r, &i) in idx.iter().enumerate() {
            let row = &adv.data()[r * per..][..per];
            let dist = row.iter().zip(&x0.data()[r * per..][..per]).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            if still[r] && dist <= eps {
                robust[i] = false;
                out.data_mut()[i * per..][..per].copy_from_slice(row);
            }
        }
    }
    out
}

/// The class of the k-th largest logit, counted as the reference does: a stable ascending sort of
/// all logits (the true class included; ties rank the larger index higher), the k-th from the end.
fn ranked(z: &[f32], k: usize) -> usize {
    let mut order: Vec<usize> = (0..z.len()).collect();
    order.sort_by(|&a, &b| z[a].total_cmp(&z[b]));
    order[z.len() - k]
}

/// One run from the clean images `x0` (all classified correctly) towards the targets `t`: per
/// sample, the closest misclassified iterate, or the clean image when none was.
fn run(model: &mut Model, tape: &mut Tape, x0: &Tensor, y: &[usize], t: &[usize], iters: usize) -> Tensor {
    let (n, per) = (y.len(), sample_len(x0));
    let mut x1 = x0.clone();
    let mut best = x0.clone();
    let mut best_dist = vec![1e10f32; n];
    for _ in 0..iters {
        // g = z_t − z_y per sample and its input gradient (its logit gradient is +1 at t, −1 at y).
        let (_, dg, df) = input_grad(model, tape, &x1, |z| {
            let c = z.dims2().1;
            let (zh, mut g) = (z.host(), Tensor::zeros(&[n, c]));
            let df: Vec<f32> = (0..n)
                .map(|i| {
                    g.data_mut()[i * c + t[i]] += 1.0;
                    g.data_mut()[i * c + y[i]] -= 1.0;
                    -(zh[i * c + y[i]] - zh[i * c + t[i]])
                })
                .collect();
            (g, df)
        });
        let (x1d, x0d, w) = (x1.data(), x0.data(), dg.data());
        // The hyperplane ⟨w, ·⟩ = b that linearises g = 0 at x1, and both points' projections on it.
        let b: Vec<f32> = (0..n).map(|i| -df[i] + dot(&w[i * per..][..per], &x1d[i * per..][..per])).collect();
        let mut d = vec![0.0f32; 2 * n * per];
        d.par_chunks_mut(per).enumerate().for_each(|(r, dr)| {
            let (i, from) = (r % n, if r < n { x1d } else { x0d });
            project_linf(&from[i * per..][..per], &w[i * per..][..per], b[i], dr);
        });
        let next: Vec<f32> = (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let (d1, d2) = (&d[i * per..][..per], &d[(n + i) * per..][..per]);
                let (a1, a2) = (max_abs(d1).max(1e-8), max_abs(d2).max(1e-8));
                let alpha = (a1 / (a1 + a2)).clamp(0.0, ALPHA_MAX);
                let (x1i, x0i) = (&x1d[i * per..][..per], &x0d[i * per..][..per]);
                (0..per).map(move |j| {
                    ((x1i[j] + ETA * d1[j]) * (1.0 - alpha) + (x0i[j] + d2[j] * ETA) * alpha).clamp(0.0, 1.0)
                })
            })
            .collect();
        x1 = Tensor::from_vec(x1.shape(), next);
        let adv = misclassified(&logits(model, &x1, n), y);
        let (x1m, x0d) = (x1.data_mut(), x0.data());
        for i in (0..n).filter(|&i| adv[i]) {
            let (xi, ci) = (&mut x1m[i * per..][..per], &x0d[i * per..][..per]);
            let dist = xi.iter().zip(ci).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            if dist < best_dist[i] {
                best_dist[i] = dist;
                best.data_mut()[i * per..][..per].copy_from_slice(xi);
            }
            xi.iter_mut().zip(ci).for_each(|(v, &c)| *v = c + (*v - c) * BETA);
        }
    }
    best
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &a| m.max(a.abs()))
}

/// ⟨a, b⟩, summed in f64 and rounded once (the reference's f32 sums differ from it by an ulp or so).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| (x * y) as f64).sum::<f64>() as f32
}

/// The L∞-closest point to `t` on the hyperplane ⟨w, z⟩ = b inside the box [0, 1]^D, as the step
/// `d` from `t` (FAB's `projection_linf`, a row of it). Three cases: a uniform step of size λ on
/// every coordinate reaches the plane; or the plane is reached once the coordinates nearest their
/// bound stop there, found by bisection over the coordinates sorted by that distance; or the plane
/// is out of the box's reach, and every coordinate moves to the bound that gets closest.
/// Coordinates with w = 0 never move. f32 as the reference, its cumulative sums kept in f64.
pub fn project_linf(t: &[f32], w: &[f32], b: f32, d: &mut [f32]) {
    let dim = t.len();
    assert!(w.len() == dim && d.len() == dim, "project_linf: {dim} coordinates, w {}, d {}", w.len(), d.len());
    // Orient the plane so that t lies on its non-negative side.
    let sign = if dot(w, t) - b >= 0.0 { 1.0 } else { -1.0 };
    let w: Vec<f32> = w.iter().map(|&v| v * sign).collect();
    let b = b * sign;
    // a: the bound each coordinate moves to (0 where w ≥ 0, 1 where w < 0); p: its distance there.
    let a: Vec<f32> = w.iter().map(|&v| (v < 0.0) as u8 as f32).collect();
    for j in 0..dim {
        d[j] = (a[j] - t[j]) * (w[j] != 0.0) as u8 as f32;
    }
    let p: Vec<f32> = (0..dim).map(|j| a[j] - t[j] * (2.0 * a[j] - 1.0)).collect();
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let b = b - dot(&w, t);
    let b0 = dot(&w, d);
    // Descending by p: s = Σ|w|, sb = Σ|w|·p (+ b0) over the coordinates farthest from their bound.
    let (mut s, mut sb) = (vec![0.0f32; dim], vec![0.0f32; dim]);
    let (mut acc_s, mut acc_sb) = (0.0f64, 0.0f64);
    for (k, &j) in order.iter().rev().enumerate() {
        acc_s += w[j].abs() as f64;
        acc_sb += (-w[j] * d[j]) as f64;
        s[k] = acc_s as f32;
        sb[k] = acc_sb as f32 + b0;
    }
    let Some(last) = dim.checked_sub(1) else { return };
    let at = |k: usize| sb[k] - s[k] * p[order[last - k]];
    let uniform = b - (sb[last] - s[last] * p[order[0]]) > 0.0;
    let reachable = b - b0 > 0.0 && !uniform;
    if uniform {
        let lambda = clamp_min((b - sb[last]) / -s[last]);
        for j in 0..dim {
            d[j] = (2.0 * a[j] - 1.0) * lambda;
        }
    } else if reachable {
        let (mut lb, mut ub) = (0.0f32, last as f32);
        for _ in 0..ceil_log2(dim) {
            let mid = ((lb + ub) / 2.0).floor();
            if b - at(mid as usize) > 0.0 {
                lb = mid;
            } else {
                ub = mid;
            }
        }
        let k = lb as usize;
        let lambda = clamp_min((b - sb[k]) / -s[k]);
        for j in 0..dim {
            d[j] = d[j].min(lambda) * a[j] + d[j].max(-lambda) * (1.0 - a[j]);
        }
    }
    for j in 0..dim {
        d[j] *= (w[j] != 0.0) as u8 as f32;
    }
}

/// max(v, 0) with NaN kept, as torch's clamp_min.
fn clamp_min(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// ⌈log₂ n⌉ (0 for n ≤ 1): the reference's number of bisection steps.
fn ceil_log2(n: usize) -> u32 {
    if n <= 1 { 0 } else { usize::BITS - (n - 1).leading_zeros() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// max_j |d_j| over the points t + d of the box on the plane, by brute force over a grid of
    /// uniform steps λ with the coordinates clipped at their bounds: the projection's step is never
    /// longer than the shortest one found, and lands on the plane inside the box.
    #[test]
    fn projection_is_the_shortest_step_onto_the_plane_in_the_box() {
        let mut rng = StdRng::seed_from_u64(3);
        for dim in [1, 2, 3, 5, 8] {
            for _ in 0..200 {
                let t: Vec<f32> = (0..dim).map(|_| rng.random_range(0.0..1.0)).collect();
                let w: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                let b = rng.random_range(-1.0f32..1.0);
                let mut d = vec![0.0; dim];
                project_linf(&t, &w, b, &mut d);
                let z: Vec<f32> = t.iter().zip(&d).map(|(a, b)| a + b).collect();
                assert!(z.iter().all(|v| (-1e-6..=1.0 + 1e-6).contains(v)), "{z:?} leaves the box");
                let on = |z: &[f32]| (dot(&w, z) - b).abs() <= 1e-5;
                // The box's reach: ⟨w, ·⟩ over [0, 1]^D spans [lo, hi].
                let lo: f32 = w.iter().map(|&v| v.min(0.0)).sum();
                let hi: f32 = w.iter().map(|&v| v.max(0.0)).sum();
                if b < lo - 1e-4 || b > hi + 1e-4 {
                    continue; // infeasible: the reference moves to the nearest corner
                }
                assert!(on(&z), "dim {dim}: ⟨w, t + d⟩ = {} misses b = {b}", dot(&w, &z));
                // Brute force: every feasible point at L∞ distance λ is t + clip(λ·s) for signs s;
                // the smallest λ on a grid for which one of them is within the plane's reach.
                let len = max_abs(&d);
                let reach = |lambda: f32| {
                    let (mut lo, mut hi) = (0.0f32, 0.0f32);
                    for j in 0..dim {
                        let (down, up) = ((t[j] - lambda).max(0.0), (t[j] + lambda).min(1.0));
                        lo += (w[j] * down).min(w[j] * up);
                        hi += (w[j] * down).max(w[j] * up);
                    }
                    lo - 1e-5 <= b && b <= hi + 1e-5
                };
                let shortest = (0..=2000).map(|i| i as f32 / 2000.0).find(|&l| reach(l)).unwrap_or(1.0);
                assert!(len <= shortest + 1e-3, "dim {dim}: step {len}, brute force finds {shortest}");
            }
        }
    }

    #[test]
    fn bisection_steps_and_target_ranks_follow_the_reference() {
        assert_eq!([1, 2, 3, 7, 64, 784, 3072].map(ceil_log2), [0, 1, 2, 3, 6, 10, 12]);
        let z = [0.1, 3.0, 0.5, 0.5, -1.0];
        assert_eq!((2..=5).map(|k| ranked(&z, k)).collect::<Vec<_>>(), [3, 2, 0, 4], "ties: the larger index first");
    }
}
