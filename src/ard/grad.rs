//! The gradient every attack and inner loop needs: d loss / d input through eval-mode models, with
//! a tape in `GradMode::Input` (no filter gradients are ever computed).
use crate::nn::Model;
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;

/// Logits of `x` (BatchNorm in eval mode) and the gradient w.r.t. `x` of the loss that `loss`
/// computes from those logits. `loss` returns the gradient w.r.t. the logits (of whatever scalar
/// the caller maximises, e.g. a batch sum) and any value it wants to keep, such as per-sample losses.
pub fn input_grad<T>(model: &mut Model, tape: &mut Tape, x: &Tensor, loss: impl FnOnce(&Tensor) -> (Tensor, T)) -> (Tensor, Tensor, T) {
    assert_eq!(tape.mode(), GradMode::Input, "input_grad needs a tape in GradMode::Input");
    tape.clear();
    let xv = tape.input(x.clone());
    let logits = model.forward(tape, &xv, false);
    let (g, keep) = loss(&logits.val);
    tape.backward(vec![(&logits, g)]);
    let grad = tape.grad(&xv).expect("the input of an Input-mode tape has a gradient").clone();
    ((*logits.val).clone(), grad, keep)
}

/// Eval-mode logits, `batch` images at a time, recording nothing.
pub fn logits(model: &mut Model, x: &Tensor, batch: usize) -> Tensor {
    let n = x.shape()[0];
    let per = x.numel() / n.max(1);
    let mut out = Vec::with_capacity(n * model.arch.classes());
    let mut tape = Tape::new(GradMode::None);
    for start in (0..n).step_by(batch.max(1)) {
        let nb = batch.min(n - start);
        let mut shape = x.shape().to_vec();
        shape[0] = nb;
        let xb = tape.input(Tensor::from_vec(&shape, x.data()[start * per..(start + nb) * per].to_vec()));
        out.extend_from_slice(model.forward(&mut tape, &xb, false).val.data());
    }
    Tensor::from_vec(&[n, model.arch.classes()], out)
}

/// Forward pass of `x` on an Input-mode tape (cleared first): returns the input and logits values,
/// for losses that need several models' logits before any backward (AdaAD, MMARD inner loops).
pub fn forward_input(model: &mut Model, tape: &mut Tape, x: &Tensor) -> (crate::tape::Var, crate::tape::Var) {
    assert_eq!(tape.mode(), GradMode::Input, "forward_input needs a tape in GradMode::Input");
    tape.clear();
    let xv = tape.input(x.clone());
    let logits = model.forward(tape, &xv, false);
    (xv, logits)
}
