//! Fully connected layer y = x W^T + b (W is [out, in] as in PyTorch), and flatten.
//! Tests: the fixtures' pool_linear case (`tests/parity.rs`), `tests/gradcheck.rs`, CPU against GPU
//! (cuBLAS) in `tests/cuda_parity.rs`; the bias kernels in `kernels/linear.cu`.
use super::gemm::{Mat, sgemm};
use crate::tape::{Backward, Grads, Param, Tape, Var};
use crate::tensor::Tensor;
use std::sync::Arc;

pub fn forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let ((n, fin), (fout, fin2)) = (x.dims2(), w.dims2());
    assert_eq!(fin, fin2, "linear: input has {fin} features, weight expects {fin2}");
    crate::on_gpu!(x, |_g| cuda::forward(x, w, b));
    let mut y: Vec<f32> = (0..n).flat_map(|_| b.data().iter().copied()).collect();
    sgemm(n, fout, fin, Mat::rows(x.data(), fin), Mat::t(w.data(), fin), &mut y, fout, true, true);
    Tensor::from_vec(&[n, fout], y)
}

/// (dx, dW, db), the first only when `need_x`, the others only when `need_w`.
pub fn backward(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    need_x: bool,
    need_w: bool,
) -> (Option<Tensor>, Option<(Tensor, Tensor)>) {
    crate::on_gpu!(x, |_g| cuda::backward(x, w, gy, need_x, need_w));
    let ((n, fin), (fout, _)) = (x.dims2(), w.dims2());
    let dx = need_x.then(|| {
        let mut dx = Tensor::zeros(&[n, fin]);
        sgemm(n, fin, fout, Mat::rows(gy.data(), fout), Mat::rows(w.data(), fin), dx.data_mut(), fin, false, true);
        dx
    });
    let dwb = need_w.then(|| {
        let mut dw = Tensor::zeros(&[fout, fin]);
        sgemm(fout, fin, n, Mat::t(gy.data(), fout), Mat::rows(x.data(), fin), dw.data_mut(), fin, false, true);
        let db = (0..fout).map(|o| (0..n).map(|i| gy.data()[i * fout + o] as f64).sum::<f64>() as f32).collect();
        (dw, Tensor::from_vec(&[fout], db))
    });
    (dx, dwb)
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

/// cuBLAS is column-major: a row-major [r, c] matrix is its transpose there, so y = x·Wᵀ becomes
/// yᵀ = W·xᵀ and so on.
#[cfg(feature = "cuda")]
mod cuda {
    use crate::tensor::Tensor;
    use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N as N, CUBLAS_OP_T as T};
    use cudarc::cublas::{Gemm, GemmConfig};
    use cudarc::driver::CudaSlice;

    /// C (col-major m×n, ld m) = beta·C + op(A)·op(B).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        x: &Tensor,
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        a: &CudaSlice<f32>,
        lda: usize,
        b: &CudaSlice<f32>,
        ldb: usize,
        c: &mut CudaSlice<f32>,
        beta: f32,
    ) {
        let g = x.gpu().unwrap();
        // cuBLAS works on whatever context is current on this thread
        g.stream.context().bind_to_thread().unwrap_or_else(|e| panic!("cuda:{}: {e}", g.ordinal));
        let op = |t| if t { T } else { N };
        let cfg = GemmConfig {
            transa: op(ta),
            transb: op(tb),
            m: m as i32,
            n: n as i32,
            k: k as i32,
            alpha: 1.0f32,
            lda: lda as i32,
            ldb: ldb as i32,
            beta,
            ldc: m as i32,
        };
        // SAFETY: the shapes were checked against the buffers by the callers.
        unsafe { g.blas.gemm(cfg, a, b, c) }.unwrap_or_else(|e| panic!("cuBLAS sgemm failed: {e}"));
    }

    pub fn forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
        let g = x.gpu().unwrap().clone();
        let ((n, fin), (fout, _)) = (x.dims2(), w.dims2());
        let mut y = g.empty(n * fout);
        let (ni, fo) = (n as i32, fout as i32);
        crate::cuda::kernels::fill_rows(&g, g.grid(n * fout), &mut y, b.cu(), ni, fo);
        // yᵀ [fout, n] += W [fout, fin] · xᵀ [fin, n]
        gemm(x, true, false, fout, n, fin, w.cu(), fin, x.cu(), fin, &mut y, 1.0);
        Tensor::from_cuda(&g, &[n, fout], y)
    }

    pub fn backward(
        x: &Tensor,
        w: &Tensor,
        gy: &Tensor,
        need_x: bool,
        need_w: bool,
    ) -> (Option<Tensor>, Option<(Tensor, Tensor)>) {
        let g = x.gpu().unwrap().clone();
        let ((n, fin), (fout, _)) = (x.dims2(), w.dims2());
        let dx = need_x.then(|| {
            // dxᵀ [fin, n] = Wᵀ [fin, fout] · gyᵀ [fout, n]
            let mut dx = g.empty(n * fin);
            gemm(x, false, false, fin, n, fout, w.cu(), fin, gy.cu(), fout, &mut dx, 0.0);
            Tensor::from_cuda(&g, &[n, fin], dx)
        });
        let dwb = need_w.then(|| {
            // dWᵀ [fin, fout] = xᵀ [fin, n] · gy [n, fout]
            // an empty batch (k = 0) leaves C to cuBLAS's discretion: zeros, not garbage
            let mut dw = if n == 0 { g.zeros(fout * fin) } else { g.empty(fout * fin) };
            gemm(x, false, true, fin, fout, n, x.cu(), fin, gy.cu(), fout, &mut dw, 0.0);
            let mut db = g.empty(fout);
            let (ni, fo) = (n as i32, fout as i32);
            crate::cuda::kernels::col_sums(&g, g.grid(fout), gy.cu(), &mut db, ni, fo);
            (Tensor::from_cuda(&g, &[fout, fin], dw), Tensor::from_cuda(&g, &[fout], db))
        });
        (dx, dwb)
    }
}

struct FlattenNode(Vec<usize>);

impl Backward for FlattenNode {
    fn backward(&self, gy: &Tensor, _: &[bool], _: bool) -> Grads {
        Grads { inputs: vec![Some(gy.clone().reshape(&self.0))], params: Vec::new() }
    }
}

/// [N, ...] -> [N, rest].
pub fn flatten(tape: &mut Tape, x: &Var) -> Var {
    let n = x.shape()[0];
    let y = (*x.val).clone().reshape(&[n, x.val.numel() / n.max(1)]);
    tape.record(y, &[x], false, |_| FlattenNode(x.shape().to_vec()))
}
