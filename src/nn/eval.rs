//! A classifier in evaluation, as the attacks and the training step use it: eval-mode logits in
//! chunks, the predictions they make, and d loss / d input through the model with a tape in
//! `GradMode::Input` (no filter gradients are ever computed). The model runs on its own device;
//! inputs and results stay on the caller's (attacks keep their bookkeeping on the host). Tested
//! through `tests/attacks.rs` and `tests/tape.rs`.
use crate::nn::Model;
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;
use std::sync::Arc;

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

/// Eval-mode logits, `batch` images at a time, recording nothing. A batch that fits in one chunk
/// goes to the model whole (one copy: onto the model's device, or into the tape, which owns its
/// input) and its logits come back as the model made them.
pub fn logits(model: &mut Model, x: &Tensor, batch: usize) -> Tensor {
    let (n, batch) = (x.shape()[0], batch.max(1));
    if n == 0 {
        return Tensor::zeros(&[0, model.arch.classes()]);
    }
    let there = model.device();
    let mut tape = Tape::new(GradMode::None);
    let mut forward = |xb: Tensor| {
        let xv = tape.input(xb);
        Arc::unwrap_or_clone(model.forward(&mut tape, &xv, false).val)
    };
    let z = match n <= batch {
        true => forward(x.on(&there).into_owned()),
        false => {
            let starts = (0..n).step_by(batch);
            let parts: Vec<Tensor> = starts.map(|s| forward(x.rows(s, n.min(s + batch)).into_device(&there))).collect();
            Tensor::cat_rows(&parts)
        }
    };
    z.into_device(&x.device())
}

/// The predicted class of every row of `logits` (the first one on ties).
pub fn predictions(logits: &Tensor) -> Vec<usize> {
    let (n, c) = logits.dims2();
    let all = logits.host();
    (0..n)
        .map(|i| {
            let z = &all[i * c..][..c];
            (1..c).fold(0, |best, j| if z[j] > z[best] { j } else { best })
        })
        .collect()
}

/// Whether each sample's prediction differs from its label.
pub fn misclassified(logits: &Tensor, y: &[usize]) -> Vec<bool> {
    predictions(logits).iter().zip(y).map(|(p, t)| p != t).collect()
}

/// How many samples the logits classify as labelled.
pub fn correct(logits: &Tensor, y: &[usize]) -> usize {
    misclassified(logits, y).iter().filter(|&&m| !m).count()
}
