//! Fully connected layer y = x W^T + b (W is [out, in] as in PyTorch), and flatten.
use super::gemm::{sgemm, Mat};
use crate::tape::{Backward, Grads, Param, Tape, Var};
use crate::tensor::Tensor;
use std::sync::Arc;

pub fn forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let ((n, fin), (fout, fin2)) = (x.dims2(), w.dims2());
    assert_eq!(fin, fin2, "linear: input has {fin} features, weight expects {fin2}");
    let mut y: Vec<f32> = (0..n).flat_map(|_| b.data().iter().copied()).collect();
    sgemm(n, fout, fin, Mat::rows(x.data(), fin), Mat::t(w.data(), fin), &mut y, fout, true, true);
    Tensor::from_vec(&[n, fout], y)
}

/// (dx, dW, db), the first only when `need_x`, the others only when `need_w`.
pub fn backward(x: &Tensor, w: &Tensor, gy: &Tensor, need_x: bool, need_w: bool) -> (Option<Tensor>, Option<(Tensor, Tensor)>) {
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
