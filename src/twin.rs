//! One computation on two devices: a tape's output and gradients, so that a GPU op can be checked
//! against its CPU twin. `mmard doctor` runs one case per kernel module this way, and
//! tests/cuda_parity.rs every op at real layer shapes.
use crate::tape::{GradMode, Param, Tape, Var};
use crate::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;

pub mod checks;

/// What one run gives: the output, each input's gradient, each parameter's gradient.
pub struct Run {
    pub out: Tensor,
    pub grads: Vec<Option<Tensor>>,
    pub param_grads: Vec<Option<Tensor>>,
}

/// A tensor of sums of two uniform draws in (−scale, scale) (a triangular law on (−2·scale,
/// 2·scale)), the same for a seed on every device.
pub fn triangular(rng: &mut StdRng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n).map(|_| (rng.random_range(-1.0f32..1.0) + rng.random_range(-1.0f32..1.0)) * scale).collect(),
    )
}

/// Runs `f` on a Params-mode tape on `dev` with copies of `inputs` and `params` (parameter ids in
/// order), seeds its output with a fixed random gradient of scale `gy_scale`, and returns what the
/// tape computed, on the host.
pub fn run(
    dev: &Device,
    inputs: &[Tensor],
    params: &[Tensor],
    gy_scale: f32,
    f: impl Fn(&mut Tape, &[Var], &[Param]) -> Var,
) -> Run {
    let host = |t: &Tensor| t.to_device(&Device::Cpu);
    let mut tape = Tape::new(GradMode::Params);
    let vs: Vec<Var> = inputs.iter().map(|x| tape.var(x.to_device(dev))).collect();
    let ps: Vec<Param> =
        params.iter().enumerate().map(|(id, p)| Param { id, val: Arc::new(p.to_device(dev)) }).collect();
    let y = f(&mut tape, &vs, &ps);
    let gy = triangular(&mut StdRng::seed_from_u64(99), y.shape(), gy_scale).to_device(dev);
    let out = host(&y.val);
    tape.backward(vec![(&y, gy)]);
    Run {
        out,
        grads: vs.iter().map(|v| tape.grad(v).map(host)).collect(),
        param_grads: (0..params.len()).map(|id| tape.param_grad(id).map(host)).collect(),
    }
}

/// Whether `a` is within `rel` of `b`: ‖a − b‖ ≤ rel·‖b‖ + 1e-6·√n (the second term for tensors
/// that are nearly zero); the error says by how much it is not.
pub fn close(what: &str, a: &Tensor, b: &Tensor, rel: f64) -> Result<(), String> {
    if a.shape() != b.shape() {
        return Err(format!("{what}: shapes {:?} and {:?}", a.shape(), b.shape()));
    }
    let (a, b) = (a.host(), b.host());
    let diff = a.iter().zip(b.iter()).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
    let norm = b.iter().map(|&y| (y as f64).powi(2)).sum::<f64>().sqrt();
    let tol = rel * norm + 1e-6 * (b.len() as f64).sqrt();
    if diff <= tol {
        Ok(())
    } else {
        Err(format!("{what}: ‖a − b‖ = {diff:.3e} > {tol:.3e} (‖b‖ = {norm:.3e})"))
    }
}

/// Compares two runs of one case (output, input gradients, parameter gradients) within `rel`.
pub fn same_runs(what: &str, a: &Run, b: &Run, rel: f64) -> Result<(), String> {
    close(&format!("{what}: output"), &a.out, &b.out, rel)?;
    for (i, (x, y)) in a.grads.iter().zip(&b.grads).enumerate() {
        if let (Some(x), Some(y)) = (x, y) {
            close(&format!("{what}: grad input {i}"), x, y, rel)?;
        }
    }
    for (i, (x, y)) in a.param_grads.iter().zip(&b.param_grads).enumerate() {
        match (x, y) {
            (Some(x), Some(y)) => close(&format!("{what}: grad param {i}"), x, y, rel)?,
            (None, None) => {}
            _ => return Err(format!("{what}: param {i} has a gradient on one device only")),
        }
    }
    Ok(())
}
