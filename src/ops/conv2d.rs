//! 2-d convolution (PyTorch semantics: weight [cout, cin/groups, k, k], square kernel, dilation 1).
//! CPU: chunks of images are im2col'ed and multiplied in one GEMM per group (a GEMM per image
//! runs at a fraction of the machine's FLOP/s on 4x4 and 8x8 maps); depthwise convolutions, where
//! a GEMM would have one output row, use direct loops (`depthwise.rs`); 3x3 stride-1 layers with
//! 16 or more channels take Winograd for the forward and the input gradient, and with 32 or more
//! on maps of 8×8 or larger for the filter gradient too (`winograd/`: F(4x4) or F(2x2), whichever takes fewer multiplies
//! over the map).
//! Tests: the fixtures' conv2d and model cases (`tests/parity.rs`), `tests/gradcheck.rs` (each path:
//! im2col, Winograd, depthwise, grouped), CPU against GPU (cuDNN) in `tests/cuda_parity.rs`; the
//! bias kernels in `kernels/conv2d.cu`.
use super::batchnorm::Affine;
use super::epilogue::Epilogue;
use super::gemm::{Mat, sgemm, sgemm_strided};
use super::im2col::{Geom, col2im, im2col};
use super::transpose::{par_transpose, transpose};
use super::{chunks, depthwise, grain, winograd};
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

/// Channels a side from which 3×3 stride-1 layers take Winograd both ways (`Plan::is_winograd`).
const WINOGRAD_CHANNELS: usize = 32;
/// The input gradient also takes it with this many channels a side, up to `WINOGRAD_CHANNELS` out.
const WINOGRAD_GRAD_MIN: usize = 16;
/// The filter gradient takes it on maps of this many outputs or more (`Plan::winograd_filter`).
const WINOGRAD_FILTER_PIXELS: usize = 64;

/// Output maps at least this large get one GEMM per image written straight into NCHW (see `forward`).
const DIRECT_MIN_PIXELS: usize = 256;

struct Plan {
    n: usize,
    cout: usize,
    cg: usize,
    og: usize,
    geom: Geom,
    /// images per chunk, and whether chunks run side by side (`chunks::split`)
    nb: usize,
    side_by_side: bool,
}

impl Plan {
    fn new(x: &[usize], w: &[usize], cfg: ConvCfg) -> Self {
        let (&[n, c, h, wd], &[cout, cg, k, k2]) = (x, w) else { panic!("conv2d: x {x:?}, w {w:?} must be 4-d") };
        assert_eq!(k, k2, "conv2d: only square kernels");
        assert!(
            cfg.groups > 0 && c % cfg.groups == 0 && cout % cfg.groups == 0,
            "conv2d: groups {} must divide {c} and {cout}",
            cfg.groups
        );
        assert_eq!(cg, c / cfg.groups, "conv2d: weight {w:?} does not fit {c} input channels in {} groups", cfg.groups);
        let geom = Geom::new(c, h, wd, k, cfg.stride, cfg.pad);
        let (nb, side_by_side) = chunks::split(n, cg * k * k * geom.oh * geom.ow);
        Plan { n, cout, cg, og: cout / cfg.groups, geom, nb, side_by_side }
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
    fn is_depthwise(&self) -> bool {
        self.cg == 1 && self.og == 1
    }
    /// The Winograd layer (`winograd/`, tile size by `Kind::fewest_multiplies`) of a 3×3 stride-1
    /// convolution that takes it for the forward (`forward`) or the input gradient. Measured on 2
    /// cores with F(2×2) tiles, Winograd / im2col ms, forward then input gradient:
    /// - Both ways from `WINOGRAD_CHANNELS` a side: 32 → 32 at 32×32, batch 32: 1.8 / 2.0, 1.8 / 2.9.
    /// - The forward stays on im2col with 16 input channels, where the transforms outweigh the
    ///   multiplies saved (16 → 160: 4.7 / 3.7).
    /// - The input gradient reduces over the output channels. With 16–32 of them im2col's GEMM is
    ///   as thin as Winograd's, and col2im then folds 9·cin rows, so Winograd wins from 16 input
    ///   channels (16 → 16: 1.0 / 1.2; 16 → 32 at 14×14, batch 128: 1.2 / 2.0). From 64 output
    ///   channels im2col's GEMM is efficient and wins (16 → 64: 2.9 / 2.3; 16 → 160: 6.9 / 4.6).
    ///   Fewer than 16 output channels were not measured and stay on im2col.
    fn winograd(&self, forward: bool) -> Option<winograd::Layer> {
        let (g, cin, cout) = (self.geom, self.cg, self.cout);
        let both_ways = cin.min(cout) >= WINOGRAD_CHANNELS;
        let narrow_gradient =
            !forward && cin >= WINOGRAD_GRAD_MIN && (WINOGRAD_GRAD_MIN..=WINOGRAD_CHANNELS).contains(&cout);
        let kind = winograd::Kind::fewest_multiplies(g.oh, g.ow);
        (g.k == 3 && g.stride == 1 && g.pad <= 2 && self.groups() == 1 && (both_ways || narrow_gradient))
            .then_some(winograd::Layer { n: self.n, cin, cout, h: g.h, w: g.w, pad: g.pad, kind })
    }
    /// The Winograd layer of the filter gradient: the forward's, on maps of `WINOGRAD_FILTER_PIXELS`
    /// outputs or more. Its n² GEMMs reduce over tiles, so on small maps they are shallow and
    /// write n²/9 times the filter. ResNet-18 at batch 32, im2col / Winograd ms: 64 → 64 at 32×32
    /// 17.2 / 12.9, 128 → 128 at 16×16 14.5 / 9.9, 256 → 256 at 8×8 16.9 / 15.5, 512 → 512 at
    /// 4×4 (one F4 tile per image) 17.5 / 31.6.
    fn winograd_filter(&self) -> Option<winograd::Layer> {
        self.winograd(true).filter(|_| self.opix() >= WINOGRAD_FILTER_PIXELS)
    }
    /// Runs `f` with scratch for one chunk: the column matrix, and `cout·nb·opix` values for the
    /// GEMM output (forward), gy gathered (input gradient) or gyᵀ (filter gradient).
    fn with_scratch<R>(&self, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
        let cols = self.nb * self.opix();
        chunks::with_scratch(self.kdim() * cols, self.cout * cols, f)
    }
}

/// `[cout, nb*opix]` (GEMM layout) -> rows of `y[n0..n0+nb]` (NCHW), through the epilogue.
fn scatter(buf: &[f32], y: &mut [f32], cout: usize, opix: usize, nb: usize, epi: Epilogue) {
    y.par_chunks_mut(opix).enumerate().with_min_len(grain(opix)).for_each(|(i, dst)| {
        let (n, co) = (i / cout, i % cout);
        let src = &buf[co * nb * opix + n * opix..][..opix];
        if epi.is_some() {
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = epi.at(v, co));
        } else {
            dst.copy_from_slice(src);
        }
    });
}

/// Rows of `gy[n0..n0+nb]` (NCHW) -> `[cout, nb*opix]`.
fn gather(gy: &[f32], buf: &mut [f32], cout: usize, opix: usize, nb: usize) {
    buf[..cout * nb * opix].par_chunks_mut(opix).enumerate().with_min_len(grain(opix)).for_each(|(i, dst)| {
        let (co, n) = (i / nb, i % nb);
        dst.copy_from_slice(&gy[(n * cout + co) * opix..][..opix]);
    });
}

pub fn forward(x: &Tensor, w: &Arc<Tensor>, b: Option<&Tensor>, cfg: ConvCfg) -> Tensor {
    forward_fused(x, w, b, cfg, None, false)
}

/// `forward`, then an eval-mode BatchNorm (`bn`, CPU only) and (with `relu`) a ReLU, all in the
/// output pass.
pub fn forward_fused(
    x: &Tensor,
    w: &Arc<Tensor>,
    b: Option<&Tensor>,
    cfg: ConvCfg,
    bn: Option<&Affine>,
    relu: bool,
) -> Tensor {
    let p = Plan::new(x.shape(), w.shape(), cfg);
    crate::on_gpu!(x, |_g| {
        assert!(bn.is_none(), "conv2d: the fused BatchNorm epilogue runs on the CPU only");
        cuda::forward(x, w, b, cfg, relu)
    });
    let g = p.geom;
    let shape = [p.n, p.cout, g.oh, g.ow];
    let epi = Epilogue { bias: b.map(|b| b.data()), bn, relu };
    if let Some(l) = p.winograd(true) {
        return Tensor::written(&shape, |y| winograd::forward(x.data(), w, l, epi, y));
    }
    if p.is_depthwise() {
        let mut y = Tensor::zeros(&shape);
        depthwise::forward(x.data(), w.data(), &g, p.n, y.data_mut());
        if epi.is_some() {
            y.data_mut()
                .par_chunks_mut(p.opix())
                .enumerate()
                .with_min_len(grain(p.opix()))
                .for_each(|(i, d)| epi.plane(d, i % p.cout));
        }
        return y;
    }
    let (kd, opix, img) = (p.kdim(), p.opix(), g.c * g.h * g.w);
    let (xd, wd) = (x.data(), w.data());
    let par = !p.side_by_side;
    // Large maps: one GEMM per image computes yᵀ[pixels, cout] = colᵀ · Wᵀ straight into y (NCHW is
    // yᵀ column-major), with no scatter pass and a long, unpacked pixel dimension. Small maps keep
    // one GEMM per chunk, whose output is scattered: per-image GEMMs there are too small.
    let direct = opix >= DIRECT_MIN_PIXELS;
    // Every value of y is written: by the GEMMs (which do not read it) or by the scatter.
    Tensor::written(&shape, |y| {
        y.par_chunks_mut(p.nb * p.cout * opix).enumerate().for_each(|(ci, yc)| {
            p.with_scratch(|col, buf| {
                let (n0, nb) = (ci * p.nb, yc.len() / (p.cout * opix));
                let cols = nb * opix;
                for gi in 0..p.groups() {
                    im2col(&xd[n0 * img..], &g, gi * p.cg, p.cg, nb, col);
                    if direct {
                        let wt = Mat { data: &wd[gi * p.og * kd..][..p.og * kd], rs: 1, cs: kd };
                        for n in 0..nb {
                            let lhs = Mat { data: &col[n * opix..kd * cols], rs: 1, cs: cols };
                            let dst = &mut yc[(n * p.cout + gi * p.og) * opix..][..p.og * opix];
                            sgemm_strided(opix, p.og, kd, lhs, wt, dst, (1, opix), false, par);
                        }
                    } else {
                        let wg = Mat::rows(&wd[gi * p.og * kd..][..p.og * kd], kd);
                        sgemm(
                            p.og,
                            cols,
                            kd,
                            wg,
                            Mat::rows(&col[..kd * cols], cols),
                            &mut buf[gi * p.og * cols..],
                            cols,
                            false,
                            par,
                        );
                    }
                }
                if direct {
                    yc.chunks_mut(opix).enumerate().for_each(|(i, d)| epi.plane(d, i % p.cout));
                } else {
                    scatter(&buf[..p.cout * cols], yc, p.cout, opix, nb, epi);
                }
            })
        })
    })
}

/// Gradients of input and weight (each only when asked for) from `gy`.
pub fn backward(
    x: &Tensor,
    w: &Arc<Tensor>,
    gy: &Tensor,
    cfg: ConvCfg,
    need_x: bool,
    need_w: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    let p = Plan::new(x.shape(), w.shape(), cfg);
    crate::on_gpu!(x, |_g| cuda::backward(x, w, gy, cfg, need_x, need_w));
    let g = p.geom;
    if p.is_depthwise() {
        let dx = need_x.then(|| {
            let mut dx = Tensor::zeros(x.shape());
            depthwise::backward_data(gy.data(), w.data(), &g, p.n, dx.data_mut());
            dx
        });
        let dw = need_w.then(|| {
            let mut dw = Tensor::zeros(w.shape());
            depthwise::backward_filter(gy.data(), x.data(), &g, p.n, dw.data_mut());
            dw
        });
        return (dx, dw);
    }
    let dx = need_x.then(|| backward_data(&p, w, gy, x.shape()));
    let dw = need_w.then(|| backward_filter(&p, x, w, gy));
    (dx, dw)
}

/// dx by im2col GEMMs (or Winograd where the plan says so): each chunk of images writes its own
/// slice of dx.
fn backward_data(p: &Plan, w: &Arc<Tensor>, gy: &Tensor, x_shape: &[usize]) -> Tensor {
    let g = p.geom;
    let (kd, opix, img) = (p.kdim(), p.opix(), g.c * g.h * g.w);
    let (wd, gyd) = (w.data(), gy.data());
    let par = !p.side_by_side;
    let chunk_out = p.nb * p.cout * opix;
    let direct = opix >= DIRECT_MIN_PIXELS;
    if let Some(l) = p.winograd(false) {
        return Tensor::written(x_shape, |dx| winograd::backward_data(gyd, w, l, dx));
    }
    let mut dx = Tensor::zeros(x_shape);
    dx.data_mut().par_chunks_mut(p.nb * img).enumerate().for_each(|(ci, dxc)| {
        p.with_scratch(|col, buf| {
            let nb = dxc.len() / img;
            let cols = nb * opix;
            let gyc = &gyd[ci * chunk_out..][..nb * p.cout * opix];
            if !direct {
                gather(gyc, buf, p.cout, opix, nb);
            }
            for gi in 0..p.groups() {
                // dcol[kd, cols] = W_g^T[kd, og] · gy_g[og, cols], folded back into dx; large
                // maps read each image's gy rows in place (one GEMM per image, as in forward)
                let wg = Mat::t(&wd[gi * p.og * kd..][..p.og * kd], kd);
                if direct {
                    for n in 0..nb {
                        let gyn = Mat::rows(&gyc[(n * p.cout + gi * p.og) * opix..][..p.og * opix], opix);
                        sgemm(kd, opix, p.og, wg, gyn, &mut col[n * opix..kd * cols], cols, false, par);
                    }
                } else {
                    let gyg = Mat::rows(&buf[gi * p.og * cols..][..p.og * cols], cols);
                    sgemm(kd, cols, p.og, wg, gyg, col, cols, false, par);
                }
                col2im(col, &g, gi * p.cg, p.cg, nb, dxc);
            }
        })
    });
    dx
}

/// dW by Winograd where `Plan::winograd_filter` says so, else by im2col GEMMs: each chunk accumulates a
/// partial filter gradient, transposed ([group][kd][og]); the partials are summed, then
/// transposed into place.
fn backward_filter(p: &Plan, x: &Tensor, w: &Arc<Tensor>, gy: &Tensor) -> Tensor {
    if let Some(l) = p.winograd_filter() {
        return Tensor::written(w.shape(), |dw| winograd::backward_filter(x.data(), gy.data(), l, dw));
    }
    let g = p.geom;
    let (kd, opix, img) = (p.kdim(), p.opix(), g.c * g.h * g.w);
    let (xd, gyd) = (x.data(), gy.data());
    let par = !p.side_by_side;
    let partial = |n0: usize| {
        let nb = p.nb.min(p.n - n0);
        let cols = nb * opix;
        let mut dwt = vec![0.0; w.numel()];
        p.with_scratch(|col, buf| {
            // gy and col both lie with the pixels (the GEMM's reduction) contiguous. The GEMM
            // crate wants its left operand column-major and repacks one that is not value by
            // value; given a row-major destination it swaps the operands, so col was the one
            // repacked (3-5x oneDNN's time on ResNet-18's 64-channel layer). So gy, 1/k² of
            // col's size, is transposed to [cols, cout], and the destination is dWᵀ
            // (column-major), which the crate takes as it is.
            for n in 0..nb {
                let (s, d) =
                    (&gyd[(n0 + n) * p.cout * opix..][..p.cout * opix], &mut buf[n * opix * p.cout..][..opix * p.cout]);
                if par { par_transpose(s, p.cout, d) } else { transpose(s, p.cout, d) }
            }
            for gi in 0..p.groups() {
                // dW_g[og, kd] += gy_g[og, cols] · colᵀ[cols, kd], into dWᵀ
                im2col(&xd[n0 * img..], &g, gi * p.cg, p.cg, nb, col);
                let gyt = Mat { data: &buf[gi * p.og..p.cout * cols], rs: 1, cs: p.cout };
                let colt = Mat { data: &col[..kd * cols], rs: 1, cs: cols };
                sgemm_strided(p.og, kd, cols, gyt, colt, &mut dwt[gi * p.og * kd..][..p.og * kd], (1, p.og), true, par);
            }
        });
        dwt
    };
    let sum = chunks::summed(p.n, p.nb, w.numel(), partial);
    let per_group = p.og * kd;
    Tensor::written(w.shape(), |dw| {
        dw.chunks_mut(per_group).zip(sum.chunks(per_group)).for_each(|(d, s)| par_transpose(s, kd, d))
    })
}

/// Bias gradient: the sum of `gy` over images and pixels.
pub fn bias_grad(gy: &Tensor) -> Tensor {
    let (n, c, h, w) = gy.dims4();
    crate::on_gpu!(gy, |g| {
        let mut gb = Tensor::zeros_on(&[c], &gy.device());
        let (ni, ci, hw) = (n as i32, c as i32, (h * w) as i32);
        crate::cuda::kernels::bias_grad_planes(&g, g.per_block(c), gy.cu(), gb.cu_mut(), ni, ci, hw);
        gb
    });
    let sums: Vec<f32> = (0..c)
        .into_par_iter()
        .map(|co| {
            (0..n)
                .map(|i| gy.data()[(i * c + co) * h * w..][..h * w].iter().map(|&v| v as f64).sum::<f64>())
                .sum::<f64>() as f32
        })
        .collect();
    Tensor::from_vec(&[c], sums)
}

/// cuDNN for every convolution, grouped and depthwise included (`cuda::ConvPlan`).
#[cfg(feature = "cuda")]
mod cuda {
    use super::ConvCfg;
    use crate::tensor::Tensor;

    fn four(s: &[usize]) -> [usize; 4] {
        s.try_into().expect("conv2d: 4-d shapes")
    }

    /// cuDNN's convolution, then the bias and the ReLU in one pass (`kernels/conv2d.cu`).
    pub fn forward(x: &Tensor, w: &Tensor, b: Option<&Tensor>, cfg: ConvCfg, relu: bool) -> Tensor {
        let g = x.gpu().unwrap().clone();
        let p = g.conv_plan(four(x.shape()), four(w.shape()), cfg.stride, cfg.pad, cfg.groups);
        let mut y = g.empty(p.out.iter().product());
        g.conv_forward(&p, x.cu(), w.cu(), &mut y);
        let numel = p.out.iter().product::<usize>();
        let (c, hw, total, r) = (p.out[1] as i32, (p.out[2] * p.out[3]) as i32, numel as i32, relu as i32);
        match b {
            Some(b) => crate::cuda::kernels::bias_act_planes(&g, g.grid(numel), &mut y, b.cu(), c, hw, total, r),
            None if relu => crate::cuda::kernels::relu_in_place(&g, g.grid(numel), &mut y, total),
            None => {}
        }
        Tensor::from_cuda(&g, &p.out, y)
    }

    pub fn backward(
        x: &Tensor,
        w: &Tensor,
        gy: &Tensor,
        cfg: ConvCfg,
        need_x: bool,
        need_w: bool,
    ) -> (Option<Tensor>, Option<Tensor>) {
        let g = x.gpu().unwrap().clone();
        let p = g.conv_plan(four(x.shape()), four(w.shape()), cfg.stride, cfg.pad, cfg.groups);
        let dx = need_x.then(|| {
            let mut dx = g.empty(x.numel());
            g.conv_backward_data(&p, gy.cu(), w.cu(), &mut dx);
            Tensor::from_cuda(&g, x.shape(), dx)
        });
        let dw = need_w.then(|| {
            let mut dw = g.empty(w.numel());
            g.conv_backward_filter(&p, x.cu(), gy.cu(), &mut dw);
            Tensor::from_cuda(&g, w.shape(), dw)
        });
        (dx, dw)
    }
}

struct ConvNode {
    x: Arc<Tensor>,
    w: Param,
    b: Option<Param>,
    cfg: ConvCfg,
    /// The output of a fused ReLU: its backward first masks the gradient with it.
    relu_out: Option<Arc<Tensor>>,
    /// A fused BatchNorm: its backward scales the gradient by `k` per channel.
    bn: Option<Arc<Affine>>,
}

impl Backward for ConvNode {
    fn backward(&self, gy: &Tensor, need: &[bool], params: bool) -> Grads {
        let through = through_epilogue(self.relu_out.as_deref(), self.bn.as_deref(), gy);
        let gy = through.as_ref().unwrap_or(gy);
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

/// The gradient at the convolution's raw output from the one at the epilogue's: masked where the
/// ReLU cut, then scaled by the BatchNorm's k, in one pass (None when there is no epilogue).
fn through_epilogue(relu_out: Option<&Tensor>, bn: Option<&Affine>, gy: &Tensor) -> Option<Tensor> {
    let Some(bn) = bn else { return relu_out.map(|y| super::elementwise::relu_backward(y, gy)) };
    let (_, c, h, w) = gy.dims4();
    let (hw, yd) = (h * w, relu_out.map(Tensor::data));
    Some(Tensor::written(gy.shape(), |gx| {
        gx.par_chunks_mut(hw).enumerate().with_min_len(grain(hw)).for_each(|(i, gp)| {
            let (k, g) = (bn.k[i % c], &gy.data()[i * hw..][..hw]);
            match yd {
                // the arithmetic of the ReLU's backward, then of BatchNorm's eval-mode backward
                Some(y) => {
                    let y = &y[i * hw..][..hw];
                    gp.iter_mut().zip(g).zip(y).for_each(|((d, &g), &y)| *d = k * if y <= 0.0 { 0.0 } else { g })
                }
                None => gp.iter_mut().zip(g).for_each(|(d, &g)| *d = k * g),
            }
        })
    }))
}

/// Convolution as a recorded op.
pub fn conv2d(tape: &mut Tape, x: &Var, w: &Param, b: Option<&Param>, cfg: ConvCfg) -> Var {
    conv2d_fused(tape, x, w, b, cfg, None, false)
}

/// Convolution, then an eval-mode BatchNorm (`bn`, CPU) and (with `relu`) a ReLU fused into its
/// output pass, as a recorded op.
pub fn conv2d_fused(
    tape: &mut Tape,
    x: &Var,
    w: &Param,
    b: Option<&Param>,
    cfg: ConvCfg,
    bn: Option<Arc<Affine>>,
    relu: bool,
) -> Var {
    let y = forward_fused(&x.val, &w.val, b.map(|b| &*b.val), cfg, bn.as_deref(), relu);
    let (xs, w, b) = (x.val.clone(), w.clone(), b.cloned());
    let node = |y: &Arc<Tensor>| ConvNode { x: xs, w, b, cfg, relu_out: relu.then(|| y.clone()), bn };
    tape.record(y, &[x], true, node)
}
