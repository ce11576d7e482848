//! The CUDA device (`--features cuda`): one context and stream per GPU with its cuBLAS and cuDNN
//! handles and the kernels of `kernels/*.cu`, loaded once. Everything is dynamically loaded, so a
//! machine without a driver, GPU, cuBLAS or cuDNN gets an error that names what is missing.
mod conv;
mod memory;
pub mod shape;

pub use conv::ConvPlan;
pub use memory::{Buf, Mirror};

use crate::error::{Error, Result};
use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

mod ptx {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

/// One typed launcher per kernel of `kernels/*.cu`, generated from its signature by build.rs:
/// `kernels::pgd_step(&gpu, cfg, x_adv, grad, x0, alpha, eps, n)`.
pub mod kernels {
    include!(concat!(env!("OUT_DIR"), "/launchers.rs"));
}

const LIBS_HINT: &str = "put the folders holding the CUDA libraries on LD_LIBRARY_PATH (with PyTorch installed by pip: \
    every <venv>/lib/python3.*/site-packages/nvidia/*/lib, e.g. nvidia/cu13/lib and nvidia/cudnn/lib; README.md, \"CUDA\")";

pub struct Gpu {
    pub ordinal: usize,
    pub name: String,
    pub stream: Arc<CudaStream>,
    pub blas: CudaBlas,
    dnn: conv::Handle,
    /// How cuDNN may compute (TF32 off unless asked for: it rounds inputs to 10 bits).
    pub opts: crate::GpuOptions,
    funcs: HashMap<&'static str, CudaFunction>,
    sms: u32,
    /// Everything that touches the cuDNN handle (plans, workspace, launches) goes through this lock.
    dnn_state: Mutex<conv::DnnState>,
    /// launches, copies up, waits (`counts`)
    counts: [AtomicU64; 3],
    /// The last labels uploaded (`labels`).
    labels: Mutex<Mirror<i32>>,
}

// SAFETY: cudarc leaves cuDNN's handle and descriptors !Send/!Sync because a handle must not be used
// from two threads at once; here every use of them happens under `dnn_state`'s lock, and the
// descriptors are never changed after a plan is built.
unsafe impl Send for Gpu {}
unsafe impl Sync for Gpu {}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuda:{} ({})", self.ordinal, self.name)
    }
}

fn missing(what: &str, detail: String) -> Error {
    Error::Msg(format!("--device cuda: {what}: {detail}"))
}

impl Gpu {
    /// The GPU `ordinal` with `opts`, opened once per process (later calls share it).
    pub fn get(ordinal: usize, opts: crate::GpuOptions) -> Result<Arc<Gpu>> {
        type Open = HashMap<(usize, crate::GpuOptions), Arc<Gpu>>;
        static OPEN: OnceLock<Mutex<Open>> = OnceLock::new();
        let mut open = OPEN.get_or_init(Default::default).lock().unwrap();
        if let Some(g) = open.get(&(ordinal, opts)) {
            return Ok(g.clone());
        }
        let g = Arc::new(Self::open(ordinal, opts)?);
        open.insert((ordinal, opts), g.clone());
        Ok(g)
    }

    fn open(ordinal: usize, opts: crate::GpuOptions) -> Result<Gpu> {
        // SAFETY: these only try to dlopen the libraries.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(missing(
                "no NVIDIA driver",
                format!(
                    "libcuda.so could not be loaded; is this a machine with an NVIDIA GPU and driver? If the driver is installed, {LIBS_HINT}"
                ),
            ));
        }
        let count =
            CudaContext::device_count().map_err(|e| missing("the driver reports no usable GPU", e.to_string()))?;
        if ordinal >= count as usize {
            return Err(missing("no such GPU", format!("asked for cuda:{ordinal}, the driver sees {count} GPU(s)")));
        }
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(missing("cuBLAS not found", format!("libcublas.so.13 could not be loaded; {LIBS_HINT}")));
        }
        if !unsafe { cudarc::cudnn::sys::is_culib_present() } {
            return Err(missing("cuDNN not found", format!("libcudnn.so.9 could not be loaded; {LIBS_HINT}")));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| missing("could not open the GPU", e.to_string()))?;
        // One stream per GPU: no cross-stream events needed, so none are recorded per launch.
        unsafe { ctx.disable_event_tracking() };
        // The stream-ordered pool keeps what it has: with the default threshold (0) it would hand
        // its memory back at every synchronisation, i.e. every training step, and map it again.
        // Only speed depends on it: without pools (some virtualised GPUs) cudarc allocates synchronously.
        if ctx.has_async_alloc() {
            use cudarc::driver::{result, sys};
            let mut keep = u64::MAX;
            // SAFETY: the device is the context's; the attribute takes a u64.
            let kept = unsafe {
                result::device::get_default_mem_pool(ctx.cu_device()).and_then(|pool| {
                    result::mem_pool::set_attribute(
                        pool,
                        sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                        &mut keep as *mut u64 as *mut _,
                    )
                })
            };
            if let Err(e) = kept {
                eprintln!(
                    "warning: cuda:{ordinal}: could not keep the memory pool's memory ({e}); allocations will be slower"
                );
            }
        }
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let sms = ctx
            .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .unwrap_or(32) as u32;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| missing("cuBLAS failed to start", e.to_string()))?;
        let dnn = conv::Handle::new(&stream).map_err(|e| missing("cuDNN failed to start", e.to_string()))?;
        let mut funcs = HashMap::new();
        for (module, src, names) in ptx::MODULES {
            let m = ctx.load_module(cudarc::nvrtc::Ptx::from_src(*src)).map_err(|e| {
                missing(
                    "the driver rejected the kernels",
                    format!("kernels/{module}.cu: {e}. The PTX must come from an nvcc no newer than the driver (README.md, \"CUDA\": the pinned 13.0 set)"),
                )
            })?;
            for &n in *names {
                funcs.insert(
                    n,
                    m.load_function(n).map_err(|e| missing("a kernel is missing", format!("{n} in {module}: {e}")))?,
                );
            }
        }
        let (dnn_state, counts, labels) = Default::default();
        Ok(Gpu { ordinal, name, stream, blas, dnn, opts, funcs, sms, dnn_state, counts, labels })
    }

    pub fn func(&self, name: &str) -> &CudaFunction {
        self.funcs.get(name).unwrap_or_else(|| panic!("kernel {name} is not in kernels/*.cu"))
    }

    /// A grid-stride launch over `n` elements on this GPU (`shape::grid`).
    pub fn grid(&self, n: usize) -> LaunchConfig {
        shape::grid(n, self.sms)
    }

    /// A channel × slice grid for per-channel sums over `n` images of `c` channels
    /// (`shape::slices`): the launch, the number of slices, images per slice.
    pub fn slices(&self, n: usize, c: usize) -> (LaunchConfig, usize, usize) {
        shape::slices(n, c, self.sms)
    }

    /// A grid-stride launch with a warp per row (`shape::rows`).
    pub fn rows(&self, n: usize) -> LaunchConfig {
        shape::rows(n, self.sms)
    }

    /// One block per item (`shape::per_block`).
    pub fn per_block(&self, items: usize) -> LaunchConfig {
        shape::per_block(items)
    }

    /// Total minus free device memory, in MiB.
    pub fn memory_used_mib(&self) -> f64 {
        let (free, total) = self.stream.context().mem_get_info().unwrap_or((0, 0));
        (total - free) as f64 / (1 << 20) as f64
    }

    /// Waits for everything queued on the GPU (benchmarks time with it).
    pub fn sync(&self) {
        self.waited();
        self.stream.synchronize().unwrap_or_else(|e| panic!("cuda:{}: {e}", self.ordinal));
    }

    /// `f`'s result and the GPU time in ms between events recorded on the stream before and after
    /// it (`Device::time_ms`); reading it waits for the second.
    pub fn time_ms<R>(&self, f: impl FnOnce() -> R) -> (R, f64) {
        let fail = |e: cudarc::driver::DriverError| format!("cuda:{}: timing event: {e}", self.ordinal);
        let event = || {
            let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
            self.stream.record_event(flags).unwrap_or_else(|e| panic!("{}", fail(e)))
        };
        let start = event();
        let r = f();
        let end = event();
        self.waited();
        (r, start.elapsed_ms(&end).unwrap_or_else(|e| panic!("{}", fail(e))) as f64)
    }

    /// `labels` as the loss kernels read them, uploaded once per batch: every loss of a step (one
    /// per PGD iteration, then the outer step's) reads the same labels, so only a new batch's are
    /// copied up.
    pub fn labels(&self, labels: &[usize]) -> Arc<CudaSlice<i32>> {
        let host: Vec<i32> = labels.iter().map(|&l| l as i32).collect();
        self.labels.lock().unwrap_or_else(|e| e.into_inner()).get(self, host)
    }

    /// Counts a kernel or library call (the generated launchers, cuDNN, cuBLAS).
    pub fn launched(&self) {
        self.counts[0].fetch_add(1, Relaxed);
    }
    fn uploaded(&self) {
        self.counts[1].fetch_add(1, Relaxed);
    }
    fn waited(&self) {
        self.counts[2].fetch_add(1, Relaxed);
    }

    /// The counts so far.
    pub fn counts(&self) -> crate::device::Counts {
        let [l, u, w] = self.counts.each_ref().map(|c| c.load(Relaxed));
        crate::device::Counts { launches: l, uploads: u, waits: w }
    }
}
