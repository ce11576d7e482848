//! The small random CNN and images the attack tests share (`tests/attacks.rs`,
//! `tests/autoattack.rs`).
#![allow(dead_code)]
use mmard::Tensor;
use mmard::nn::eval::{logits, predictions};
use mmard::nn::{Arch, Model, SmallCnnCfg};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub const N: usize = 16;
pub const EPS: f32 = 0.1;

/// A random SmallCnn, random images, and labels equal to its predictions except for the first two
/// samples, which start misclassified.
pub fn setup() -> (Model, Tensor, Vec<usize>) {
    let (mut model, x) = model_and_images(0.0);
    let mut y = predictions(&logits(&mut model, &x, N));
    y[0] = (y[0] + 1) % 10;
    y[1] = (y[1] + 3) % 10;
    (model, x, y)
}

/// A random SmallCnn and random images in [0, 1]. A random network's logits barely differ; its last
/// layer is scaled up so the cross-entropy is not flat, and `bias` is added to class 0's logit so
/// that every image is class 0 with a margin that takes a large eps, where the loss surface is no
/// longer nearly linear, to break.
pub fn model_and_images(bias: f32) -> (Model, Tensor) {
    let arch = Arch::SmallCnn(SmallCnnCfg { in_channels: 1, size: 28, widths: [8, 16, 16], classes: 10 });
    let mut model = Model::new(&arch, Some(1));
    let fc = model.params.id("fc.weight").unwrap();
    model.params.get_mut(fc).data_mut().iter_mut().for_each(|w| *w *= 30.0);
    let fc = model.params.id("fc.bias").unwrap();
    model.params.get_mut(fc).data_mut()[0] += bias;
    let mut rng = StdRng::seed_from_u64(7);
    let x = Tensor::from_vec(&[N, 1, 28, 28], (0..N * 28 * 28).map(|_| rng.random_range(0.0f32..1.0)).collect());
    (model, x)
}

/// Labels all 0: every image is confidently class 0 (see `model_and_images`).
pub fn confident() -> (Model, Tensor, Vec<usize>) {
    let (mut model, x) = model_and_images(4.0);
    let y = vec![0; N];
    assert_eq!(predictions(&logits(&mut model, &x, N)), y);
    (model, x, y)
}

/// Whether each sample is classified as labelled.
pub fn correct(model: &mut Model, x: &Tensor, y: &[usize]) -> Vec<bool> {
    predictions(&logits(model, x, N)).iter().zip(y).map(|(p, t)| p == t).collect()
}
