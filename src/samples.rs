//! The samples of a batch (NCHW on the host), shared by the attacks and the training step: how many
//! values one holds, gathering and overwriting single samples, and random starts in the ε-ball.
//! Tested through `tests/attacks.rs`.
use crate::ops::pgd;
use crate::tensor::Tensor;
use rand::RngExt;
use rand::rngs::StdRng;

/// `x` plus uniform noise in [−r, r], projected onto the ball of radius `r` and [0, 1]. The noise is
/// drawn on the host, so a seed gives the same start on every device.
pub fn random_start(x: &Tensor, r: f32, rng: &mut StdRng) -> Tensor {
    let u: Vec<f32> = (0..x.numel()).map(|_| rng.random_range(-r..=r)).collect();
    pgd::start(x, &u, r)
}

/// Values per sample of a batch.
pub fn sample_len(x: &Tensor) -> usize {
    x.numel() / x.shape()[0].max(1)
}

/// The samples `idx` of a host batch, in that order.
pub fn gather(x: &Tensor, idx: &[usize]) -> Tensor {
    let per = sample_len(x);
    let mut shape = x.shape().to_vec();
    shape[0] = idx.len();
    Tensor::from_vec(&shape, idx.iter().flat_map(|&i| &x.data()[i * per..][..per]).copied().collect())
}

/// Overwrites sample `i` of the host batch `dst` with sample `k` of `src`.
pub fn copy_sample(dst: &mut Tensor, i: usize, src: &Tensor, k: usize) {
    let per = sample_len(src);
    dst.data_mut()[i * per..][..per].copy_from_slice(&src.data()[k * per..][..per]);
}
