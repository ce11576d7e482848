//! Max-pool 2x2 stride 2 (floor mode, as F.max_pool2d(x, 2)) and global average pooling to [N, C].
use super::grain;
use crate::tape::{Backward, Grads, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Pooled values and, per output, the flat index of the chosen input inside its plane (the first
/// maximum in scan order, as PyTorch picks it).
pub fn maxpool2_forward(x: &Tensor) -> (Tensor, Vec<u32>) {
    let (n, c, h, w) = x.dims4();
    let (oh, ow) = (h / 2, w / 2);
    let mut y = Tensor::zeros(&[n, c, oh, ow]);
    let mut idx = vec![0u32; n * c * oh * ow];
    y.data_mut().par_chunks_mut(oh * ow).zip(idx.par_chunks_mut(oh * ow)).enumerate().with_min_len(grain(h * w)).for_each(|(p, (yp, ip))| {
        let xp = &x.data()[p * h * w..][..h * w];
        for oy in 0..oh {
            let (r0, r1) = (&xp[2 * oy * w..][..2 * ow], &xp[(2 * oy + 1) * w..][..2 * ow]);
            let (yr, ir) = (&mut yp[oy * ow..][..ow], &mut ip[oy * ow..][..ow]);
            let base = (2 * oy * w) as u32;
            for (ox, (((a, b), y), i)) in r0.chunks_exact(2).zip(r1.chunks_exact(2)).zip(yr).zip(ir).enumerate() {
                // Scan order; a later value wins only when larger, or NaN. Selected with masks, not
                // branches: on real activations the comparisons are coin flips the predictor loses.
                let (mut v, mut o) = (a[0], 0u32);
                for (c, off) in [(a[1], 1), (b[0], w as u32), (b[1], w as u32 + 1)] {
                    let m = 0u32.wrapping_sub((c > v || c.is_nan()) as u32);
                    v = f32::from_bits((c.to_bits() & m) | (v.to_bits() & !m));
                    o = (off & m) | (o & !m);
                }
                *y = v;
                *i = base + 2 * ox as u32 + o;
            }
        }
    });
    (y, idx)
}

pub fn maxpool2_backward(x_shape: &[usize], idx: &[u32], gy: &Tensor) -> Tensor {
    let (_, _, h, w) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
    let opix = gy.shape()[2] * gy.shape()[3];
    let mut gx = Tensor::zeros(x_shape);
    gx.data_mut().par_chunks_mut(h * w).enumerate().with_min_len(grain(h * w)).for_each(|(p, gp)| {
        for (&i, &g) in idx[p * opix..][..opix].iter().zip(&gy.data()[p * opix..][..opix]) {
            gp[i as usize] += g;
        }
    });
    gx
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
    #[cfg(feature = "cuda")]
    if x.val.gpu().is_some() {
        let (y, idx) = cuda::maxpool2_forward(&x.val);
        return tape.record(y, &[x], false, |_| MaxPoolNode { x_shape: x.shape().to_vec(), idx: Argmax::Cuda(idx) });
    }
    let (y, idx) = maxpool2_forward(&x.val);
    tape.record(y, &[x], false, |_| MaxPoolNode { x_shape: x.shape().to_vec(), idx: Argmax::Cpu(idx) })
}

pub fn avgpool_forward(x: &Tensor) -> Tensor {
    #[cfg(feature = "cuda")]
    if x.gpu().is_some() {
        return cuda::avgpool_forward(x);
    }
    let (n, c, h, w) = x.dims4();
    let means = x.data().par_chunks(h * w).with_min_len(grain(h * w)).map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / (h * w) as f64) as f32).collect();
    Tensor::from_vec(&[n, c], means)
}

pub fn avgpool_backward(x_shape: &[usize], gy: &Tensor) -> Tensor {
    #[cfg(feature = "cuda")]
    if gy.gpu().is_some() {
        return cuda::avgpool_backward(x_shape, gy);
    }
    let hw = x_shape[2] * x_shape[3];
    let mut gx = Tensor::zeros(x_shape);
    gx.data_mut().par_chunks_mut(hw).zip(gy.data().par_iter()).with_min_len(grain(hw)).for_each(|(gp, &g)| gp.fill(g / hw as f32));
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
    use crate::launch;
    use crate::tensor::Tensor;
    use cudarc::driver::CudaSlice;

    pub fn maxpool2_forward(x: &Tensor) -> (Tensor, CudaSlice<u32>) {
        let g = x.gpu().unwrap().clone();
        let (n, c, h, w) = x.dims4();
        let outs = n * c * (h / 2) * (w / 2);
        let (mut y, mut idx) = (g.empty(outs), g.zeros::<u32>(outs));
        let (hi, wi, planes) = (h as i32, w as i32, (n * c) as i32);
        launch!(g, "maxpool2_fwd", g.grid(outs), x.cu(), &mut y, &mut idx, &hi, &wi, &planes);
        (Tensor::from_cuda(&g, &[n, c, h / 2, w / 2], y), idx)
    }

    pub fn maxpool2_backward(x_shape: &[usize], idx: &CudaSlice<u32>, gy: &Tensor) -> Tensor {
        let g = gy.gpu().unwrap().clone();
        let mut gx = Tensor::zeros_on(x_shape, &gy.device());
        let (hi, wi, planes) = (x_shape[2] as i32, x_shape[3] as i32, (x_shape[0] * x_shape[1]) as i32);
        launch!(g, "maxpool2_bwd", g.grid(gy.numel()), gy.cu(), idx, gx.cu_mut(), &hi, &wi, &planes);
        gx
    }

    pub fn avgpool_forward(x: &Tensor) -> Tensor {
        let g = x.gpu().unwrap().clone();
        let (n, c, h, w) = x.dims4();
        let mut y = Tensor::zeros_on(&[n, c], &x.device());
        let (hw, planes) = ((h * w) as i32, (n * c) as i32);
        // one warp per plane
        launch!(g, "avgpool_fwd", g.grid(n * c * 32), x.cu(), y.cu_mut(), &hw, &planes);
        y
    }

    pub fn avgpool_backward(x_shape: &[usize], gy: &Tensor) -> Tensor {
        let g = gy.gpu().unwrap().clone();
        let mut gx = Tensor::zeros_on(x_shape, &gy.device());
        let (hw, planes) = ((x_shape[2] * x_shape[3]) as i32, (x_shape[0] * x_shape[1]) as i32);
        launch!(g, "avgpool_bwd", g.grid(gx.numel()), gy.cu(), gx.cu_mut(), &hw, &planes);
        gx
    }
}
