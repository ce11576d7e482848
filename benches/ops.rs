//! Criterion benches: the conv layers of CIFAR ResNet-18 and WRN-34-10 at batch 32 and of SmallCNN
//! at batch 128 (throughput in direct-convolution FLOP/s, shown as elem/s, also for the Winograd
//! layers, whose transformed filters are cached after the first call as in the PGD inner loop),
//! whole ResNet-18 passes in each GradMode, and the memory-bound ops (ReLU, add, max-pool,
//! BatchNorm, the fused PGD step, the fused losses) at the size of SmallCNN's first activation at
//! batch 128 (batch 1024 on the GPU; throughput in bytes moved). The conv layers and the
//! memory-bound group also run on the GPU in a `--features cuda` build on a machine with one.
//! `bench/pytorch_ops.py` times the same work in PyTorch for the side-by-side in BENCHMARKS.md.
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mmard::nn::{Arch, Model, ResNet18Cfg};
use mmard::ops::batchnorm::{self, Stats};
use mmard::ops::conv2d::{ConvCfg, backward, forward};
use mmard::ops::gemm::Mat;
use mmard::ops::{elementwise, loss, pgd, pool};
use mmard::tape::{GradMode, Param, Tape};
use mmard::{Device, Tensor};
use std::sync::Arc;

const BATCH: usize = 32;
/// (cin, cout, side, kernel, stride) of every distinct conv layer of a network on 32x32 inputs.
type Layers = &'static [(usize, usize, usize, usize, usize)];
const RESNET18: Layers = &[
    (3, 64, 32, 3, 1),
    (64, 64, 32, 3, 1),
    (64, 128, 32, 3, 2),
    (128, 128, 16, 3, 1),
    (64, 128, 32, 1, 2),
    (128, 256, 16, 3, 2),
    (256, 256, 8, 3, 1),
    (128, 256, 16, 1, 2),
    (256, 512, 8, 3, 2),
    (512, 512, 4, 3, 1),
    (256, 512, 8, 1, 2),
];
const WRN34_10: Layers = &[
    (3, 16, 32, 3, 1),
    (16, 160, 32, 3, 1),
    (16, 160, 32, 1, 1),
    (160, 160, 32, 3, 1),
    (160, 320, 32, 3, 2),
    (160, 320, 32, 1, 2),
    (320, 320, 16, 3, 1),
    (320, 640, 16, 3, 2),
    (320, 640, 16, 1, 2),
    (640, 640, 8, 3, 1),
];
const SMALL_CNN: Layers = &[(3, 32, 32, 3, 1), (32, 64, 16, 3, 1), (64, 128, 8, 3, 1)];
/// (group, batch, layers): the students' and teachers' shapes (WRN-34-10: the GPU steps' teacher).
const NETS: [(&str, usize, Layers); 3] = [
    ("conv2d_resnet18_b32", BATCH, RESNET18),
    ("conv2d_wrn34_10_b32", BATCH, WRN34_10),
    ("conv2d_small_cnn_b128", 128, SMALL_CNN),
];

fn filled(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect())
}

/// Times `f` up to the end of the work it queued on `dev`.
fn synced(b: &mut criterion::Bencher, dev: &Device, f: impl Fn()) {
    b.iter(|| {
        f();
        dev.sync();
    });
}

/// The conv layers on `dev`; the GPU's groups are named with a `_cuda` suffix (cuDNN, as PyTorch).
fn conv_layers_on(c: &mut Criterion, dev: &Device) {
    for (name, batch, layers) in NETS {
        let mut g = c.benchmark_group(if gpu(dev) { format!("{name}_cuda") } else { name.to_string() });
        g.sample_size(10);
        for &(cin, cout, side, k, stride) in layers {
            let cfg = ConvCfg { stride, pad: k / 2, groups: 1 };
            let (x, w) =
                (filled(&[batch, cin, side, side]).to_device(dev), Arc::new(filled(&[cout, cin, k, k]).to_device(dev)));
            let gy = forward(&x, &w, None, cfg);
            let flops = 2 * gy.numel() * cin * k * k;
            let id = format!("{cin}-{cout}_{side}_k{k}s{stride}");
            g.throughput(Throughput::Elements(flops as u64));
            g.bench_function(BenchmarkId::new("forward", &id), |b| synced(b, dev, || drop(forward(&x, &w, None, cfg))));
            g.bench_function(BenchmarkId::new("backward_data", &id), |b| {
                synced(b, dev, || drop(backward(&x, &w, &gy, cfg, true, false)))
            });
            g.bench_function(BenchmarkId::new("backward_filter", &id), |b| {
                synced(b, dev, || drop(backward(&x, &w, &gy, cfg, false, true)))
            });
        }
        g.finish();
    }
}

/// The machine's GEMM ceiling: one 2048³ sgemm through the same door the convolutions use.
fn sgemm_ceiling(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    g.sample_size(10);
    let n = 2048;
    let (a, b) = (filled(&[n, n]), filled(&[n, n]));
    let mut out = vec![0.0f32; n * n];
    g.throughput(Throughput::Elements((2 * n * n * n) as u64));
    g.bench_function("2048", |bch| {
        bch.iter(|| {
            mmard::ops::gemm::sgemm(n, n, n, Mat::rows(a.data(), n), Mat::rows(b.data(), n), &mut out, n, false, true)
        })
    });
    g.finish();
}

fn resnet18(c: &mut Criterion) {
    let mut g = c.benchmark_group("resnet18_b32");
    g.sample_size(10);
    let mut m = Model::new(&Arch::ResNet18(ResNet18Cfg { in_channels: 3, width: 64, classes: 10 }), Some(0));
    let x = filled(&[BATCH, 3, 32, 32]).data().iter().map(|v| v + 0.5).collect::<Vec<_>>();
    let x = Tensor::from_vec(&[BATCH, 3, 32, 32], x);
    let y: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    for (mode, name) in
        [(GradMode::None, "eval_forward"), (GradMode::Input, "input_grad"), (GradMode::Params, "train_step_grads")]
    {
        let mut tape = Tape::new(mode);
        g.bench_function(name, |b| {
            b.iter(|| {
                tape.clear();
                let xv = tape.input(x.clone());
                let logits = m.forward(&mut tape, &xv, mode == GradMode::Params);
                if mode != GradMode::None {
                    let gl = loss::cross_entropy(&logits.val, &y).grads.remove(0);
                    tape.backward(vec![(&logits, gl)]);
                }
            })
        });
    }
    g.finish();
}

/// Runs `f` on a fresh tape of `mode` with `x` as a gradient-needing input and, when `gy` is given,
/// backward from its output. Returns the tape, so that its values are freed outside the timing.
fn pass(mode: GradMode, x: Tensor, gy: Option<Tensor>, f: impl FnOnce(&mut Tape, &mmard::Var) -> mmard::Var) -> Tape {
    let mut tape = Tape::new(mode);
    let xv = tape.var(x);
    let y = f(&mut tape, &xv);
    if let Some(g) = gy {
        tape.backward(vec![(&y, g)]);
    }
    tape
}

/// Fresh copies of the tensors a memory-bound case consumes, made outside the timing.
struct Owned(std::vec::IntoIter<Tensor>);

impl Owned {
    fn take(&mut self) -> Tensor {
        self.0.next().expect("a case takes only the tensors it lists")
    }
}

/// A memory-bound case: its name, the bytes it moves, the tensors it consumes, and the work. The
/// consumed tensors are copied outside the timing (`iter_batched`), so the work alone is set
/// against the copy bandwidth; the work returns its outputs, which are freed outside it too.
type Case<'a> = (&'a str, u64, Vec<&'a Tensor>, Box<dyn Fn(Owned) -> Box<dyn std::any::Any> + 'a>);

fn memory_bound_on(c: &mut Criterion, dev: &Device) {
    let mut g = c.benchmark_group(if gpu(dev) { "memory_bound_cuda" } else { "memory_bound_cpu" });
    g.sample_size(20);
    // 16 MiB a tensor on the CPU; 128 MiB on the GPU, more than its L2, so that copy and kernels
    // are held to the memory's bandwidth, not the cache's.
    let shape = [if gpu(dev) { 1024 } else { 128 }, 32, 32, 32];
    let bytes = (shape.iter().product::<usize>() * 4) as u64;
    let (x, x2) = (filled(&shape).to_device(dev), filled(&shape).to_device(dev));
    let gy = filled(&shape).to_device(dev);
    let pooled = filled(&[shape[0], 32, 16, 16]).to_device(dev);
    let p = |v: f32, id| Param { id, val: Arc::new(Tensor::full(&[32], v).to_device(dev)) };
    let (gamma, beta) = (p(1.0, 0), p(0.0, 1));
    let (rm, rv) = (Tensor::zeros(&[32]).to_device(dev), Tensor::full(&[32], 1.0).to_device(dev));
    let bn_eval = |t: &mut Tape, v: &mmard::Var| {
        batchnorm::batch_norm(t, v, &gamma, &beta, Stats::Running { mean: &rm, var: &rv }, 1e-5)
    };
    // (name, bytes moved, ...): forward reads x and writes y; a backward also reads gy and writes gx.
    let cases: Vec<Case> = vec![
        // the ceiling the fused kernels are measured against: a plain copy (read + write)
        ("copy", 2 * bytes, vec![], Box::new(|_| Box::new(x.clone()))),
        ("relu_forward", 2 * bytes, vec![], Box::new(|_| Box::new(elementwise::relu_forward(&x)))),
        ("relu_backward", 3 * bytes, vec![], Box::new(|_| Box::new(elementwise::relu_backward(&x, &gy)))),
        (
            "add",
            3 * bytes,
            vec![&x, &x2],
            Box::new(|mut o| {
                Box::new(pass(GradMode::None, o.take(), None, |t, v| {
                    let b = t.var(o.take());
                    elementwise::add(t, v, &b)
                }))
            }),
        ),
        (
            "maxpool_forward",
            bytes + bytes / 2,
            vec![&x],
            Box::new(|mut o| Box::new(pass(GradMode::None, o.take(), None, pool::maxpool2))),
        ),
        (
            "maxpool_fwd_bwd",
            2 * bytes + bytes,
            vec![&x, &pooled],
            Box::new(|mut o| Box::new(pass(GradMode::Input, o.take(), Some(o.take()), pool::maxpool2))),
        ),
        (
            "bn_eval_forward",
            2 * bytes,
            vec![&x],
            Box::new(|mut o| Box::new(pass(GradMode::None, o.take(), None, bn_eval))),
        ),
        (
            "bn_eval_fwd_bwd_input_only",
            5 * bytes,
            vec![&x, &gy],
            Box::new(|mut o| Box::new(pass(GradMode::Input, o.take(), Some(o.take()), bn_eval))),
        ),
        (
            "bn_train_fwd_bwd",
            8 * bytes,
            vec![&x, &gy, &rm, &rv],
            Box::new(|mut o| {
                let (x, gy, mut m, mut s) = (o.take(), o.take(), o.take(), o.take());
                let tape = pass(GradMode::Params, x, Some(gy), |t, v| {
                    batchnorm::batch_norm(
                        t,
                        v,
                        &gamma,
                        &beta,
                        Stats::Batch { running_mean: &mut m, running_var: &mut s, momentum: 0.1, sync: None },
                        1e-5,
                    )
                });
                Box::new((tape, m, s))
            }),
        ),
        (
            "pgd_step",
            4 * bytes,
            vec![&x],
            Box::new(|mut o| {
                let mut xa = o.take();
                pgd::step(&mut xa, &gy, &x2, 2.0 / 255.0, 8.0 / 255.0);
                Box::new(xa)
            }),
        ),
    ];
    for (name, moved, consumed, f) in &cases {
        g.throughput(Throughput::Bytes(*moved));
        let fresh = || {
            let owned: Vec<Tensor> = consumed.iter().map(|t| (*t).clone()).collect();
            dev.sync();
            Owned(owned.into_iter())
        };
        g.bench_function(*name, |b| {
            b.iter_batched(
                fresh,
                |o| {
                    let out = f(o);
                    dev.sync();
                    out
                },
                BatchSize::PerIteration,
            )
        });
    }
    let [t, za, zn] = [0.5, -0.3, 1.0].map(|k| {
        Tensor::from_vec(&[128, 10], filled(&[128, 10]).data().iter().map(|v| v * k).collect()).to_device(dev)
    });
    let w = loss::Triangle { teacher_adv: 5.0 / 6.0, teacher_nat: 1.0 / 6.0, adv_nat: 1.0 };
    g.throughput(Throughput::Bytes(3 * 2 * 128 * 10 * 4));
    g.bench_function("triangle_loss_128x10", |b| synced(b, dev, || drop(loss::triangle(&t, &za, &zn, w, 1.0))));
    g.finish();
}

fn gpu(dev: &Device) -> bool {
    !matches!(dev, Device::Cpu)
}

/// Runs `group` on the CPU and, in a `--features cuda` build on a machine with a GPU, there too.
fn on_devices(c: &mut Criterion, group: fn(&mut Criterion, &Device)) {
    group(c, &Device::Cpu);
    if cfg!(feature = "cuda") {
        match Device::open("cuda", Default::default()) {
            Ok(d) => group(c, &d),
            Err(e) => println!("cuda benches skipped: {e}"),
        }
    }
}

fn conv_layers(c: &mut Criterion) {
    on_devices(c, conv_layers_on);
}

fn memory_bound(c: &mut Criterion) {
    on_devices(c, memory_bound_on);
}

/// The allocator the `mmard` binary runs with, so buffers cost here what they cost there.
#[global_allocator]
static ALLOC: mmard::alloc::MiMalloc = mmard::alloc::MiMalloc;

fn setup(_: &mut Criterion) {
    mmard::alloc::keep_freed_pages();
}

criterion_group!(benches, setup, sgemm_ceiling, conv_layers, resnet18, memory_bound);
criterion_main!(benches);
