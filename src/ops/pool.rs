//! Max-pool 2x2 stride 2 (floor mode, as F.max_pool2d(x, 2)) and global average pooling to [N, C].
//! Tests: below, the fixtures' pool_linear case (`tests/parity.rs`), `tests/gradcheck.rs`, CPU against
//! GPU in `tests/cuda_parity.rs`; kernels in `kernels/pool.cu`.
use super::grain;
use crate::tape::{Backward, Grads, Tape, Var};
use crate::tensor::{Tensor, written};
use rayon::prelude::*;

/// Pooled values and, per output, the flat index of the chosen input inside its plane (the first
/// maximum in scan order, as PyTorch picks it).
pub fn maxpool2_forward(x: &Tensor) -> (Tensor, Vec<u32>) {
    let (n, c, h, w) = x.dims4();
    let (oh, ow) = (h / 2, w / 2);
    let mut idx = Vec::new();
    let y = Tensor::written(&[n, c, oh, ow], |y| {
        idx = written(y.len(), |idx| {
            y.par_chunks_mut(oh * ow).zip(idx.par_chunks_mut(oh * ow)).enumerate().with_min_len(grain(h * w)).for_each(
                |(p, (yp, ip))| {
                    let xp = &x.data()[p * h * w..][..h * w];
                    for oy in 0..oh {
                        let (r0, r1) = (&xp[2 * oy * w..][..2 * ow], &xp[(2 * oy + 1) * w..][..2 * ow]);
                        pool_row(
                            r0,
                            r1,
                            &mut yp[oy * ow..][..ow],
                            &mut ip[oy * ow..][..ow],
                            (2 * oy * w) as u32,
                            w as u32,
                        );
                    }
                },
            )
        })
    });
    (y, idx)
}

/// One output row from its two input rows, written as plain indexed selects that LLVM vectorises
/// (the stride-2 loads become shuffles): the earlier per-window loop over a candidate array stayed
/// scalar and ran at a third of this speed.
fn pool_row(r0: &[f32], r1: &[f32], y: &mut [f32], idx: &mut [u32], base: u32, w: u32) {
    let ow = y.len();
    let (r0, r1, idx) = (&r0[..2 * ow], &r1[..2 * ow], &mut idx[..ow]);
    for ox in 0..ow {
        let (mut v, mut o) = (r0[2 * ox], 0);
        // scan order; a later value wins only when larger, or NaN (PyTorch's first maximum)
        for (c, off) in [(r0[2 * ox + 1], 1), (r1[2 * ox], w), (r1[2 * ox + 1], w + 1)] {
            let take = c > v || c.is_nan();
            v = if take { c } else { v };
            o = if take { off } else { o };
        }
        y[ox] = v;
        idx[ox] = base + 2 * ox as u32 + o;
    }
}

/// Every input gets its window's gradient where it was the maximum and 0 elsewhere, written once
/// (no zeroing pass, no scatter); rows and columns a floor-mode pool dropped get 0.
pub fn maxpool2_backward(x_shape: &[usize], idx: &[u32], gy: &Tensor) -> Tensor {
    let (h, w) = (x_shape[2], x_shape[3]);
    let (oh, ow) = (h / 2, w / 2);
    Tensor::written(x_shape, |gx| {
        gx.par_chunks_mut(h * w).enumerate().with_min_len(grain(h * w)).for_each(|(p, gp)| {
            let (ip, g) = (&idx[p * oh * ow..][..oh * ow], &gy.data()[p * oh * ow..][..oh * ow]);
            for oy in 0..oh {
                let (r0, r1) = gp[2 * oy * w..][..2 * w].split_at_mut(w);
                let base = (2 * oy * w) as u32;
                for o in (0..ow).step_by(BLOCK) {
                    let n = BLOCK.min(ow - o);
                    unpool_block(
                        &ip[oy * ow + o..][..n],
                        &g[oy * ow + o..][..n],
                        base + 2 * o as u32,
                        w as u32,
                        &mut r0[2 * o..][..2 * n],
                        &mut r1[2 * o..][..2 * n],
                    );
                }
                if w % 2 == 1 {
                    (r0[w - 1], r1[w - 1]) = (0.0, 0.0);
                }
            }
            gp[2 * oh * w..].fill(0.0);
        })
    })
}

const BLOCK: usize = 64;

/// Up to `BLOCK` windows of one row pair: each window's gradient goes to the position it was taken
/// from and 0 to the other three. The masks are computed into contiguous arrays first and then
/// interleaved into the rows: the same work as one loop with stride-2 stores stays scalar.
fn unpool_block(idx: &[u32], g: &[f32], base: u32, w: u32, r0: &mut [f32], r1: &mut [f32]) {
    let mut v = [[0.0f32; BLOCK]; 4];
    for (i, (&at, &g)) in idx.iter().zip(g).enumerate().take(BLOCK) {
        let at = at.wrapping_sub(base + 2 * i as u32);
        for (k, off) in [0, 1, w, w + 1].into_iter().enumerate() {
            v[k][i] = if at == off { g } else { 0.0 };
        }
    }
    for (r, (a, b)) in [(r0, (&v[0], &v[1])), (r1, (&v[2], &v[3]))] {
        let n = r.len() / 2;
        for i in 0..n {
            (r[2 * i], r[2 * i + 1]) = (a[i], b[i]);
        }
    }
}

/// Where each output of a max-pool came from.
enum Argmax {
    Cpu(Vec<u32>),
    #[cfg(feature = "cuda")]
    Cuda(cudarc::driver::CudaSlice<u32>),
}

struct MaxPoolNode {
    x_shape: Vec<usize>,
    idx: Argmax,
}

impl Backward for MaxPoolNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        let gx = match &self.idx {
            Argmax::Cpu(idx) => maxpool2_backward(&self.x_shape, idx, gy),
            #[cfg(feature = "cuda")]
            Argmax::Cuda(idx) => cuda::maxpool2_backward(&self.x_shape, idx, gy),
        };
        Grads { inputs: vec![Some(gx)], params: Vec::new() }
    }
}

pub fn maxpool2(tape: &mut Tape, x: &Var) -> Var {
    crate::on_gpu!(x.val, |_g| {
        let (y, idx) = cuda::maxpool2_forward(&x.val);
        tape.record(y, &[x], false, |_| MaxPoolNode { x_shape: x.shape().to_vec(), idx: Argmax::Cuda(idx) })
    });
    let (y, idx) = maxpool2_forward(&x.val);
    tape.record(y, &[x], false, |_| MaxPoolNode { x_shape: x.shape().to_vec(), idx: Argmax::Cpu(idx) })
}

pub fn avgpool_forward(x: &Tensor) -> Tensor {
    crate::on_gpu!(x, |_g| cuda::avgpool_forward(x));
    let (n, c, h, w) = x.dims4();
    let means = x
        .data()
        .par_chunks(h * w)
        .with_min_len(grain(h * w))
        .map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / (h * w) as f64) as f32)
        .collect();
    Tensor::from_vec(&[n, c], means)
}

pub fn avgpool_backward(x_shape: &[usize], gy: &Tensor) -> Tensor {
    crate::on_gpu!(gy, |_g| cuda::avgpool_backward(x_shape, gy));
    let hw = x_shape[2] * x_shape[3];
    let mut gx = Tensor::zeros(x_shape);
    gx.data_mut()
        .par_chunks_mut(hw)
        .zip(gy.data().par_iter())
        .with_min_len(grain(hw))
        .for_each(|(gp, &g)| gp.fill(g / hw as f32));
    gx
}

struct AvgPoolNode(Vec<usize>);

impl Backward for AvgPoolNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(avgpool_backward(&self.0, gy))], params: Vec::new() }
    }
}

/// Global average pooling, NCHW -> [N, C] (adaptive_avg_pool2d(x, 1) then flatten).
pub fn avgpool(tape: &mut Tape, x: &Var) -> Var {
    tape.record(avgpool_forward(&x.val), &[x], false, |_| AvgPoolNode(x.shape().to_vec()))
}

#[cfg(feature = "cuda")]
mod cuda {
    use crate::tensor::Tensor;
    use cudarc::driver::CudaSlice;

    pub fn maxpool2_forward(x: &Tensor) -> (Tensor, CudaSlice<u32>) {
        let g = x.gpu().unwrap().clone();
        let (n, c, h, w) = x.dims4();
        let outs = n * c * (h / 2) * (w / 2);
        let (mut y, mut idx) = (g.empty(outs), g.zeros::<u32>(outs));
        let (hi, wi, planes) = (h as i32, w as i32, (n * c) as i32);
        crate::cuda::kernels::maxpool2_fwd(&g, g.grid(outs), x.cu(), &mut y, &mut idx, hi, wi, planes);
        (Tensor::from_cuda(&g, &[n, c, h / 2, w / 2], y), idx)
    }

    pub fn maxpool2_backward(x_shape: &[usize], idx: &CudaSlice<u32>, gy: &Tensor) -> Tensor {
        let g = gy.gpu().unwrap().clone();
        let mut gx = Tensor::zeros_on(x_shape, &gy.device());
        let (hi, wi, planes) = (x_shape[2] as i32, x_shape[3] as i32, (x_shape[0] * x_shape[1]) as i32);
        crate::cuda::kernels::maxpool2_bwd(&g, g.grid(gy.numel()), gy.cu(), idx, gx.cu_mut(), hi, wi, planes);
        gx
    }

    pub fn avgpool_forward(x: &Tensor) -> Tensor {
        let g = x.gpu().unwrap().clone();
        let (n, c, h, w) = x.dims4();
        let mut y = Tensor::zeros_on(&[n, c], &x.device());
        let (hw, planes) = ((h * w) as i32, (n * c) as i32);
        // one warp per plane
        crate::cuda::kernels::avgpool_fwd(&g, g.grid(n * c * 32), x.cu(), y.cu_mut(), hw, planes);
        y
    }

    pub fn avgpool_backward(x_shape: &[usize], gy: &Tensor) -> Tensor {
        let g = gy.gpu().unwrap().clone();
        let mut gx = Tensor::zeros_on(x_shape, &gy.device());
        let (hw, planes) = ((x_shape[2] * x_shape[3]) as i32, (x_shape[0] * x_shape[1]) as i32);
        crate::cuda::kernels::avgpool_bwd(&g, g.grid(gx.numel()), gy.cu(), gx.cu_mut(), hw, planes);
        gx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's choice inside a window: the first maximum in scan order, and the last NaN; odd
    /// sizes drop the last row and column (floor mode), whose gradient is 0. Rows of 20 windows
    /// cover the vector body and the scalar tail.
    #[test]
    fn first_maximum_last_nan_floor_mode() {
        let (h, w) = (5, 41);
        let mut x = vec![0.0f32; h * w];
        let windows: [[f32; 4]; 5] = [
            [1.0, 3.0, 3.0, 2.0],
            [0.0; 4],
            [1.0, f32::NAN, 5.0, f32::NAN],
            [-1.0, -2.0, -3.0, 4.0],
            [2.0, 1.0, f32::NAN, 9.0],
        ];
        let want = [1, 0, w + 1, w + 1, w];
        for oy in 0..h / 2 {
            for ox in 0..w / 2 {
                let k = (oy * 7 + ox) % 5;
                for (j, v) in windows[k].iter().enumerate() {
                    x[(2 * oy + j / 2) * w + 2 * ox + j % 2] = *v;
                }
            }
        }
        let (y, idx) = maxpool2_forward(&Tensor::from_vec(&[1, 1, h, w], x.clone()));
        assert_eq!(y.shape(), &[1, 1, h / 2, w / 2]);
        for oy in 0..h / 2 {
            for ox in 0..w / 2 {
                let (k, i) = ((oy * 7 + ox) % 5, oy * (w / 2) + ox);
                assert_eq!(idx[i] as usize, 2 * oy * w + 2 * ox + want[k], "window {oy},{ox}");
                assert_eq!(y.data()[i].to_bits(), x[idx[i] as usize].to_bits());
            }
        }
        let gy = Tensor::from_vec(y.shape(), (1..=idx.len()).map(|v| v as f32).collect());
        let gx = maxpool2_backward(&[1, 1, h, w], &idx, &gy);
        let mut want = vec![0.0; h * w];
        idx.iter().zip(gy.data()).for_each(|(&i, &g)| want[i as usize] = g);
        assert_eq!(gx.data(), &want[..]);
    }
}
