//! The fused L∞ PGD step: x' ← clip[0,1](clip[x−ε, x+ε](x' + α·sign(∇))), in one pass, and the
//! random start x' = project(x + u): for noise u drawn by the caller (`start`), or drawn where x
//! lives from a counter-based generator (`counter_start`, the training step's: a GPU draws it in
//! place, with the CPU's bits).
//! Tests: below, the fixtures' pgd case (`tests/parity.rs`), CPU against GPU in
//! `tests/cuda_parity.rs`; kernels in `kernels/pgd.cu`.
use crate::tensor::Tensor;
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// Projection onto the ε-ball around `x0` and the [0, 1] box.
pub fn project(v: f32, x0: f32, eps: f32) -> f32 {
    v.max(x0 - eps).min(x0 + eps).clamp(0.0, 1.0)
}

/// One step in place on `x_adv`, around the clean images `x0`. sign(0) = 0, as torch.sign.
pub fn pgd_step(x_adv: &mut [f32], grad: &[f32], x0: &[f32], alpha: f32, eps: f32) {
    assert!(x_adv.len() == grad.len() && x_adv.len() == x0.len(), "pgd_step: lengths differ");
    x_adv.par_chunks_mut(CHUNK).zip(grad.par_chunks(CHUNK)).zip(x0.par_chunks(CHUNK)).for_each(|((xa, g), x0)| {
        for ((a, &g), &x) in xa.iter_mut().zip(g).zip(x0) {
            // sign as arithmetic, not branches: a random gradient's signs mispredict every other
            // element, and branches keep the loop scalar (3.2 ms on 4 M values, 6x a copy).
            let s = alpha * ((g > 0.0) as i32 - (g < 0.0) as i32) as f32;
            *a = project(*a + s, x, eps);
        }
    });
}

/// `pgd_step` on whole tensors, on their device.
pub fn step(x_adv: &mut Tensor, grad: &Tensor, x0: &Tensor, alpha: f32, eps: f32) {
    assert!(x_adv.shape() == grad.shape() && x_adv.shape() == x0.shape(), "pgd step: shapes differ");
    crate::on_gpu!(x_adv, |g| {
        let n = x_adv.numel() as i32;
        crate::cuda::kernels::pgd_step(&g, g.grid(n as usize), x_adv.cu_mut(), grad.cu(), x0.cu(), alpha, eps, n);
    });
    pgd_step(x_adv.data_mut(), grad.data(), x0.data(), alpha, eps);
}

/// `project(x0 + u, x0, eps)` elementwise, on `x0`'s device; `u` is the host-drawn noise.
pub fn start(x0: &Tensor, u: &[f32], eps: f32) -> Tensor {
    assert_eq!(x0.numel(), u.len(), "pgd start: noise of the wrong size");
    crate::on_gpu!(x0, |g| {
        let (n, u) = (u.len() as i32, g.upload(u));
        let mut xa = g.empty(u.len());
        crate::cuda::kernels::pgd_start(&g, g.grid(n as usize), &mut xa, x0.cu(), &u, eps, n);
        Tensor::from_cuda(&g, x0.shape(), xa)
    });
    Tensor::from_vec(x0.shape(), x0.data().iter().zip(u).map(|(&v, &u)| project(v + u, v, eps)).collect())
}

/// The training step's random start: x' = project(x0 + u) within `r`, u_i = (2·unit_j − 1)·r with
/// unit_j value j = `first` + i of the Philox stream `seed` (`philox::unit`), computed on `x0`'s
/// device. `first` places x0 in a larger batch (a rank's share of it), whose start it is part of.
pub fn counter_start(x0: &Tensor, r: f32, seed: u64, first: u64) -> Tensor {
    crate::on_gpu!(x0, |g| {
        let n = x0.numel();
        let mut xa = g.empty(n);
        let (k0, k1) = (seed as u32, (seed >> 32) as u32);
        crate::cuda::kernels::pgd_start_philox(&g, g.grid(n), &mut xa, x0.cu(), r, k0, k1, first, n as i32);
        Tensor::from_cuda(&g, x0.shape(), xa)
    });
    let noise = |i: usize| (super::philox::unit(seed, first + i as u64) * 2.0 - 1.0) * r;
    Tensor::from_vec(x0.shape(), x0.data().par_iter().enumerate().map(|(i, &v)| project(v + noise(i), v, r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_stay_in_the_ball_and_the_box() {
        let x0 = [0.0, 0.5, 0.98, 0.3];
        let mut xa = x0;
        for _ in 0..5 {
            pgd_step(&mut xa, &[1.0, -1.0, 1.0, 0.0], &x0, 0.03, 0.05);
        }
        assert_eq!(xa[0], 0.05);
        assert!((xa[1] - 0.45).abs() < 1e-7);
        assert_eq!(xa[2], 1.0);
        assert_eq!(xa[3], 0.3, "a zero gradient does not move the pixel");
    }

    /// The counter start stays within r of x and the box, and its noise is the Philox stream's.
    #[test]
    fn counter_start_draws_the_philox_stream() {
        let x = Tensor::from_vec(&[2, 3], vec![0.5, 0.5, 0.0, 1.0, 0.3, 0.7]);
        let xa = counter_start(&x, 0.1, 42, 0);
        for (i, (&a, &v)) in xa.data().iter().zip(x.data()).enumerate() {
            let u = (crate::ops::philox::unit(42, i as u64) * 2.0 - 1.0) * 0.1;
            assert_eq!(a, project(v + u, v, 0.1));
            assert!((a - v).abs() <= 0.1 + 1e-7 && (0.0..=1.0).contains(&a));
        }
        assert_ne!(counter_start(&x, 0.1, 43, 0).data(), xa.data());
        // the second row drawn on its own, as a rank draws its share, is the stream's values 3..6
        assert_eq!(counter_start(&x.rows(1, 2), 0.1, 42, 3).data(), &xa.data()[3..]);
    }

    /// The sign as torch.sign has it: 0 for ±0 and NaN, ±1 for ±∞ and for the smallest subnormals.
    #[test]
    fn sign_of_special_gradients() {
        let g = [f32::NAN, -0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, f32::from_bits(1), -f32::from_bits(1)];
        let mut xa = [0.5; 7];
        pgd_step(&mut xa, &g, &[0.5; 7], 0.01, 0.05);
        assert_eq!(xa, [0.5, 0.5, 0.5, 0.51, 0.49, 0.51, 0.49]);
    }
}
