//! L∞ PGD as an evaluation attack (FGSM is one step of it, CW∞ is PGD on the margin): signed
//! gradient steps on the batch sum of a per-sample loss, each sample frozen at its first
//! misclassified iterate. Tested in `tests/attacks.rs` and against torchattacks
//! (`scripts/compare_torchattacks.py`).
use super::losses::AttackLoss;
use crate::nn::Model;
use crate::nn::eval::{logits, misclassified};
use crate::ops::pgd::pgd_step;
use crate::samples::{copy_sample, random_start, sample_len};
use crate::tape::{GradMode, Tape};
use crate::tensor::Tensor;
use rand::rngs::StdRng;

/// Settings of a PGD run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pgd {
    pub steps: usize,
    /// Step size; ε/4 when `None` (ε is only known when the attack runs).
    pub step: Option<f32>,
    /// Start from a uniform point of the ε-ball (clipped to [0, 1]) instead of from x.
    pub random_start: bool,
}

impl Pgd {
    /// `steps` signed-gradient steps that maximise `loss`. A sample is frozen at the first
    /// iterate the model misclassifies (the clean image for samples misclassified from the start):
    /// a later step could make it look robust again. Otherwise the final iterate is returned.
    pub fn run(
        &self,
        model: &mut Model,
        x: &Tensor,
        y: &[usize],
        eps: f32,
        loss: &AttackLoss,
        rng: &mut StdRng,
    ) -> Tensor {
        let step = self.step.unwrap_or(eps / 4.0);
        let per = sample_len(x);
        let mut done = misclassified(&logits(model, x, y.len().max(1)), y);
        let mut x_adv = if self.random_start { random_start(x, eps, rng) } else { x.clone() };
        for s in (0..y.len()).filter(|&s| done[s]) {
            copy_sample(&mut x_adv, s, x, s);
        }
        let mut tape = Tape::new(GradMode::Input);
        for _ in 0..self.steps {
            let (z, grad, _) = loss.grad(model, &mut tape, &x_adv, y);
            done.iter_mut().zip(misclassified(&z, y)).for_each(|(d, m)| *d |= m);
            for s in (0..y.len()).filter(|&s| !done[s]) {
                let r = s * per..(s + 1) * per;
                pgd_step(&mut x_adv.data_mut()[r.clone()], &grad.data()[r.clone()], &x.data()[r], step, eps);
            }
        }
        x_adv
    }
}
