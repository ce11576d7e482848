//! `mmard doctor`: what this build and machine can run, checked, so that the first minute on a GPU
//! machine says whether the rest will work. It prints the build and the CPU; with `--device cuda`,
//! the driver and the GPU, the library files actually loaded (read from /proc/self/maps, so a
//! system copy that won over the intended one shows), whether the PTX loaded, and one small case
//! per kernel module against its CPU twin. The exit status is 0 only when everything asked for
//! works; each failure is named.
use mmard::twin::checks;
use mmard::{Device, GpuOptions};

pub fn doctor(device: &str, opts: GpuOptions) -> i32 {
    let cuda = if cfg!(feature = "cuda") { "with CUDA" } else { "without CUDA (a CPU-only build)" };
    println!("mmard {} {cuda}", env!("CARGO_PKG_VERSION"));
    println!("cpu: {}, {} threads, {}", cpu_model(), rayon::current_num_threads(), simd());
    if device == "cpu" {
        println!("device cpu: ok (`mmard --device cuda doctor` checks a GPU)");
        return 0;
    }
    let dev = match Device::open(device, opts) {
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
    for c in checks::all() {
        // a failed launch panics with the kernel's name: caught, so the remaining checks still run
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.compare(&dev)));
        let outcome =
            outcome.unwrap_or_else(|p| Err(p.downcast_ref::<String>().cloned().unwrap_or_else(|| "panicked".into())));
        match outcome {
            Ok(()) => println!("check {:<12} {}: ok", c.module, c.what),
            Err(e) => {
                println!("check {:<12} FAILED: {e}", c.module);
                failed.push(c.module);
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
