//! Where a tensor lives: the CPU, or (with `--features cuda`) a GPU. Every op dispatches on
//! `Tensor::gpu()`, so call sites do not change with the device.
use crate::error::{Error, Result};

/// The GPU half of an op: when `$t` lives on a GPU, binds its `Arc<Gpu>` to `$g` and returns
/// `$body` from the enclosing function; the CPU code after it runs otherwise. Without
/// `--features cuda` it expands to nothing, so the CPU build needs no CUDA.
#[macro_export]
macro_rules! on_gpu {
    ($t:expr, |$g:ident| $body:expr) => {
        #[cfg(feature = "cuda")]
        if let Some($g) = $t.gpu().cloned() {
            return $body;
        }
    };
}

#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(std::sync::Arc<crate::cuda::Gpu>),
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            #[cfg(feature = "cuda")]
            (Device::Cuda(a), Device::Cuda(b)) => std::sync::Arc::ptr_eq(a, b),
            #[cfg(feature = "cuda")]
            _ => false,
        }
    }
}

/// How cuDNN may compute a GPU's convolutions (`--tf32`, `--deterministic`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GpuOptions {
    /// TensorFloat-32 allowed (faster, inputs rounded to 10 mantissa bits).
    pub tf32: bool,
    /// Only algorithms that give the same bits on every run (no atomics in the backward passes).
    pub deterministic: bool,
}

impl Device {
    /// `cpu`, `cuda` or `cuda:N`; opening a GPU checks the driver, cuBLAS, cuDNN and the kernels.
    pub fn open(name: &str, opts: GpuOptions) -> Result<Device> {
        let ordinal = match name {
            "cpu" => return Ok(Device::Cpu),
            "cuda" => 0,
            _ => match name.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n,
                None => {
                    return Err(Error::Msg(format!("--device: expected cpu, cuda or cuda:N, got `{name}`")));
                }
            },
        };
        Self::cuda(ordinal, opts)
    }

    /// `open` for one rank of a data-parallel job: `cuda` alone is GPU `local_rank` modulo the
    /// GPUs this process sees (every GPU of the node, or the one its launcher left visible).
    pub fn open_for_rank(name: &str, opts: GpuOptions, local_rank: usize) -> Result<Device> {
        #[cfg(feature = "cuda")]
        if name == "cuda" && local_rank > 0 {
            let seen = cudarc::driver::CudaContext::device_count().map_or(1, |n| n.max(1) as usize);
            return Self::cuda(local_rank % seen, opts);
        }
        let _ = local_rank;
        Self::open(name, opts)
    }

    #[cfg(feature = "cuda")]
    fn cuda(ordinal: usize, opts: GpuOptions) -> Result<Device> {
        Ok(Device::Cuda(crate::cuda::Gpu::get(ordinal, opts)?))
    }

    #[cfg(not(feature = "cuda"))]
    fn cuda(ordinal: usize, _opts: GpuOptions) -> Result<Device> {
        Err(Error::Msg(format!(
            "--device cuda:{ordinal}: this mmard was built without CUDA support; rebuild it with `cargo build --release --features cuda` (README.md, \"CUDA\")"
        )))
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => write!(f, "{g:?}"),
        }
    }
}

/// What the host asked of a GPU, counted at the launch seam (`cuda::Gpu::launched` and its
/// copies): kernels and library calls launched (a cuDNN or cuBLAS call counts once, whatever it
/// runs inside), copies to the device, and the times the host waited for the GPU (a copy back, a
/// synchronisation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub launches: u64,
    pub uploads: u64,
    pub waits: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts { launches: self.launches - o.launches, uploads: self.uploads - o.uploads, waits: self.waits - o.waits }
    }
}

impl Device {
    /// What the host has asked of the GPU so far; none on the CPU.
    pub fn counts(&self) -> Option<Counts> {
        match self {
            Device::Cpu => None,
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => Some(g.counts()),
        }
    }

    /// Waits until the device has finished the work queued so far (timing; a no-op on the CPU).
    pub fn sync(&self) {
        #[cfg(feature = "cuda")]
        if let Device::Cuda(g) = self {
            g.sync();
        }
    }

    /// `f`'s result and the time it took in ms: on a GPU between CUDA events recorded before and
    /// after it (the device's time for the work it queued), on the CPU by the clock.
    pub fn time_ms<R>(&self, f: impl FnOnce() -> R) -> (R, f64) {
        match self {
            Device::Cpu => {
                let t = std::time::Instant::now();
                let r = f();
                (r, t.elapsed().as_secs_f64() * 1e3)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => g.time_ms(f),
        }
    }

    /// `f`'s result and, on a GPU, the time in ms of the convolutions it ran when run again alone
    /// (`mmard bench step`'s floor); none on the CPU.
    pub fn convolutions_alone_ms<R>(&self, f: impl FnOnce() -> R) -> (R, Option<f64>) {
        match self {
            Device::Cpu => (f(), None),
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => {
                let (r, ms) = g.convolutions_alone_ms(f);
                (r, Some(ms))
            }
        }
    }

    /// Device memory in use, in MiB, as the driver reports it (0 on the CPU): with one process on
    /// the GPU, what this one holds, cached allocations included.
    pub fn memory_used_mib(&self) -> f64 {
        match self {
            Device::Cpu => 0.0,
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => g.memory_used_mib(),
        }
    }
}
