//! What every attack needs from a model: eval-mode logits, and d loss / d input through the model
//! with a tape in `GradMode::Input` (no filter gradients are ever computed). The model runs on its
//! own device; inputs and results stay on the caller's (attacks keep their bookkeeping on the
//! host). Tested through `tests/attacks.rs` and `tests/tape.rs`.
use crate::nn::Model;
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;

/// Logits of `x` (BatchNorm in eval mode) and the gradient w.r.t. `x` of the loss that `loss`
/// computes from those logits. `loss` returns the gradient w.r.t. the logits (of whatever scalar
/// the caller maximises, e.g. a batch sum) and any value it wants to keep, such as per-sample losses.
pub fn input_grad<T>(
    model: &mut Model,
    tape: &mut Tape,
    x: &Tensor,
    loss: impl FnOnce(&Tensor) -> (Tensor, T),
) -> (Tensor, Tensor, T) {
    assert_eq!(tape.mode(), GradMode::Input, "input_grad needs a tape in GradMode::Input");
    let (here, there) = (x.device(), model.device());
    tape.clear();
    let xv = tape.input(x.on(&there).into_owned());
    let logits = model.forward(tape, &xv, false);
    let z = logits.val.to_device(&here);
    let (g, keep) = loss(&z);
    tape.backward(vec![(&logits, g.into_device(&there))]);
    let grad = tape.grad(&xv).expect("the input of an Input-mode tape has a gradient").to_device(&here);
    (z, grad, keep)
}

/// Eval-mode logits, `batch` images at a time, recording nothing.
pub fn logits(model: &mut Model, x: &Tensor, batch: usize) -> Tensor {
    let n = x.shape()[0];
    let there = model.device();
    let mut tape = Tape::new(GradMode::None);
    let parts: Vec<Tensor> = (0..n)
        .step_by(batch.max(1))
        .map(|start| {
            let xb = tape.input(x.rows(start, n.min(start + batch.max(1))).into_device(&there));
            std::sync::Arc::unwrap_or_clone(model.forward(&mut tape, &xb, false).val)
        })
        .collect();
    if parts.is_empty() {
        return Tensor::zeros(&[0, model.arch.classes()]);
    }
    Tensor::cat_rows(&parts).into_device(&x.device())
}
