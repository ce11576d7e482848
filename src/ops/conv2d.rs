//! 2-d convolution (PyTorch semantics: weight [cout, cin/groups, k, k], square kernel, dilation 1).
//! CPU: chunks of images are im2col'ed and multiplied in one GEMM per group (a GEMM per image
//! runs at a fraction of the machine's FLOP/s on 4x4 and 8x8 maps); depthwise convolutions, where
//! a GEMM would have one output row, use direct loops (`depthwise.rs`).
use super::depthwise;
use super::gemm::{sgemm, Mat};
use super::im2col::{col2im, im2col, Geom};
use crate::tape::{Backward, Grads, Param, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvCfg {
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
}

/// Column-matrix budget per chunk (floats): big enough for an efficient GEMM, small enough to stay
/// out of the way of the activations.
const COL_BUDGET: usize = 1 << 22;

struct Plan {
    n: usize,
    cout: usize,
    cg: usize,
    og: usize,
    geom: Geom,
    /// images per chunk
    nb: usize,
}

impl Plan {
    fn new(x: &[usize], w: &[usize], cfg: ConvCfg) -> Self {
        let (&[n, c, h, wd], &[cout, cg, k, k2]) = (x, w) else { panic!("conv2d: x {x:?}, w {w:?} must be 4-d") };
        assert_eq!(k, k2, "conv2d: only square kernels");
        assert!(cfg.groups > 0 && c % cfg.groups == 0 && cout % cfg.groups == 0, "conv2d: groups {} must divide {c} and {cout}", cfg.groups);
        assert_eq!(cg, c / cfg.groups, "conv2d: weight {w:?} does not fit {c} input channels in {} groups", cfg.groups);
        let geom = Geom::new(c, h, wd, k, cfg.stride, cfg.pad);
        let per_image = cg * k * k * geom.oh * geom.ow;
        let nb = (COL_BUDGET / per_image.max(1)).clamp(1, n.max(1));
        Plan { n, cout, cg, og: cout / cfg.groups, geom, nb }
    }
    fn opix(&self) -> usize {
        self.geom.oh * self.geom.ow
    }
    fn kdim(&self) -> usize {
        self.cg * self.geom.k * self.geom.k
    }
    fn groups(&self) -> usize {
        self.cout / self.og
    }
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let (n, nb) = (self.n, self.nb);
        (0..n).step_by(nb).map(move |n0| (n0, nb.min(n - n0)))
    }
    fn is_depthwise(&self) -> bool {
        self.cg == 1 && self.og == 1
    }
}

/// `[cout, nb*opix]` (GEMM layout) -> rows of `y[n0..n0+nb]` (NCHW), adding `bias`.
fn scatter(buf: &[f32], y: &mut [f32], cout: usize, opix: usize, nb: usize, bias: Option<&[f32]>) {
    y.par_chunks_mut(opix).enumerate().for_each(|(i, dst)| {
        let (n, co) = (i / cout, i % cout);
        dst.copy_from_slice(&buf[co * nb * opix + n * opix..][..opix]);
        if let Some(b) = bias {
            dst.iter_mut().for_each(|v| *v += b[co]);
        }
    });
}

/// Rows of `gy[n0..n0+nb]` (NCHW) -> `[cout, nb*opix]`.
fn gather(gy: &[f32], buf: &mut [f32], cout: usize, opix: usize, nb: usize) {
    buf[..cout * nb * opix].par_chunks_mut(opix).enumerate().for_each(|(i, dst)| {
        let (co, n) = (i / nb, i % nb);
        dst.copy_from_slice(&gy[(n * cout + co) * opix..][..opix]);
    });
}

pub fn forward(x: &Tensor, w: &Tensor, b: Option<&Tensor>, cfg: ConvCfg) -> Tensor {
    let p = Plan::new(x.shape(), w.shape(), cfg);
    let g = p.geom;
    let mut y = Tensor::zeros(&[p.n, p.cout, g.oh, g.ow]);
    let bias = b.map(|b| b.data());
    if p.is_depthwise() {
        depthwise::forward(x.data(), w.data(), &g, p.n, y.data_mut());
        if let Some(b) = bias {
            y.data_mut().par_chunks_mut(p.opix()).enumerate().for_each(|(i, d)| d.iter_mut().for_each(|v| *v += b[i % p.cout]));
        }
        return y;
    }
    let (kd, opix) = (p.kdim(), p.opix());
    let mut col = vec![0.0; kd * p.nb * opix];
    let mut buf = vec![0.0; p.cout * p.nb * opix];
    let (xd, wd) = (x.data(), w.data());
    for (n0, nb) in p.chunks() {
        let cols = nb * opix;
        for gi in 0..p.groups() {
            im2col(&xd[n0 * g.c * g.h * g.w..], &g, gi * p.cg, p.cg, nb, &mut col);
            let wg = Mat::rows(&wd[gi * p.og * kd..][..p.og * kd], kd);
            sgemm(p.og, cols, kd, wg, Mat::rows(&col[..kd * cols], cols), &mut buf[gi * p.og * cols..], cols, false);
        }
        scatter(&buf[..p.cout * cols], &mut y.data_mut()[n0 * p.cout * opix..][..nb * p.cout * opix], p.cout, opix, nb, bias);
    }
    y
}

/// Gradients of input and weight (each only when asked for) from `gy`.
pub fn backward(x: &Tensor, w: &Tensor, gy: &Tensor, cfg: ConvCfg, need_x: bool, need_w: bool) -> (Option<Tensor>, Option<Tensor>) {
    let p = Plan::new(x.shape(), w.shape(), cfg);
    let g = p.geom;
    let mut dx = need_x.then(|| Tensor::zeros(x.shape()));
    let mut dw = need_w.then(|| Tensor::zeros(w.shape()));
    if p.is_depthwise() {
        if let Some(dx) = dx.as_mut() {
            depthwise::backward_data(gy.data(), w.data(), &g, p.n, dx.data_mut());
        }
        if let Some(dw) = dw.as_mut() {
            depthwise::backward_filter(gy.data(), x.data(), &g, p.n, dw.data_mut());
        }
        return (dx, dw);
    }
    let (kd, opix) = (p.kdim(), p.opix());
    let mut col = vec![0.0; kd * p.nb * opix];
    let mut buf = vec![0.0; p.cout * p.nb * opix];
    let (xd, wd) = (x.data(), w.data());
    let img = g.c * g.h * g.w;
    for (n0, nb) in p.chunks() {
        let cols = nb * opix;
        gather(&gy.data()[n0 * p.cout * opix..], &mut buf, p.cout, opix, nb);
        for gi in 0..p.groups() {
            let gyg = Mat::rows(&buf[gi * p.og * cols..][..p.og * cols], cols);
            if let Some(dw) = dw.as_mut() {
                // dW_g[og, kd] += gy_g[og, cols] · col^T[cols, kd]
                im2col(&xd[n0 * img..], &g, gi * p.cg, p.cg, nb, &mut col);
                let dwg = &mut dw.data_mut()[gi * p.og * kd..][..p.og * kd];
                sgemm(p.og, kd, cols, gyg, Mat::t(&col[..kd * cols], cols), dwg, kd, true);
            }
            if let Some(dx) = dx.as_mut() {
                // dcol[kd, cols] = W_g^T[kd, og] · gy_g[og, cols], then folded back into dx
                let wg = Mat::t(&wd[gi * p.og * kd..][..p.og * kd], kd);
                sgemm(kd, cols, p.og, wg, gyg, &mut col, cols, false);
                col2im(&col, &g, gi * p.cg, p.cg, nb, &mut dx.data_mut()[n0 * img..]);
            }
        }
    }
    (dx, dw)
}

/// Bias gradient: the sum of `gy` over images and pixels.
pub fn bias_grad(gy: &Tensor) -> Tensor {
    let (n, c, h, w) = gy.dims4();
    let sums: Vec<f32> = (0..c)
        .into_par_iter()
        .map(|co| (0..n).map(|i| gy.data()[(i * c + co) * h * w..][..h * w].iter().map(|&v| v as f64).sum::<f64>()).sum::<f64>() as f32)
        .collect();
    Tensor::from_vec(&[c], sums)
}

struct ConvNode {
    x: Arc<Tensor>,
    w: Param,
    b: Option<Param>,
    cfg: ConvCfg,
}

impl Backward for ConvNode {
    fn backward(&self, gy: &Tensor, need: &[bool], params: bool) -> Grads {
        let (dx, dw) = backward(&self.x, &self.w.val, gy, self.cfg, need[0], params);
        let mut g = Grads { inputs: vec![dx], params: Vec::new() };
        if let Some(dw) = dw {
            g.params.push((self.w.id, dw));
        }
        if let (true, Some(b)) = (params, &self.b) {
            g.params.push((b.id, bias_grad(gy)));
        }
        g
    }
}

/// Convolution as a recorded op.
pub fn conv2d(tape: &mut Tape, x: &Var, w: &Param, b: Option<&Param>, cfg: ConvCfg) -> Var {
    let y = forward(&x.val, &w.val, b.map(|b| &*b.val), cfg);
    tape.record(y, &[x], true, |_| ConvNode { x: x.val.clone(), w: w.clone(), b: b.cloned(), cfg })
}
