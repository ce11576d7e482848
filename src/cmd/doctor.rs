//! `mmard doctor`: what this build and machine can run, checked, so that the first minute on a GPU
//! machine says whether the rest will work. It prints the build and the CPU; with `--device cuda`,
//! the driver and the GPU, the library files actually loaded (read from /proc/self/maps, so a
//! system copy that won over the intended one shows), whether the PTX loaded, and one small case
//! per kernel module against its CPU twin. The exit status is 0 only when everything asked for
//! works; each failure is named.
use mmard::ard::methods::Method;
use mmard::ard::step::{InnerPgd, Noise, Stepper};
use mmard::nn::optim::Sgd;
use mmard::nn::{Arch, Model};
use mmard::ops::conv2d::{ConvCfg, conv2d};
use mmard::ops::loss::{self, Triangle};
use mmard::ops::sgd::SgdCfg;
use mmard::ops::{batchnorm, elementwise, linear, pad, pgd, pool};
use mmard::tape::{Param, Tape, Var};
use mmard::twin::{self, Run, randn};
use mmard::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub fn doctor(device: &str, tf32: bool) -> i32 {
    let cuda = if cfg!(feature = "cuda") { "with CUDA" } else { "without CUDA (a CPU-only build)" };
    println!("mmard {} {cuda}", env!("CARGO_PKG_VERSION"));
    println!("cpu: {}, {} threads, {}", cpu_model(), rayon::current_num_threads(), simd());
    if device == "cpu" {
        println!("device cpu: ok (`mmard --device cuda doctor` checks a GPU)");
        return 0;
    }
    let dev = match Device::open(device, tf32) {
        Ok(d) => d,
        Err(e) => {
            libraries();
            println!("FAILED: {e}");
            return 1;
        }
    };
    gpu_details(&dev);
    libraries();
    println!("kernels: every module of kernels/*.cu loaded from PTX");
    let mut failed = Vec::new();
    for (module, what, rel, case) in cases() {
        // a failed launch panics with the kernel's name: caught, so the remaining checks still run
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (cpu, gpu) = (case(&Device::Cpu), case(&dev));
            cpu.iter().zip(&gpu).try_for_each(|(c, g)| twin::same_runs(what, g, c, rel))
        }));
        let outcome =
            outcome.unwrap_or_else(|p| Err(p.downcast_ref::<String>().cloned().unwrap_or_else(|| "panicked".into())));
        match outcome {
            Ok(()) => println!("check {module:<12} {what}: ok"),
            Err(e) => {
                println!("check {module:<12} FAILED: {e}");
                failed.push(module);
            }
        }
    }
    if failed.is_empty() {
        println!("doctor: every check passed on {dev}");
        0
    } else {
        println!("doctor: FAILED on {dev}: {}", failed.join(", "));
        1
    }
}

type Case = Box<dyn Fn(&Device) -> Vec<Run>>;

/// One case per kernel module: (module, what it runs, relative tolerance, the case on a device).
/// Tolerances are the CUDA tests' for the same ops (tests/cuda_parity.rs).
fn cases() -> Vec<(&'static str, &'static str, f64, Case)> {
    let mut rng = StdRng::seed_from_u64(1);
    let x = randn(&mut rng, &[4, 8, 12, 12], 1.0);
    let w = randn(&mut rng, &[16, 8, 3, 3], 0.12);
    let b = randn(&mut rng, &[16], 0.5);
    let gb = [randn(&mut rng, &[8], 0.5), randn(&mut rng, &[8], 0.5)];
    let x2 = randn(&mut rng, &[4, 8, 12, 12], 1.0);
    let z = [randn(&mut rng, &[16, 10], 3.0), randn(&mut rng, &[16, 10], 3.0), randn(&mut rng, &[16, 10], 3.0)];
    let fc = [randn(&mut rng, &[10, 72], 0.1), randn(&mut rng, &[10], 0.1)];
    let tape = |inputs: Vec<Tensor>, params: Vec<Tensor>, f: fn(&mut Tape, &[Var], &[Param]) -> Var| -> Case {
        Box::new(move |d: &Device| vec![twin::run(d, &inputs, &params, 1.0, f)])
    };
    vec![
        (
            "conv2d",
            "cuDNN 3x3 convolution with bias, forward and backward",
            1e-5,
            tape(vec![x.clone()], vec![w, b], |t, v, p| {
                conv2d(t, &v[0], &p[0], p.get(1), ConvCfg { stride: 1, pad: 1, groups: 1 })
            }),
        ),
        (
            "batchnorm",
            "train-mode BatchNorm + ReLU, forward and backward",
            1e-5,
            tape(vec![x.clone()], gb.to_vec(), |t, v, p| {
                let d = p[0].val.device();
                let (mut m, mut s) = (Tensor::zeros_on(&[8], &d), Tensor::full(&[8], 1.0).to_device(&d));
                let stats = batchnorm::Stats::Batch { running_mean: &mut m, running_var: &mut s, momentum: 0.1 };
                batchnorm::batch_norm_relu(t, &v[0], &p[0], &p[1], stats, 1e-5)
            }),
        ),
        (
            "elementwise",
            "ReLU, add and Swish",
            1e-6,
            tape(vec![x.clone(), x2], vec![], |t, v, _| {
                let a = elementwise::relu(t, &v[0]);
                let s = elementwise::swish(t, &v[1]);
                elementwise::add(t, &a, &s)
            }),
        ),
        (
            "pool",
            "2x2 max-pool and global average pool",
            1e-6,
            tape(vec![x.clone()], vec![], |t, v, _| {
                let m = pool::maxpool2(t, &v[0]);
                pool::avgpool(t, &m)
            }),
        ),
        (
            "pad",
            "zero padding and its crop",
            0.0,
            tape(vec![x.clone()], vec![], |t, v, _| {
                pad::pad2d(t, &v[0], pad::Pad { top: 1, bottom: 2, left: 0, right: 3 })
            }),
        ),
        (
            "linear",
            "cuBLAS linear layer with bias",
            1e-5,
            tape(vec![x.clone().reshape(&[x.numel() / 72, 72])], fc.to_vec(), |t, v, p| {
                linear::linear(t, &v[0], &p[0], &p[1])
            }),
        ),
        ("loss", "cross-entropy, KL and the MMARD triangle, weighted", 1e-6, Box::new(move |d: &Device| losses(d, &z))),
        ("pgd", "PGD start and steps", 0.0, Box::new(move |d: &Device| vec![pgd_steps(d, &x)])),
        ("sgd, tensor", "two PGD-AT steps of a SmallCNN (SGD, momentum)", 1e-3, Box::new(training)),
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

/// Two PGD-AT steps of a small SmallCNN; its first parameter after them (cuDNN's summation order
/// and PGD's sign() make whole steps agree to ~1e-3, as in the CUDA tests).
fn training(d: &Device) -> Vec<Run> {
    let arch = Arch::SmallCnn { in_channels: 1, size: 12, widths: [8, 8, 8], classes: 10 };
    let mut rng = StdRng::seed_from_u64(2);
    let x = randn(&mut rng, &[8, 1, 12, 12], 0.5);
    let x = Tensor::from_vec(x.shape(), x.host().iter().map(|v| v.abs().min(1.0)).collect()).to_device(d);
    let y: Vec<usize> = (0..8).collect();
    let mut m = Model::new(&arch, Some(3));
    m.to_device(d);
    let mut opt = Sgd::new(SgdCfg { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: false }, &m.params);
    let mut st = Stepper::new(Method::PgdAt.objective(), InnerPgd { eps: 0.1, step: 0.025, steps: 2 });
    let mut r = StdRng::seed_from_u64(7);
    for _ in 0..2 {
        st.step(&mut m, None, &mut opt, &x, &y, Noise::Draw(&mut r)).unwrap_or_else(|e| panic!("{e}"));
    }
    m.params.trainable().map(|id| output(m.params.get(id).to_device(&Device::Cpu))).collect()
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |k: &str| info.lines().find(|l| l.starts_with(k)).and_then(|l| l.split(':').nth(1)).map(str::trim);
    match (field("model name"), field("cpu family"), field("model\t")) {
        (Some(n), Some(f), Some(m)) => format!("{n} (family {f} model {m})"),
        (Some(n), ..) => n.to_string(),
        _ => std::env::consts::ARCH.to_string(),
    }
}

fn simd() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "AVX2";
        }
    }
    "no AVX2"
}

/// The CUDA libraries this process has mapped, by file: what the dynamic loader actually chose.
fn libraries() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| ["libcuda.", "libcublas", "libcudnn", "libnvrtc"].iter().any(|n| p.contains(n)))
        .collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        println!("libraries: no CUDA library is loaded");
    }
    for p in paths {
        println!("library: {p}");
    }
}

#[cfg(feature = "cuda")]
fn gpu_details(dev: &Device) {
    let Device::Cuda(g) = dev else { return };
    let ctx = g.stream.context();
    let mut driver = 0;
    let mut blas = 0;
    // SAFETY: each call writes one int; the cuBLAS handle is the GPU's own, alive for the process.
    unsafe {
        cudarc::driver::sys::cuDriverGetVersion(&mut driver);
        cudarc::cublas::sys::cublasGetVersion_v2(*g.blas.handle(), &mut blas);
    }
    let (major, minor) = ctx.compute_capability().unwrap_or((0, 0));
    let mib = ctx.total_mem().unwrap_or(0) >> 20;
    println!("gpu: {dev}, compute capability {major}.{minor}, {mib} MiB");
    println!("driver: CUDA {}.{} (the driver's API version)", driver / 1000, driver % 1000 / 10);
    println!("cuBLAS: version {blas}; cuDNN: version {}", cudarc::cudnn::result::get_version());
}

#[cfg(not(feature = "cuda"))]
fn gpu_details(_: &Device) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case runs on the CPU and gives the same result twice: what the GPU is compared with.
    #[test]
    fn cases_run_on_the_cpu() {
        for (module, what, _, case) in cases() {
            let (a, b) = (case(&Device::Cpu), case(&Device::Cpu));
            assert!(!a.is_empty(), "{module}: no output");
            for (x, y) in a.iter().zip(&b) {
                twin::same_runs(what, x, y, 0.0).unwrap();
            }
        }
    }
}
