//! Criterion benches of the CPU conv layers of CIFAR ResNet-18 at batch 32 (throughput in FLOP/s,
//! shown as elem/s) and of whole ResNet-18 passes in each GradMode. `bench/pytorch_ops.py` times
//! the same work in PyTorch for the side-by-side in BENCHMARKS.md.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mmard::nn::{Arch, Model};
use mmard::ops::conv2d::{backward, forward, ConvCfg};
use mmard::ops::loss;
use mmard::tape::{GradMode, Tape};
use mmard::Tensor;

const BATCH: usize = 32;
/// (cin, cout, side, kernel, stride) of every distinct conv layer of ResNet-18 on 32x32 inputs.
const LAYERS: [(usize, usize, usize, usize, usize); 11] = [
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

fn filled(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect())
}

fn conv_layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_resnet18_b32");
    g.sample_size(10);
    for (cin, cout, side, k, stride) in LAYERS {
        let cfg = ConvCfg { stride, pad: k / 2, groups: 1 };
        let (x, w) = (filled(&[BATCH, cin, side, side]), filled(&[cout, cin, k, k]));
        let gy = forward(&x, &w, None, cfg);
        let flops = 2 * gy.numel() * cin * k * k;
        let id = format!("{cin}-{cout}_{side}_k{k}s{stride}");
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_function(BenchmarkId::new("forward", &id), |b| b.iter(|| forward(&x, &w, None, cfg)));
        g.bench_function(BenchmarkId::new("backward_data", &id), |b| b.iter(|| backward(&x, &w, &gy, cfg, true, false)));
        g.bench_function(BenchmarkId::new("backward_filter", &id), |b| b.iter(|| backward(&x, &w, &gy, cfg, false, true)));
    }
    g.finish();
}

fn resnet18(c: &mut Criterion) {
    let mut g = c.benchmark_group("resnet18_b32");
    g.sample_size(10);
    let mut m = Model::new(&Arch::ResNet18 { in_channels: 3, width: 64, classes: 10 }, Some(0));
    let x = filled(&[BATCH, 3, 32, 32]).data().iter().map(|v| v + 0.5).collect::<Vec<_>>();
    let x = Tensor::from_vec(&[BATCH, 3, 32, 32], x);
    let y: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    for (mode, name) in [(GradMode::None, "eval_forward"), (GradMode::Input, "input_grad"), (GradMode::Params, "train_step_grads")] {
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

criterion_group!(benches, conv_layers, resnet18);
criterion_main!(benches);
