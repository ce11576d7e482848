//! 2-d batch normalisation with PyTorch semantics. Train mode normalises with the batch statistics
//! (biased variance) and moves the running statistics with the unbiased one; eval mode uses the
//! running statistics. Whether BN is in train mode is its own flag, never tied to the GradMode.
//! Per-channel sums are accumulated in f64: a channel can hold 10^5 values. Synchronised BN
//! (`--sync-bn` over several ranks) sums them over the ranks, forward and backward, so the ranks
//! normalise as one process would over the whole batch.
//! Tests: the fixtures' batchnorm2d and model cases (`tests/parity.rs`), `tests/gradcheck.rs`, CPU against
//! GPU in `tests/cuda_parity.rs`; kernels in `kernels/batchnorm.cu`.
use super::grain;
use crate::dist::Group;
use crate::tape::{Backward, Grads, Param, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

/// Channel `ch`'s plane in each image of an NCHW buffer.
fn planes(x: &[f32], n: usize, c: usize, hw: usize, ch: usize) -> impl Iterator<Item = &[f32]> {
    (0..n).map(move |i| &x[(i * c + ch) * hw..][..hw])
}

/// Σ f(a_i, b_i) in f64 over eight lanes: one running sum would wait on each add's latency.
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y)).sum();
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += f(xa[l], xb[l]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Per-channel batch mean and biased variance, and the number of values per channel; with `sync`,
/// over the batches of all its ranks (two passes, as in one process: the mean, then the squares).
pub fn batch_stats(x: &Tensor, sync: Option<&dyn Group>) -> (Vec<f64>, Vec<f64>, usize) {
    let (n, c, h, w) = x.dims4();
    let per_channel = |f: &(dyn Fn(usize, &[f32]) -> f64 + Sync)| -> Vec<f64> {
        (0..c).into_par_iter().map(|ch| planes(x.data(), n, c, h * w, ch).map(|p| f(ch, p)).sum()).collect()
    };
    let mut sums = per_channel(&|_, p| sum_lanes(p, p, |v, _| v as f64));
    sums.push((n * h * w) as f64);
    sync.inspect(|g| g.sum_f64(&mut sums));
    let m = sums.pop().expect("the count");
    let mean: Vec<f64> = sums.iter().map(|s| s / m).collect();
    let mut squares = per_channel(&|ch, p| sum_lanes(p, p, |v, _| (v as f64 - mean[ch]).powi(2)));
    sync.inspect(|g| g.sum_f64(&mut squares));
    (mean, squares.iter().map(|q| q / m).collect(), m as usize)
}

/// `y = (x - mean) * invstd * gamma + beta`, per channel, rounded once from f64: deep eval-mode
/// nets have pre-activations within an ulp of zero, where every extra rounding can flip a ReLU.
/// Measured against f32 (`a`, `b` and `x·a + b` in f32, as PyTorch's CPU kernel): no faster (the
/// pass is memory-bound), and MobileNetV2's fixture then has two eval-mode input gradients past
/// 1e-4 (BENCHMARKS.md, the BN f32/f64 A/B).
/// With `relu`, a following ReLU is applied in the same pass (NaN stays NaN, as in `relu_forward`).
fn normalize(x: &Tensor, mean: &[f64], invstd: &[f64], gamma: &[f32], beta: &[f32], relu: bool) -> Tensor {
    let (_, c, h, w) = x.dims4();
    Tensor::written(x.shape(), |y| {
        y.par_chunks_mut(h * w).zip(x.data().par_chunks(h * w)).enumerate().with_min_len(grain(h * w)).for_each(
            |(i, (yp, xp))| {
                let ch = i % c;
                let a = invstd[ch] * gamma[ch] as f64;
                let b = beta[ch] as f64 - mean[ch] * a;
                if relu {
                    yp.iter_mut().zip(xp).for_each(|(o, &v)| {
                        let y = (v as f64 * a + b) as f32;
                        *o = if y < 0.0 { 0.0 } else { y };
                    });
                } else {
                    yp.iter_mut().zip(xp).for_each(|(o, &v)| *o = (v as f64 * a + b) as f32);
                }
            },
        )
    })
}

/// An eval-mode BatchNorm as the per-channel affine map it is, y = x·a + b, in BN's own arithmetic
/// (a = γ/√(σ²+ε), b = β − μ·a, in f64), and the factor k its input gradient is scaled by. A
/// convolution applies it in its output pass (`ops::epilogue`), giving bit for bit what conv then
/// BN gives, without BN's pass.
pub struct Affine {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub k: Vec<f32>,
}

impl Affine {
    pub fn eval(gamma: &Tensor, beta: &Tensor, mean: &Tensor, var: &Tensor, eps: f32) -> Affine {
        let var: Vec<f64> = var.data().iter().map(|&v| v as f64).collect();
        let inv = invstd(&var, eps);
        let (g, be, m) = (gamma.data(), beta.data(), mean.data());
        let a: Vec<f64> = inv.iter().zip(g).map(|(&i, &g)| i * g as f64).collect();
        let b = (0..a.len()).map(|c| be[c] as f64 - m[c] as f64 * a[c]).collect();
        let k = inv.iter().zip(g).map(|(&i, &g)| (g as f64 * i) as f32).collect();
        Affine { a, b, k }
    }
}

fn invstd(var: &[f64], eps: f32) -> Vec<f64> {
    var.iter().map(|&v| 1.0 / (v + eps as f64).sqrt()).collect()
}

/// `running = (1 - momentum) * running + momentum * scale * batch`. The variance is moved with the
/// unbiased batch variance: `scale = unbias(count)` there, 1 for the mean.
pub fn update_running(running: &mut [f32], batch: &[f64], momentum: f32, scale: f64) {
    for (r, &b) in running.iter_mut().zip(batch) {
        *r = ((1.0 - momentum as f64) * *r as f64 + momentum as f64 * scale * b) as f32;
    }
}

/// m/(m−1): biased to unbiased variance over `count` values.
pub fn unbias(count: usize) -> f64 {
    count as f64 / (count.max(2) - 1) as f64
}

/// Gradients of x (when `need_x`), and of gamma and beta (when `need_params`; empty otherwise).
/// `train` selects whether mean/invstd came from the batch (and so depend on x) or from the running
/// statistics; in eval mode without parameter gradients (the inner loop) dx is one scaling pass.
/// With `sync` (train mode over several ranks) dx reads the sums of all ranks; gamma's and beta's
/// gradients stay this rank's, summed over the ranks with every other parameter's.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &Tensor,
    gamma: &[f32],
    mean: &[f64],
    invstd: &[f64],
    gy: &Tensor,
    train: bool,
    need_x: bool,
    need_params: bool,
    sync: Option<&dyn Group>,
) -> (Option<Tensor>, Vec<f32>, Vec<f32>) {
    let (n, c, h, w) = x.dims4();
    let mut m = (n * h * w) as f64;
    // Σ gy and Σ gy·x̂ per channel.
    let mut sums: Vec<(f64, f64)> = if !train && !need_params {
        Vec::new()
    } else {
        (0..c)
            .into_par_iter()
            .map(|ch| {
                let mu = mean[ch];
                let (mut sg, mut sgx) = (0.0f64, 0.0f64);
                for (xp, gp) in planes(x.data(), n, c, h * w, ch).zip(planes(gy.data(), n, c, h * w, ch)) {
                    sg += sum_lanes(gp, gp, |g, _| g as f64);
                    sgx += sum_lanes(gp, xp, |g, v| g as f64 * (v as f64 - mu));
                }
                (sg, sgx * invstd[ch])
            })
            .collect()
    };
    let dgamma: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    if let Some(g) = sync.filter(|_| train) {
        let mut flat: Vec<f64> = sums.iter().flat_map(|&(a, b)| [a, b]).chain([m]).collect();
        g.sum_f64(&mut flat);
        m = flat.pop().expect("the count");
        sums = flat.chunks(2).map(|p| (p[0], p[1])).collect();
    }
    let dx = need_x.then(|| {
        Tensor::written(x.shape(), |dx| {
            dx.par_chunks_mut(h * w).enumerate().with_min_len(grain(h * w)).for_each(|(i, dp)| {
                let ch = i % c;
                let k = (gamma[ch] as f64 * invstd[ch]) as f32;
                let (mu, inv) = (mean[ch] as f32, invstd[ch] as f32);
                let (xp, gp) = (&x.data()[i * h * w..][..h * w], &gy.data()[i * h * w..][..h * w]);
                if train {
                    let (mg, mgx) = ((sums[ch].0 / m) as f32, (sums[ch].1 / m) as f32);
                    for ((d, &v), &g) in dp.iter_mut().zip(xp).zip(gp) {
                        *d = k * (g - mg - (v - mu) * inv * mgx);
                    }
                } else {
                    dp.iter_mut().zip(gp).for_each(|(d, &g)| *d = k * g);
                }
            })
        })
    });
    (dx, dgamma, dbeta)
}

/// Per-channel mean and 1/std that a forward normalised with, kept for backward.
enum Saved {
    Cpu {
        mean: Vec<f64>,
        invstd: Vec<f64>,
    },
    #[cfg(feature = "cuda")]
    Cuda(cuda::Stats),
}

struct BnNode {
    x: Arc<Tensor>,
    gamma: Param,
    beta_id: usize,
    saved: Saved,
    train: bool,
    /// The output of a fused BN+ReLU: its backward first masks the gradient with it.
    relu_out: Option<Arc<Tensor>>,
    /// The ranks whose batches a synchronised BN normalised together.
    sync: Option<Arc<dyn Group>>,
}

impl Backward for BnNode {
    fn backward(&self, gy: &Tensor, need: &[bool], params: bool) -> Grads {
        let masked = self.relu_out.as_ref().map(|y| super::elementwise::relu_backward(y, gy));
        let gy = masked.as_ref().unwrap_or(gy);
        let (dx, dg, db) = match &self.saved {
            Saved::Cpu { mean, invstd } => {
                let (x, gamma, sync) = (&self.x, self.gamma.val.data(), self.sync.as_deref());
                let (dx, dg, db) = backward(x, gamma, mean, invstd, gy, self.train, need[0], params, sync);
                (dx, Tensor::from_vec(&[dg.len()], dg), Tensor::from_vec(&[db.len()], db))
            }
            #[cfg(feature = "cuda")]
            Saved::Cuda(s) => {
                let sync = self.sync.as_deref();
                cuda::backward(&self.x, &self.gamma.val, s, gy, self.train, need[0], params, sync)
            }
        };
        let params = if params { vec![(self.gamma.id, dg), (self.beta_id, db)] } else { Vec::new() };
        Grads { inputs: vec![dx], params }
    }
}

/// Which statistics a BN forward normalises with: the batch's in train mode (moving the running
/// statistics with them; with `sync`, the batch of all its ranks), the running ones in eval mode.
pub enum Stats<'a> {
    Batch { running_mean: &'a mut Tensor, running_var: &'a mut Tensor, momentum: f32, sync: Option<&'a Arc<dyn Group>> },
    Running { mean: &'a Tensor, var: &'a Tensor },
}

/// Batch normalisation as a recorded op.
pub fn batch_norm(tape: &mut Tape, x: &Var, gamma: &Param, beta: &Param, stats: Stats, eps: f32) -> Var {
    bn(tape, x, gamma, beta, stats, eps, false)
}

/// Batch normalisation then ReLU as one op: one pass over memory forward instead of two.
pub fn batch_norm_relu(tape: &mut Tape, x: &Var, gamma: &Param, beta: &Param, stats: Stats, eps: f32) -> Var {
    bn(tape, x, gamma, beta, stats, eps, true)
}

fn bn(tape: &mut Tape, x: &Var, gamma: &Param, beta: &Param, stats: Stats, eps: f32, relu: bool) -> Var {
    let (train, sync) = match &stats {
        Stats::Batch { sync, .. } => (true, sync.cloned()),
        Stats::Running { .. } => (false, None),
    };
    let node = |saved, y: &Arc<Tensor>| BnNode {
        x: x.val.clone(),
        gamma: gamma.clone(),
        beta_id: beta.id,
        saved,
        train,
        relu_out: relu.then(|| y.clone()),
        sync: sync.clone(),
    };
    crate::on_gpu!(x.val, |_g| {
        let (y, s) = cuda::forward(&x.val, &gamma.val, &beta.val, stats, eps, relu);
        tape.record(y, &[x], true, |y| node(Saved::Cuda(s), y))
    });
    let (mean, var) = match stats {
        Stats::Batch { running_mean, running_var, momentum, sync } => {
            let (mean, var, count) = batch_stats(&x.val, sync.map(|g| &**g));
            update_running(running_mean.data_mut(), &mean, momentum, 1.0);
            update_running(running_var.data_mut(), &var, momentum, unbias(count));
            (mean, var)
        }
        Stats::Running { mean, var } => {
            (mean.data().iter().map(|&v| v as f64).collect(), var.data().iter().map(|&v| v as f64).collect())
        }
    };
    let inv = invstd(&var, eps);
    let y = normalize(&x.val, &mean, &inv, gamma.val.data(), beta.val.data(), relu);
    tape.record(y, &[x], true, |y| node(Saved::Cpu { mean, invstd: inv }, y))
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::Stats as Which;
    use crate::cuda::Gpu;
    use crate::dist::Group;
    use crate::tensor::Tensor;
    use cudarc::driver::CudaSlice;
    use std::sync::Arc;

    /// Per-channel mean and 1/std in double, on the GPU.
    pub struct Stats {
        mean: CudaSlice<f64>,
        invstd: CudaSlice<f64>,
    }

    pub fn forward(x: &Tensor, gamma: &Tensor, beta: &Tensor, which: Which, eps: f32, relu: bool) -> (Tensor, Stats) {
        let g: Arc<Gpu> = x.gpu().unwrap().clone();
        let (n, c, h, w) = x.dims4();
        let (ni, ci, hw) = (n as i32, c as i32, (h * w) as i32);
        let mut s = Stats { mean: g.zeros(c), invstd: g.zeros(c) };
        match which {
            Which::Batch { running_mean, running_var, momentum, sync } => {
                let (grid, slices, per) = g.slices(n, c);
                let local = (n * h * w) as f64;
                // a channel's sum: its slices' partial sums added in order, then under synchronised
                // BN every rank's, on the host (a few doubles per channel), with the count
                let sums = |squares: i32, center: &CudaSlice<f64>, count: f64| {
                    let mut partial = g.zeros::<f64>(c * slices);
                    let (xs, p) = (x.cu(), per as i32);
                    crate::cuda::kernels::bn_slice_sums(
                        &g,
                        grid,
                        xs,
                        ni,
                        ci,
                        hw,
                        p,
                        squares,
                        center,
                        count,
                        &mut partial,
                    );
                    let mut out = g.zeros::<f64>(c);
                    crate::cuda::kernels::bn_combine(&g, g.grid(c), &partial, slices as i32, ci, &mut out);
                    let Some(group) = sync else { return (out, local) };
                    let mut v = g.download(&out);
                    v.push(local);
                    group.sum_f64(&mut v);
                    let count = v.pop().expect("the count");
                    (g.upload(&v), count)
                };
                let (sum, count) = sums(0, &s.mean, 1.0);
                let (sq, _) = sums(1, &sum, count);
                let (rm, rv) = (running_mean.cu_mut(), running_var.cu_mut());
                let (mean, inv) = (&mut s.mean, &mut s.invstd);
                crate::cuda::kernels::bn_stats_of_sums(
                    &g,
                    g.grid(c),
                    &sum,
                    &sq,
                    count,
                    eps,
                    momentum,
                    ci,
                    mean,
                    inv,
                    rm,
                    rv,
                );
            }
            Which::Running { mean, var } => crate::cuda::kernels::bn_running_stats(
                &g,
                g.grid(c),
                mean.cu(),
                var.cu(),
                eps,
                ci,
                &mut s.mean,
                &mut s.invstd,
            ),
        }
        let total = x.numel() as i32;
        let mut y = g.empty(x.numel());
        let r = relu as i32;
        crate::cuda::kernels::bn_normalize(
            &g,
            g.grid(x.numel()),
            x.cu(),
            &mut y,
            &s.mean,
            &s.invstd,
            gamma.cu(),
            beta.cu(),
            ci,
            hw,
            total,
            r,
        );
        (Tensor::from_cuda(&g, x.shape(), y), s)
    }

    /// (dx if `need_x`, dgamma, dbeta). In eval mode dx needs no reduction: the inner loop
    /// (eval mode, no parameter gradients) skips the per-channel sums and gets dx in one pass.
    /// With `sync` (train mode over several ranks) dx reads every rank's sums, as on the CPU.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        x: &Tensor,
        gamma: &Tensor,
        s: &Stats,
        gy: &Tensor,
        train: bool,
        need_x: bool,
        params: bool,
        sync: Option<&dyn Group>,
    ) -> (Option<Tensor>, Tensor, Tensor) {
        let g = x.gpu().unwrap().clone();
        let (n, c, h, w) = x.dims4();
        let (ni, ci, hw, total, mut m) = (n as i32, c as i32, (h * w) as i32, x.numel() as i32, (n * h * w) as i32);
        let (mut sg, mut sgx) = (g.zeros::<f64>(c), g.zeros::<f64>(c));
        let (mut dg, mut db) = (Tensor::zeros_on(&[c], &x.device()), Tensor::zeros_on(&[c], &x.device()));
        if train || params {
            let (grid, slices, per) = g.slices(n, c);
            let (mut pg, mut pgx) = (g.zeros::<f64>(c * slices), g.zeros::<f64>(c * slices));
            let (xs, gys, p) = (x.cu(), gy.cu(), per as i32);
            crate::cuda::kernels::bn_bwd_slice_sums(&g, grid, xs, gys, &s.mean, ni, ci, hw, p, &mut pg, &mut pgx);
            let (sl, dgc, dbc) = (slices as i32, dg.cu_mut(), db.cu_mut());
            crate::cuda::kernels::bn_bwd_combine(
                &g,
                g.grid(c),
                &pg,
                &pgx,
                sl,
                ci,
                &s.invstd,
                &mut sg,
                &mut sgx,
                dgc,
                dbc,
            );
        }
        if let Some(group) = sync.filter(|_| train) {
            let mut v: Vec<f64> = g.download(&sg).into_iter().chain(g.download(&sgx)).chain([m as f64]).collect();
            group.sum_f64(&mut v);
            m = v.pop().expect("the count") as i32;
            (sg, sgx) = (g.upload(&v[..c]), g.upload(&v[c..]));
        }
        let dx = need_x.then(|| {
            let mut dx = g.empty(x.numel());
            let t = train as i32;
            crate::cuda::kernels::bn_bwd_data(
                &g,
                g.grid(x.numel()),
                x.cu(),
                gy.cu(),
                &mut dx,
                &s.mean,
                &s.invstd,
                gamma.cu(),
                &sg,
                &sgx,
                t,
                ci,
                hw,
                total,
                m,
            );
            Tensor::from_cuda(&g, x.shape(), dx)
        });
        (dx, dg, db)
    }
}
