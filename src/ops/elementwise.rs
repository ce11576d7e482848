//! Pointwise ops: ReLU, Swish (x·σ(x), the activation of many RobustBench teachers), the residual
//! add, and the per-channel input normalisation (x − μ_c) / σ_c some models run first.
//! Tests: `tests/gradcheck.rs` (relu_and_add), CPU against GPU in `tests/cuda_parity.rs`; kernels in
//! `kernels/elementwise.cu`.
use crate::tape::{Backward, Grads, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

const CHUNK: usize = 1 << 14;

pub fn relu_forward(x: &Tensor) -> Tensor {
    crate::on_gpu!(x, |_g| cuda::relu_fwd(x));
    // NaN stays NaN (as in PyTorch): a diverged run must show up in its loss.
    let y = x.data().par_iter().with_min_len(CHUNK).map(|&v| if v < 0.0 { 0.0 } else { v }).collect();
    Tensor::from_vec(x.shape(), y)
}

/// `gy` where the ReLU's output was positive, 0 elsewhere (PyTorch's convention at 0).
pub fn relu_backward(y: &Tensor, gy: &Tensor) -> Tensor {
    crate::on_gpu!(y, |_g| cuda::relu_bwd(y, gy));
    // A select, not a conditional store, so it vectorises.
    let gx = y
        .data()
        .par_iter()
        .zip(gy.data().par_iter())
        .with_min_len(CHUNK)
        .map(|(&y, &g)| if y <= 0.0 { 0.0 } else { g })
        .collect();
    Tensor::from_vec(y.shape(), gx)
}

struct ReluNode(Arc<Tensor>);

impl Backward for ReluNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(relu_backward(&self.0, gy))], params: Vec::new() }
    }
}

pub fn relu(tape: &mut Tape, x: &Var) -> Var {
    tape.record(relu_forward(&x.val), &[x], false, |y| ReluNode(y.clone()))
}

struct AddNode;

impl Backward for AddNode {
    fn backward(&self, gy: &Tensor, need: &[bool], _: bool) -> Grads {
        Grads { inputs: need.iter().map(|&n| n.then(|| gy.clone())).collect(), params: Vec::new() }
    }
}

pub fn add(tape: &mut Tape, a: &Var, b: &Var) -> Var {
    assert_eq!(a.shape(), b.shape(), "add: shapes differ");
    crate::on_gpu!(a.val, |_g| tape.record(cuda::add(&a.val, &b.val), &[a, b], false, |_| AddNode));
    let y = a.val.data().par_iter().zip(b.val.data().par_iter()).with_min_len(CHUNK).map(|(x, y)| x + y).collect();
    tape.record(Tensor::from_vec(a.shape(), y), &[a, b], false, |_| AddNode)
}

/// σ(x) in f64: the swish value and slope are rounded once from it (the fixtures' reference is f64).
fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-(x as f64)).exp())
}

pub fn swish_forward(x: &Tensor) -> Tensor {
    crate::on_gpu!(x, |_g| cuda::swish_fwd(x));
    let y = x.data().par_iter().with_min_len(CHUNK).map(|&v| (v as f64 * sigmoid(v)) as f32).collect();
    Tensor::from_vec(x.shape(), y)
}

/// gy · σ(x)(1 + x(1 − σ(x))), the slope of x·σ(x).
pub fn swish_backward(x: &Tensor, gy: &Tensor) -> Tensor {
    crate::on_gpu!(x, |_g| cuda::swish_bwd(x, gy));
    let slope = |v: f32| {
        let s = sigmoid(v);
        s * (1.0 + v as f64 * (1.0 - s))
    };
    let gx = x
        .data()
        .par_iter()
        .zip(gy.data().par_iter())
        .with_min_len(CHUNK)
        .map(|(&v, &g)| (g as f64 * slope(v)) as f32)
        .collect();
    Tensor::from_vec(x.shape(), gx)
}

struct SwishNode(Arc<Tensor>);

impl Backward for SwishNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(swish_backward(&self.0, gy))], params: Vec::new() }
    }
}

pub fn swish(tape: &mut Tape, x: &Var) -> Var {
    tape.record(swish_forward(&x.val), &[x], false, |_| SwishNode(x.val.clone()))
}

/// Per-channel constants of an input normalisation.
#[derive(Clone, Debug)]
pub struct Standardize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

struct StandardizeNode(Tensor);

impl Backward for StandardizeNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(per_channel(gy, &self.0, None))], params: Vec::new() }
    }
}

/// (x − mean_c) / std_c, as PyTorch computes it (a subtraction, then a division, in f32); its input
/// gradient is gy / std_c.
pub fn standardize(tape: &mut Tape, x: &Var, s: &Standardize) -> Var {
    let dev = x.val.device();
    let (mean, std) = (
        Tensor::from_vec(&[s.mean.len()], s.mean.clone()).into_device(&dev),
        Tensor::from_vec(&[s.std.len()], s.std.clone()).into_device(&dev),
    );
    let y = per_channel(&x.val, &std, Some(&mean));
    tape.record(y, &[x], false, |_| StandardizeNode(std))
}

/// (x − sub_c) / div_c per channel of an NCHW tensor (no subtraction when `sub` is None).
fn per_channel(x: &Tensor, div: &Tensor, sub: Option<&Tensor>) -> Tensor {
    let (_, c, h, w) = x.dims4();
    assert!(
        div.numel() == c && sub.is_none_or(|s| s.numel() == c),
        "standardize: {} channels, constants for {}",
        c,
        div.numel()
    );
    crate::on_gpu!(x, |g| {
        let (ci, hw, n, has) = (c as i32, (h * w) as i32, x.numel() as i32, sub.is_some() as i32);
        let mut y = g.empty(x.numel());
        let zero = g.zeros::<f32>(1);
        crate::cuda::kernels::standardize(
            &g,
            g.grid(x.numel()),
            x.cu(),
            sub.map_or(&zero, |s| s.cu()),
            div.cu(),
            &mut y,
            ci,
            hw,
            n,
            has,
        );
        Tensor::from_cuda(&g, x.shape(), y)
    });
    let hw = h * w;
    Tensor::written(x.shape(), |y| {
        y.par_chunks_mut(hw).zip(x.data().par_chunks(hw)).enumerate().with_min_len(super::grain(hw)).for_each(
            |(i, (yp, xp))| {
                let (m, d) = (sub.map_or(0.0, |s| s.data()[i % c]), div.data()[i % c]);
                match sub {
                    Some(_) => yp.iter_mut().zip(xp).for_each(|(o, &v)| *o = (v - m) / d),
                    None => yp.iter_mut().zip(xp).for_each(|(o, &v)| *o = v / d),
                }
            },
        )
    })
}

#[cfg(feature = "cuda")]
mod cuda {
    use crate::tensor::Tensor;

    pub fn relu_fwd(x: &Tensor) -> Tensor {
        let (g, n) = (x.gpu().unwrap().clone(), x.numel() as i32);
        let mut y = g.empty(x.numel());
        crate::cuda::kernels::relu_fwd(&g, g.grid(x.numel()), x.cu(), &mut y, n);
        Tensor::from_cuda(&g, x.shape(), y)
    }

    pub fn relu_bwd(y: &Tensor, gy: &Tensor) -> Tensor {
        let (g, n) = (y.gpu().unwrap().clone(), y.numel() as i32);
        let mut gx = g.empty(y.numel());
        crate::cuda::kernels::relu_bwd(&g, g.grid(y.numel()), y.cu(), gy.cu(), &mut gx, n);
        Tensor::from_cuda(&g, y.shape(), gx)
    }

    pub fn swish_fwd(x: &Tensor) -> Tensor {
        let (g, n) = (x.gpu().unwrap().clone(), x.numel() as i32);
        let mut y = g.empty(x.numel());
        crate::cuda::kernels::swish_fwd(&g, g.grid(x.numel()), x.cu(), &mut y, n);
        Tensor::from_cuda(&g, x.shape(), y)
    }

    pub fn swish_bwd(x: &Tensor, gy: &Tensor) -> Tensor {
        let (g, n) = (x.gpu().unwrap().clone(), x.numel() as i32);
        let mut gx = g.empty(x.numel());
        crate::cuda::kernels::swish_bwd(&g, g.grid(x.numel()), x.cu(), gy.cu(), &mut gx, n);
        Tensor::from_cuda(&g, x.shape(), gx)
    }

    pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
        let (g, n) = (a.gpu().unwrap().clone(), a.numel() as i32);
        let mut y = g.empty(a.numel());
        crate::cuda::kernels::add_fwd(&g, g.grid(a.numel()), a.cu(), b.cu(), &mut y, n);
        Tensor::from_cuda(&g, a.shape(), y)
    }
}
