//! Pointwise ops: ReLU, Swish (x·σ(x), the activation of many RobustBench teachers), the residual
//! add, and the per-channel input normalisation (x − μ_c) / σ_c some models run first.
//! Tests: `tests/gradcheck.rs` (relu_and_add), CPU against GPU in `tests/cuda_parity.rs`; kernels in
//! `kernels/elementwise.cu`.
use crate::tape::{Backward, Grads, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

const CHUNK: usize = 1 << 14;

/// A pointwise activation, written once as its value and its slope; the CPU loops, the GPU
/// launches and the tape node follow from it. ReLU's slope reads its output, Swish's its input.
#[derive(Clone, Copy)]
enum Unary {
    Relu,
    Swish,
}

/// max(x, 0); NaN stays NaN (as in PyTorch): a diverged run must show up in its loss.
fn relu_value(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// `g` where the ReLU's output `y` was positive, 0 elsewhere (PyTorch's convention at 0); a select,
/// not a conditional store, so the loop vectorises.
fn relu_slope(y: f32, g: f32) -> f32 {
    if y <= 0.0 { 0.0 } else { g }
}

/// σ(x) in f64: Swish's value and slope are rounded once from it (the fixtures' reference is f64).
fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-(x as f64)).exp())
}

/// x·σ(x).
fn swish_value(v: f32) -> f32 {
    (v as f64 * sigmoid(v)) as f32
}

/// g · σ(x)(1 + x(1 − σ(x))), the slope of x·σ(x).
fn swish_slope(x: f32, g: f32) -> f32 {
    let s = sigmoid(x);
    (g as f64 * (s * (1.0 + x as f64 * (1.0 - s)))) as f32
}

/// `f` of every value (the op is monomorphised per activation, so each loop vectorises alone).
fn map(x: &Tensor, f: impl Fn(f32) -> f32 + Sync) -> Tensor {
    Tensor::from_vec(x.shape(), x.data().par_iter().with_min_len(CHUNK).map(|&v| f(v)).collect())
}

/// `f(saved, gy)` of every pair of values.
fn map2(saved: &Tensor, gy: &Tensor, f: impl Fn(f32, f32) -> f32 + Sync) -> Tensor {
    let gx = saved.data().par_iter().zip(gy.data().par_iter()).with_min_len(CHUNK).map(|(&s, &g)| f(s, g)).collect();
    Tensor::from_vec(saved.shape(), gx)
}

impl Unary {
    fn forward(self, x: &Tensor) -> Tensor {
        crate::on_gpu!(x, |_g| cuda::unary_fwd(self, x));
        match self {
            Unary::Relu => map(x, relu_value),
            Unary::Swish => map(x, swish_value),
        }
    }

    /// The input gradient from what the slope reads (the output for ReLU, the input for Swish).
    fn backward(self, saved: &Tensor, gy: &Tensor) -> Tensor {
        crate::on_gpu!(saved, |_g| cuda::unary_bwd(self, saved, gy));
        match self {
            Unary::Relu => map2(saved, gy, relu_slope),
            Unary::Swish => map2(saved, gy, swish_slope),
        }
    }

    fn record(self, tape: &mut Tape, x: &Var) -> Var {
        tape.record(self.forward(&x.val), &[x], false, |y| {
            UnaryNode(self, if matches!(self, Unary::Relu) { y.clone() } else { x.val.clone() })
        })
    }
}

struct UnaryNode(Unary, Arc<Tensor>);

impl Backward for UnaryNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(self.0.backward(&self.1, gy))], params: Vec::new() }
    }
}

pub fn relu_forward(x: &Tensor) -> Tensor {
    Unary::Relu.forward(x)
}

/// `gy` where the ReLU's output `y` was positive, 0 elsewhere.
pub fn relu_backward(y: &Tensor, gy: &Tensor) -> Tensor {
    Unary::Relu.backward(y, gy)
}

pub fn relu(tape: &mut Tape, x: &Var) -> Var {
    Unary::Relu.record(tape, x)
}

pub fn swish(tape: &mut Tape, x: &Var) -> Var {
    Unary::Swish.record(tape, x)
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
    use super::Unary;
    use crate::cuda::kernels;
    use crate::tensor::Tensor;

    pub fn unary_fwd(op: Unary, x: &Tensor) -> Tensor {
        let (g, n) = (x.gpu().unwrap().clone(), x.numel() as i32);
        let mut y = g.empty(x.numel());
        let launch = match op {
            Unary::Relu => kernels::relu_fwd,
            Unary::Swish => kernels::swish_fwd,
        };
        launch(&g, g.grid(x.numel()), x.cu(), &mut y, n);
        Tensor::from_cuda(&g, x.shape(), y)
    }

    pub fn unary_bwd(op: Unary, saved: &Tensor, gy: &Tensor) -> Tensor {
        let (g, n) = (saved.gpu().unwrap().clone(), saved.numel() as i32);
        let mut gx = g.empty(saved.numel());
        let launch = match op {
            Unary::Relu => kernels::relu_bwd,
            Unary::Swish => kernels::swish_bwd,
        };
        launch(&g, g.grid(saved.numel()), saved.cu(), gy.cu(), &mut gx, n);
        Tensor::from_cuda(&g, saved.shape(), gx)
    }

    pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
        let (g, n) = (a.gpu().unwrap().clone(), a.numel() as i32);
        let mut y = g.empty(a.numel());
        crate::cuda::kernels::add_fwd(&g, g.grid(a.numel()), a.cu(), b.cu(), &mut y, n);
        Tensor::from_cuda(&g, a.shape(), y)
    }
}
