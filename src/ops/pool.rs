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
            for ox in 0..ow {
                let mut best = (2 * oy) * w + 2 * ox;
                for cand in [best + 1, best + w, best + w + 1] {
                    if xp[cand] > xp[best] || xp[cand].is_nan() {
                        best = cand;
                    }
                }
                yp[oy * ow + ox] = xp[best];
                ip[oy * ow + ox] = best as u32;
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

struct MaxPoolNode {
    x_shape: Vec<usize>,
    idx: Vec<u32>,
}

impl Backward for MaxPoolNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(maxpool2_backward(&self.x_shape, &self.idx, gy))], params: Vec::new() }
    }
}

pub fn maxpool2(tape: &mut Tape, x: &Var) -> Var {
    let (y, idx) = maxpool2_forward(&x.val);
    tape.record(y, &[x], false, |_| MaxPoolNode { x_shape: x.shape().to_vec(), idx })
}

pub fn avgpool_forward(x: &Tensor) -> Tensor {
    let (n, c, h, w) = x.dims4();
    let means = x.data().par_chunks(h * w).with_min_len(grain(h * w)).map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / (h * w) as f64) as f32).collect();
    Tensor::from_vec(&[n, c], means)
}

pub fn avgpool_backward(x_shape: &[usize], gy: &Tensor) -> Tensor {
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
