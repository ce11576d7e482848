//! The tape's modes on a whole model: what gets a gradient and what is never computed.
use mmard::Tensor;
use mmard::nn::{Arch, Model, SmallCnnCfg};
use mmard::ops::loss;
use mmard::tape::{GradMode, Tape};

fn setup() -> (Model, Tensor, Vec<usize>) {
    let arch = Arch::SmallCnn(SmallCnnCfg { in_channels: 1, size: 28, widths: [4, 8, 8], classes: 10 });
    let x = Tensor::from_vec(&[2, 1, 28, 28], (0..2 * 28 * 28).map(|i| (i % 17) as f32 / 17.0).collect());
    (Model::new(&arch, Some(0)), x, vec![3, 7])
}

fn backward_ce(tape: &mut Tape, m: &mut Model, x: Tensor, y: &[usize], bn_train: bool) -> mmard::Var {
    let xv = tape.input(x);
    let logits = m.forward(tape, &xv, bn_train);
    let g = loss::cross_entropy(&logits.val, y).grads.remove(0);
    tape.backward(vec![(&logits, g)]);
    xv
}

#[test]
fn none_records_nothing() {
    let (mut m, x, _) = setup();
    let mut tape = Tape::new(GradMode::None);
    let xv = tape.input(x);
    let logits = m.forward(&mut tape, &xv, false);
    assert!(!xv.needs_grad() && !logits.needs_grad());
}

#[test]
fn input_mode_gives_input_gradient_only() {
    let (mut m, x, y) = setup();
    let mut tape = Tape::new(GradMode::Input);
    let xv = backward_ce(&mut tape, &mut m, x, &y, false);
    assert_eq!(tape.grad(&xv).unwrap().shape(), &[2, 1, 28, 28]);
    assert!(m.params.trainable().all(|id| tape.param_grad(id).is_none()), "no parameter gradient in Input mode");
}

#[test]
fn params_mode_gives_every_parameter_a_gradient_and_the_input_none() {
    let (mut m, x, y) = setup();
    let mut tape = Tape::new(GradMode::Params);
    let xv = backward_ce(&mut tape, &mut m, x, &y, true);
    assert!(tape.grad(&xv).is_none());
    for id in m.params.trainable() {
        assert!(tape.param_grad(id).is_some(), "{} has no gradient", m.params.name(id));
    }
}

#[test]
fn clear_then_reuse_gives_the_same_gradient() {
    let (mut m, x, y) = setup();
    let mut tape = Tape::new(GradMode::Input);
    let a = backward_ce(&mut tape, &mut m, x.clone(), &y, false);
    let first = tape.grad(&a).unwrap().clone();
    tape.clear();
    let b = backward_ce(&mut tape, &mut m, x, &y, false);
    assert_eq!(first.data(), tape.grad(&b).unwrap().data());
}

#[test]
fn bn_train_moves_running_stats_and_eval_does_not() {
    let (mut m, x, _) = setup();
    let id = m.params.id("bn1.running_mean").unwrap();
    let before = m.params.get(id).clone();
    let mut tape = Tape::new(GradMode::None);
    let xv = tape.input(x.clone());
    m.forward(&mut tape, &xv, false);
    assert_eq!(before.data(), m.params.get(id).data());
    m.forward(&mut tape, &xv, true);
    assert_ne!(before.data(), m.params.get(id).data());
}
