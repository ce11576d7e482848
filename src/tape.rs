//! The autograd tape, specialised for adversarial training (docs/ARCHITECTURE.md, "the tape"):
//! - `GradMode::None` records nothing (teacher forward, evaluation);
//! - `GradMode::Input` gives gradients to the input only (PGD inner loop): parameters never get
//!   one, so e.g. a convolution runs backward-data and never backward-filter;
//! - `GradMode::Params` gives gradients to parameters (outer step); the network input gets none,
//!   so the first convolution skips backward-data.
//!
//! Ops are recorded in execution order and walked in reverse; a gradient is freed once used and
//! parameter gradients accumulate with `+=`.
use crate::tensor::Tensor;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradMode {
    None,
    Input,
    Params,
}

/// Index of a tensor in a `ParamStore`.
pub type ParamId = usize;

/// A parameter or buffer as an op sees it: its id in the model's store and its current value.
#[derive(Clone, Debug)]
pub struct Param {
    pub id: ParamId,
    pub val: Arc<Tensor>,
}

/// A value of the forward pass. The tensor is shared so the tape can keep what backward needs
/// without copying; `slot` is set when the value needs a gradient.
#[derive(Clone, Debug)]
pub struct Var {
    pub val: Arc<Tensor>,
    slot: Option<usize>,
}

impl Var {
    /// A value that needs no gradient.
    pub fn constant(t: Tensor) -> Self {
        Var { val: Arc::new(t), slot: None }
    }
    pub fn needs_grad(&self) -> bool {
        self.slot.is_some()
    }
    pub fn shape(&self) -> &[usize] {
        self.val.shape()
    }
}

/// What an op's backward returns: a gradient per input (`None` where not asked for) and the
/// gradients of the parameters it used.
#[derive(Default)]
pub struct Grads {
    pub inputs: Vec<Option<Tensor>>,
    pub params: Vec<(ParamId, Tensor)>,
}

/// The saved state of one recorded op. `need[i]` says whether input `i` wants a gradient;
/// `params` whether parameter gradients are wanted.
pub trait Backward: Send {
    fn backward(&self, gy: &Tensor, need: &[bool], params: bool) -> Grads;
}

struct Node {
    out: usize,
    inputs: Vec<Option<usize>>,
    op: Box<dyn Backward>,
}

pub struct Tape {
    mode: GradMode,
    nodes: Vec<Node>,
    grads: Vec<Option<Tensor>>,
    param_grads: Vec<Option<Tensor>>,
}

impl Tape {
    pub fn new(mode: GradMode) -> Self {
        Tape { mode, nodes: Vec::new(), grads: Vec::new(), param_grads: Vec::new() }
    }

    pub fn mode(&self) -> GradMode {
        self.mode
    }

    /// Whether ops with parameters record themselves for parameter gradients.
    pub fn wants_params(&self) -> bool {
        self.mode == GradMode::Params
    }

    /// The network input: it needs a gradient exactly in `GradMode::Input`.
    pub fn input(&mut self, t: Tensor) -> Var {
        let slot = (self.mode == GradMode::Input).then(|| self.new_slot());
        Var { val: Arc::new(t), slot }
    }

    /// A value that needs a gradient whatever the mode (except `None`): gradchecks and op tests.
    pub fn var(&mut self, t: Tensor) -> Var {
        let slot = (self.mode != GradMode::None).then(|| self.new_slot());
        Var { val: Arc::new(t), slot }
    }

    fn new_slot(&mut self) -> usize {
        self.grads.push(None);
        self.grads.len() - 1
    }

    /// Wraps an op's output. The op is recorded (and `make`, given the output, called) only when the output needs a
    /// gradient: some input needs one, or the op has parameters and parameter gradients are wanted.
    pub fn record<B: Backward + 'static>(
        &mut self,
        out: Tensor,
        inputs: &[&Var],
        has_params: bool,
        make: impl FnOnce(&Arc<Tensor>) -> B,
    ) -> Var {
        let needed = self.mode != GradMode::None
            && (inputs.iter().any(|v| v.needs_grad()) || (has_params && self.wants_params()));
        if !needed {
            return Var::constant(out);
        }
        let out = Arc::new(out);
        let slot = self.new_slot();
        let inputs = inputs.iter().map(|v| v.slot).collect();
        self.nodes.push(Node { out: slot, inputs, op: Box::new(make(&out)) });
        Var { val: out, slot: Some(slot) }
    }

    /// Backpropagates from the given (value, gradient) seeds, e.g. the logit gradients a fused
    /// loss computed. Several seeds accumulate (both logit sets of a triangle loss).
    pub fn backward(&mut self, seeds: Vec<(&Var, Tensor)>) {
        for (v, g) in seeds {
            let slot = v.slot.expect("backward from a value that needs no gradient");
            accumulate(&mut self.grads[slot], g);
        }
        let params = self.wants_params();
        for node in self.nodes.iter().rev() {
            let Some(gy) = self.grads[node.out].take() else {
                continue;
            };
            let need: Vec<bool> = node.inputs.iter().map(Option::is_some).collect();
            let g = node.op.backward(&gy, &need, params);
            for (slot, gx) in node.inputs.iter().zip(g.inputs) {
                if let (Some(s), Some(gx)) = (slot, gx) {
                    accumulate(&mut self.grads[*s], gx);
                }
            }
            for (id, gp) in g.params {
                if id >= self.param_grads.len() {
                    self.param_grads.resize_with(id + 1, || None);
                }
                accumulate(&mut self.param_grads[id], gp);
            }
        }
    }

    /// The gradient of a leaf value (the network input) after `backward`.
    pub fn grad(&self, v: &Var) -> Option<&Tensor> {
        v.slot.and_then(|s| self.grads[s].as_ref())
    }

    /// The gradient of a leaf value after `backward`, moved out of the tape (a later `grad` of it
    /// is `None`).
    pub fn take_grad(&mut self, v: &Var) -> Option<Tensor> {
        v.slot.and_then(|s| self.grads[s].take())
    }

    /// The gradient of parameter `id` after `backward`, if it received one.
    pub fn param_grad(&self, id: ParamId) -> Option<&Tensor> {
        self.param_grads.get(id).and_then(Option::as_ref)
    }

    /// Every parameter gradient, in parameter order, to change in place (data parallelism sums
    /// them over ranks).
    pub fn param_grads_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.param_grads.iter_mut().flatten()
    }

    /// Forgets every op and gradient, keeping the allocations for the next pass.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.grads.clear();
        self.param_grads.iter_mut().for_each(|g| *g = None);
    }
}

fn accumulate(dst: &mut Option<Tensor>, g: Tensor) {
    match dst {
        Some(d) => d.add_assign(&g),
        None => *dst = Some(g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Arch, Model, SmallCnnCfg};
    use crate::ops::loss;

    /// The inner loop's round trip (`ard::step`): the tape takes x′, backward, the gradient is taken
    /// out, and once cleared the tape holds x′ no more, so it comes back without a copy.
    #[test]
    fn input_comes_back_unshared_after_clear() {
        let arch = Arch::SmallCnn(SmallCnnCfg { in_channels: 1, size: 28, widths: [4, 8, 8], classes: 10 });
        let mut m = Model::new(&arch, Some(0));
        let x = Tensor::from_vec(&[2, 1, 28, 28], (0..2 * 28 * 28).map(|i| (i % 17) as f32 / 17.0).collect());
        let mut tape = Tape::new(GradMode::Input);
        let xv = tape.input(x.clone());
        let logits = m.forward(&mut tape, &xv, false);
        let g = loss::cross_entropy(&logits.val, &[3, 7]).grads.remove(0);
        tape.backward(vec![(&logits, g)]);
        let before = tape.grad(&xv).cloned();
        assert_eq!(tape.take_grad(&xv).map(Tensor::into_vec), before.map(Tensor::into_vec));
        assert!(tape.grad(&xv).is_none(), "take_grad leaves nothing behind");
        tape.clear();
        let back = Arc::try_unwrap(xv.val).expect("a cleared tape shares no input");
        assert_eq!(back.into_vec(), x.into_vec());
    }
}
