//! Criterion benches: the conv layers of CIFAR ResNet-18 and WRN-34-10 at batch 32 and of SmallCNN
//! at batch 128 (throughput in direct-convolution FLOP/s, shown as elem/s, also for the Winograd
//! layers, whose transformed filters are cached after the first call as in the PGD inner loop),
//! whole ResNet-18 passes in each GradMode. The conv layers also run on the GPU in a
//! `--features cuda` build on a machine with one. The memory-bound kernels are `mmard bench
//! kernels`. `bench/pytorch_ops.py` times the same work in PyTorch for the side-by-side in
//! BENCHMARKS.md.
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mmard::nn::{Arch, Model, ResNet18Cfg};
use mmard::ops::conv2d::{ConvCfg, backward, forward};
use mmard::ops::gemm::Mat;
use mmard::ops::loss;
use mmard::tape::{GradMode, Tape};
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

/// The allocator the `mmard` binary runs with, so buffers cost here what they cost there.
#[global_allocator]
static ALLOC: mmard::alloc::MiMalloc = mmard::alloc::MiMalloc;

fn setup(_: &mut Criterion) {
    mmard::alloc::keep_freed_pages();
}

criterion_group!(benches, setup, sgemm_ceiling, conv_layers, resnet18);
criterion_main!(benches);
