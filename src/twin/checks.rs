//! The doctor's checks, one small case per kernel module with its tolerance, run on the CPU and on a
//! device and compared: `mmard doctor --device cuda` and the CUDA tests (tests/cuda_parity.rs) run
//! this one list.
use super::{Run, triangular};
use crate::ard::methods::Method;
use crate::ard::step::{InnerPgd, Stepper};
use crate::nn::optim::Sgd;
use crate::nn::{Arch, Model, SmallCnnCfg};
use crate::ops::conv2d::{ConvCfg, conv2d};
use crate::ops::loss::{self, Triangle};
use crate::ops::sgd::SgdCfg;
use crate::ops::{batchnorm, elementwise, linear, pad, pgd, pool};
use crate::tape::{Param, Tape, Var};
use crate::{Device, Tensor, twin};
use rand::SeedableRng;
use rand::rngs::StdRng;

type Case = Box<dyn Fn(&Device) -> Vec<Run>>;

/// One small computation of a kernel module, run on the CPU and on a device and compared.
pub struct Check {
    /// The kernel module it exercises (`kernels/<module>.cu`).
    pub module: &'static str,
    /// What it runs.
    pub what: &'static str,
    /// The relative tolerance of `twin::same_runs`.
    pub rel: f64,
    case: Case,
}

impl Check {
    /// The case on the CPU and on `dev`, compared.
    pub fn compare(&self, dev: &Device) -> Result<(), String> {
        let (cpu, other) = (self.run(&Device::Cpu), self.run(dev));
        cpu.iter().zip(&other).try_for_each(|(c, g)| twin::same_runs(self.what, g, c, self.rel))
    }

    /// The case's results on `dev`, on the host.
    pub fn run(&self, dev: &Device) -> Vec<Run> {
        (self.case)(dev)
    }
}

/// One check per kernel module, with the op tolerances of the fixtures.
pub fn all() -> Vec<Check> {
    let mut rng = StdRng::seed_from_u64(1);
    let x = triangular(&mut rng, &[4, 8, 12, 12], 1.0);
    let w = triangular(&mut rng, &[16, 8, 3, 3], 0.12);
    let b = triangular(&mut rng, &[16], 0.5);
    let gb = [triangular(&mut rng, &[8], 0.5), triangular(&mut rng, &[8], 0.5)];
    let x2 = triangular(&mut rng, &[4, 8, 12, 12], 1.0);
    let z = [
        triangular(&mut rng, &[16, 10], 3.0),
        triangular(&mut rng, &[16, 10], 3.0),
        triangular(&mut rng, &[16, 10], 3.0),
    ];
    let fc = [triangular(&mut rng, &[10, 72], 0.1), triangular(&mut rng, &[10], 0.1)];
    let mut checks = layer_checks(&x, [w, b], gb, x2, fc);
    checks.extend([
        Check {
            module: "loss",
            what: "cross-entropy, KL and the MMARD triangle, weighted",
            rel: 1e-6,
            case: Box::new(move |d: &Device| losses(d, &z)),
        },
        Check {
            module: "pgd",
            what: "PGD start and steps",
            rel: 0.0,
            case: Box::new(move |d: &Device| vec![pgd_steps(d, &x)]),
        },
        Check {
            module: "sgd, tensor",
            what: "two outer PGD-AT steps of a SmallCNN (SGD, momentum)",
            rel: 1e-3,
            case: Box::new(training),
        },
    ]);
    checks
}

/// The checks of the layers' kernels, each a forward and backward on the tape: input `x`, a
/// convolution's weight and bias, BatchNorm's weight and bias, a second input, a linear layer's
/// weight and bias.
fn layer_checks(x: &Tensor, conv: [Tensor; 2], bn: [Tensor; 2], x2: Tensor, fc: [Tensor; 2]) -> Vec<Check> {
    let tape = |inputs: Vec<Tensor>, params: Vec<Tensor>, f: fn(&mut Tape, &[Var], &[Param]) -> Var| -> Case {
        Box::new(move |d: &Device| vec![twin::run(d, &inputs, &params, 1.0, f)])
    };
    vec![
        Check {
            module: "conv2d",
            what: "cuDNN 3x3 convolution with bias, forward and backward",
            rel: 1e-5,
            case: tape(vec![x.clone()], conv.to_vec(), |t, v, p| {
                conv2d(t, &v[0], &p[0], p.get(1), ConvCfg { stride: 1, pad: 1, groups: 1 })
            }),
        },
        Check {
            module: "batchnorm",
            what: "train-mode BatchNorm + ReLU, forward and backward",
            rel: 1e-5,
            case: tape(vec![x.clone()], bn.to_vec(), |t, v, p| {
                let d = p[0].val.device();
                let (mut m, mut s) = (Tensor::zeros_on(&[8], &d), Tensor::full(&[8], 1.0).to_device(&d));
                let stats =
                    batchnorm::Stats::Batch { running_mean: &mut m, running_var: &mut s, momentum: 0.1, sync: None };
                batchnorm::batch_norm_relu(t, &v[0], &p[0], &p[1], stats, 1e-5)
            }),
        },
        Check {
            module: "elementwise",
            what: "ReLU, add and Swish",
            rel: 1e-6,
            case: tape(vec![x.clone(), x2], vec![], |t, v, _| {
                let a = elementwise::relu(t, &v[0]);
                let s = elementwise::swish(t, &v[1]);
                elementwise::add(t, &a, &s)
            }),
        },
        Check {
            module: "pool",
            what: "2x2 max-pool and global average pool",
            rel: 1e-6,
            case: tape(vec![x.clone()], vec![], |t, v, _| {
                let m = pool::maxpool2(t, &v[0]);
                pool::avgpool(t, &m)
            }),
        },
        Check {
            module: "pad",
            what: "zero padding and its crop",
            rel: 0.0,
            case: tape(vec![x.clone()], vec![], |t, v, _| {
                pad::pad2d(t, &v[0], pad::Pad { top: 1, bottom: 2, left: 0, right: 3 })
            }),
        },
        Check {
            module: "linear",
            what: "cuBLAS linear layer with bias",
            rel: 1e-5,
            case: tape(vec![x.clone().reshape(&[x.numel() / 72, 72])], fc.to_vec(), |t, v, p| {
                linear::linear(t, &v[0], &p[0], &p[1])
            }),
        },
    ]
}

fn output(out: Tensor) -> Run {
    Run { out, grads: vec![], param_grads: vec![] }
}

fn losses(d: &Device, z: &[Tensor; 3]) -> Vec<Run> {
    let z: Vec<Tensor> = z.iter().map(|t| t.to_device(d)).collect();
    let y: Vec<usize> = (0..16).map(|i| (i * 7) % 10).collect();
    let w: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
    let tri = Triangle { teacher_adv: 5.0 / 6.0, teacher_nat: 1.0 / 6.0, adv_nat: 1.0 };
    let outs = [
        loss::cross_entropy(&z[0], &y).weighted(&w),
        loss::kl_div(&z[0], &z[1], 4.0),
        loss::triangle(&z[0], &z[1], &z[2], tri, 1.0),
    ];
    outs.into_iter()
        .map(|l| Run {
            out: l.per_sample.to_device(&Device::Cpu),
            grads: l.grads.iter().map(|g| Some(g.to_device(&Device::Cpu))).collect(),
            param_grads: vec![],
        })
        .collect()
}

fn pgd_steps(d: &Device, x: &Tensor) -> Run {
    let x0: Vec<f32> = x.host().iter().map(|v| v.abs().min(1.0)).collect();
    let x0 = Tensor::from_vec(x.shape(), x0).to_device(d);
    let u: Vec<f32> = (0..x.numel()).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 0.03).collect();
    let mut xa = pgd::start(&x0, &u, 0.1);
    for _ in 0..3 {
        pgd::step(&mut xa, &x.to_device(d), &x0, 0.025, 0.1);
    }
    output(xa.to_device(&Device::Cpu))
}

/// Two outer steps of PGD-AT (train-mode forward, backward, SGD with momentum) of a small SmallCNN
/// from a fixed adversarial batch, and its parameters after them. No inner loop: its sign() would
/// turn a near-zero input gradient of either sign into a full step. 1e-3 of each parameter's norm
/// holds where a ReLU input within rounding of 0 flips in train-mode BatchNorm (the model fixtures
/// allow 2e-2 of a gradient for that; two steps move the parameters by a few percent).
fn training(d: &Device) -> Vec<Run> {
    let arch = Arch::SmallCnn(SmallCnnCfg { in_channels: 1, size: 12, widths: [8, 8, 8], classes: 10 });
    let mut rng = StdRng::seed_from_u64(2);
    let x = triangular(&mut rng, &[8, 1, 12, 12], 0.5);
    let x = Tensor::from_vec(x.shape(), x.host().iter().map(|v| v.abs().min(1.0)).collect()).to_device(d);
    let y: Vec<usize> = (0..8).collect();
    let mut m = Model::new(&arch, Some(3));
    m.to_device(d);
    let mut opt = Sgd::new(SgdCfg { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: false }, &m.params);
    let mut st = Stepper::new(Method::PgdAt.objective(), InnerPgd { eps: 0.1, step: 0.025, steps: 2 });
    let b = st.batch(d, None, &x, &y).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..2 {
        st.outer(&mut m, None, &mut opt, &b, Some(&x)).unwrap_or_else(|e| panic!("{e}"));
    }
    m.params.trainable().map(|id| output(m.params.get(id).to_device(&Device::Cpu))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case runs on the CPU and gives the same result twice: what the GPU is compared with.
    #[test]
    fn cases_run_on_the_cpu() {
        for c in all() {
            let (a, b) = (c.run(&Device::Cpu), c.run(&Device::Cpu));
            assert!(!a.is_empty(), "{}: no output", c.module);
            for (x, y) in a.iter().zip(&b) {
                twin::same_runs(c.what, x, y, 0.0).unwrap();
            }
        }
    }
}
