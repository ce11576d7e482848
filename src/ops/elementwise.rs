//! Pointwise ops: ReLU and the residual add.
//! Tests: `tests/gradcheck.rs` (relu_and_add), CPU against GPU in `tests/cuda_parity.rs`; kernels in
//! `kernels/elementwise.cu`.
use crate::tape::{Backward, Grads, Tape, Var};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

const CHUNK: usize = 1 << 14;

pub fn relu_forward(x: &Tensor) -> Tensor {
    #[cfg(feature = "cuda")]
    if x.gpu().is_some() {
        return cuda::relu_fwd(x);
    }
    // NaN stays NaN (as in PyTorch): a diverged run must show up in its loss.
    let y = x.data().par_iter().with_min_len(CHUNK).map(|&v| if v < 0.0 { 0.0 } else { v }).collect();
    Tensor::from_vec(x.shape(), y)
}

/// `gy` where the ReLU's output was positive, 0 elsewhere (PyTorch's convention at 0).
pub fn relu_backward(y: &Tensor, gy: &Tensor) -> Tensor {
    #[cfg(feature = "cuda")]
    if y.gpu().is_some() {
        return cuda::relu_bwd(y, gy);
    }
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
    #[cfg(feature = "cuda")]
    if a.val.gpu().is_some() {
        return tape.record(cuda::add(&a.val, &b.val), &[a, b], false, |_| AddNode);
    }
    let y = a.val.data().par_iter().zip(b.val.data().par_iter()).with_min_len(CHUNK).map(|(x, y)| x + y).collect();
    tape.record(Tensor::from_vec(a.shape(), y), &[a, b], false, |_| AddNode)
}

#[cfg(feature = "cuda")]
mod cuda {
    use crate::launch;
    use crate::tensor::Tensor;

    pub fn relu_fwd(x: &Tensor) -> Tensor {
        let (g, n) = (x.gpu().unwrap().clone(), x.numel() as i32);
        let mut y = g.empty(x.numel());
        launch!(g, "relu_fwd", g.grid(x.numel()), x.cu(), &mut y, &n);
        Tensor::from_cuda(&g, x.shape(), y)
    }

    pub fn relu_bwd(y: &Tensor, gy: &Tensor) -> Tensor {
        let (g, n) = (y.gpu().unwrap().clone(), y.numel() as i32);
        let mut gx = g.empty(y.numel());
        launch!(g, "relu_bwd", g.grid(y.numel()), y.cu(), gy.cu(), &mut gx, &n);
        Tensor::from_cuda(&g, y.shape(), gx)
    }

    pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
        let (g, n) = (a.gpu().unwrap().clone(), a.numel() as i32);
        let mut y = g.empty(a.numel());
        launch!(g, "add_fwd", g.grid(a.numel()), a.cu(), b.cu(), &mut y, &n);
        Tensor::from_cuda(&g, a.shape(), y)
    }
}
