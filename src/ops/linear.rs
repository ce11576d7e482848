//! Fully connected layer y = x W^T + b (W is [out, in] as in PyTorch). An input `[n, ...]` is read
//! as `[n, features]` in place, so the flatten before a classifier copies nothing, and the input
//! gradient takes the input's shape.
//! Tests: the fixtures' pool_linear case (`tests/parity.rs`), `tests/gradcheck.rs`, CPU against GPU
//! (cuBLAS) in `tests/cuda_parity.rs`; the bias kernels in `kernels/linear.cu`.
use super::gemm::{Mat, sgemm};
use crate::tape::{Backward, Grads, Param, Tape, Var};
use crate::tensor::Tensor;
use std::sync::Arc;

/// `x` as `[n, features]`: its first dimension and the product of the others.
fn rows(x: &Tensor) -> (usize, usize) {
    let n = x.shape()[0];
    (n, x.numel() / n.max(1))
}

pub fn forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let ((n, fin), (fout, fin2)) = (rows(x), w.dims2());
    assert_eq!(fin, fin2, "linear: input has {fin} features, weight expects {fin2}");
    let mut y = bias_rows(b, n);
    // y [n, fout] += x [n, fin] · Wᵀ
    matmul(&mut y, x, false, w, true, (n, fout, fin), true);
    y
}

/// (dx, dW, db), the first only when `need_x`, the others only when `need_w`.
pub fn backward(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    need_x: bool,
    need_w: bool,
) -> (Option<Tensor>, Option<(Tensor, Tensor)>) {
    let ((n, fin), (fout, _)) = (rows(x), w.dims2());
    let dx = need_x.then(|| {
        // dx [n, fin] = gy [n, fout] · W [fout, fin], in x's shape
        let mut dx = Tensor::zeros_on(x.shape(), &x.device());
        matmul(&mut dx, gy, false, w, false, (n, fin, fout), false);
        dx
    });
    let dwb = need_w.then(|| {
        // dW [fout, fin] = gyᵀ [fout, n] · x [n, fin]
        let mut dw = Tensor::zeros_on(&[fout, fin], &x.device());
        matmul(&mut dw, gy, true, x, false, (fout, fin, n), false);
        (dw, column_sums(gy))
    });
    (dx, dwb)
}

/// `c` [m, n] = (or += with `acc`) op(a) · op(b) on row-major tensors, on their device, where
/// op(a) is [m, k] (`a` stored [k, m] when `ta`) and op(b) is [k, n] (`b` stored [n, k] when `tb`).
/// `c` starts as zeros or, with `acc`, as what it adds to.
fn matmul(c: &mut Tensor, a: &Tensor, ta: bool, b: &Tensor, tb: bool, (m, n, k): (usize, usize, usize), acc: bool) {
    crate::on_gpu!(a, |_g| cuda::matmul(c, a, ta, b, tb, (m, n, k), acc));
    let a = if ta { Mat::t(a.data(), m) } else { Mat::rows(a.data(), k) };
    let b = if tb { Mat::t(b.data(), k) } else { Mat::rows(b.data(), n) };
    sgemm(m, n, k, a, b, c.data_mut(), n, acc, true);
}

/// `n` rows, each the bias `b`.
fn bias_rows(b: &Tensor, n: usize) -> Tensor {
    crate::on_gpu!(b, |g| {
        let fout = b.numel();
        let mut y = g.empty(n * fout);
        crate::cuda::kernels::fill_rows(&g, g.grid(n * fout), &mut y, b.cu(), n as i32, fout as i32);
        Tensor::from_cuda(&g, &[n, fout], y)
    });
    Tensor::from_vec(&[n, b.numel()], (0..n).flat_map(|_| b.data().iter().copied()).collect())
}

/// The sum of each column of `g` [rows, cols], in f64 (the bias gradient).
fn column_sums(g: &Tensor) -> Tensor {
    let (rows, cols) = g.dims2();
    crate::on_gpu!(g, |gpu| {
        let mut db = gpu.empty(cols);
        crate::cuda::kernels::col_sums(&gpu, gpu.grid(cols), g.cu(), &mut db, rows as i32, cols as i32);
        Tensor::from_cuda(&gpu, &[cols], db)
    });
    let d = g.data();
    Tensor::from_vec(
        &[cols],
        (0..cols).map(|o| (0..rows).map(|i| d[i * cols + o] as f64).sum::<f64>() as f32).collect(),
    )
}

struct LinearNode {
    x: Arc<Tensor>,
    w: Param,
    b_id: usize,
}

impl Backward for LinearNode {
    fn backward(&self, gy: &Tensor, need: &[bool], params: bool) -> Grads {
        let (dx, dwb) = backward(&self.x, &self.w.val, gy, need[0], params);
        let params = dwb.map(|(dw, db)| vec![(self.w.id, dw), (self.b_id, db)]).unwrap_or_default();
        Grads { inputs: vec![dx], params }
    }
}

pub fn linear(tape: &mut Tape, x: &Var, w: &Param, b: &Param) -> Var {
    let y = forward(&x.val, &w.val, &b.val);
    tape.record(y, &[x], true, |_| LinearNode { x: x.val.clone(), w: w.clone(), b_id: b.id })
}

/// cuBLAS is column-major: a row-major [r, c] matrix is its transpose there, so c = op(a)·op(b)
/// becomes cᵀ = op(b)ᵀ·op(a)ᵀ.
#[cfg(feature = "cuda")]
mod cuda {
    use crate::tensor::Tensor;
    use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N as N, CUBLAS_OP_T as T};
    use cudarc::cublas::{Gemm, GemmConfig};

    pub fn matmul(
        c: &mut Tensor,
        a: &Tensor,
        ta: bool,
        b: &Tensor,
        tb: bool,
        (m, n, k): (usize, usize, usize),
        acc: bool,
    ) {
        let g = a.gpu().unwrap().clone();
        // cuBLAS works on whatever context is current on this thread
        g.stream.context().bind_to_thread().unwrap_or_else(|e| panic!("cuda:{}: {e}", g.ordinal));
        let op = |t| if t { T } else { N };
        let cfg = GemmConfig {
            transa: op(tb),
            transb: op(ta),
            m: n as i32,
            n: m as i32,
            k: k as i32,
            alpha: 1.0f32,
            lda: if tb { k } else { n } as i32,
            ldb: if ta { m } else { k } as i32,
            // k = 0 leaves C as it is (reference BLAS): zeros from the caller, or the sum so far
            beta: if acc { 1.0 } else { 0.0 },
            ldc: n as i32,
        };
        g.launched();
        // SAFETY: the shapes were checked against the buffers by the callers.
        unsafe { g.blas.gemm(cfg, b.cu(), a.cu(), c.cu_mut()) }.unwrap_or_else(|e| panic!("cuBLAS sgemm failed: {e}"));
    }
}
