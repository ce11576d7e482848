//! cuDNN convolutions by measurement: per shape and direction, `cudnnFind*` times every algorithm
//! once (when the direction is first run) and the plan keeps the ones that worked, fastest first;
//! a launch that fails moves on to the next (an algorithm can measure well and still fail later,
//! e.g. for its workspace), and `--deterministic` keeps only deterministic ones. One workspace,
//! shared by all plans, is grown to what the algorithm in use asks for. cudarc's safe cuDNN types
//! keep their handle and descriptors private, so this file holds its own, raw.
use super::Gpu;
use cudarc::cudnn::result::{self, CudnnError};
use cudarc::cudnn::sys::{self as dnn, cudnnDeterminism_t, cudnnStatus_t};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, MutexGuard, OnceLock};

/// Input shape, weight shape, stride, padding, groups.
type Key = ([usize; 4], [usize; 4], usize, usize, usize);

/// A raw cuDNN object and the call that destroys it.
struct Raw<T: Copy>(T, unsafe fn(T) -> Result<(), CudnnError>);

impl<T: Copy> Drop for Raw<T> {
    fn drop(&mut self) {
        // SAFETY: made by the matching create call and dropped once.
        let _ = unsafe { (self.1)(self.0) };
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("cuDNN {what} failed: {e}")
}

/// The cuDNN handle, on the GPU's stream.
pub(super) struct Handle(Raw<dnn::cudnnHandle_t>);

impl Handle {
    pub(super) fn new(stream: &cudarc::driver::CudaStream) -> Result<Handle, CudnnError> {
        let h = Raw(result::create_handle()?, result::destroy_handle);
        // SAFETY: the handle was just made; the stream outlives it (both live as long as the Gpu).
        unsafe { result::set_stream(h.0, stream.cu_stream() as dnn::cudaStream_t) }?;
        Ok(Handle(h))
    }
}

/// The plans made so far and the workspace they share.
#[derive(Default)]
pub(super) struct DnnState {
    plans: HashMap<Key, Arc<ConvPlan>>,
    workspace: Option<CudaSlice<u8>>,
    /// The convolutions run while `convolutions_alone_ms` records, in order.
    recorded: Option<Vec<(Key, Dir)>>,
}

/// The three directions of a convolution.
#[derive(Clone, Copy, Debug)]
enum Dir {
    Forward,
    BackwardData,
    BackwardFilter,
}

/// A direction's usable algorithms, fastest first, with their workspace bytes, and which one is
/// in use (the first that has not failed).
struct Candidates {
    list: Vec<(u32, usize)>,
    at: AtomicUsize,
}

/// A convolution's cuDNN descriptors, made once per shape, and its algorithms, measured once per
/// direction.
pub struct ConvPlan {
    x: Raw<dnn::cudnnTensorDescriptor_t>,
    w: Raw<dnn::cudnnFilterDescriptor_t>,
    y: Raw<dnn::cudnnTensorDescriptor_t>,
    conv: Raw<dnn::cudnnConvolutionDescriptor_t>,
    algos: [OnceLock<Candidates>; 3],
    /// Input and weight shapes, stride, padding, groups: what the plan was made for.
    key: Key,
    /// Output shape.
    pub out: [usize; 4],
}

// SAFETY: the descriptors are only read after the plan is built, and only under the Gpu's cuDNN lock.
unsafe impl Send for ConvPlan {}
unsafe impl Sync for ConvPlan {}

fn dims(s: [usize; 4]) -> [i32; 4] {
    s.map(|v| v as i32)
}

/// The fields of the three `cudnnConvolution*AlgoPerf_t`, which differ only in the algorithm's type.
trait Perf: Copy {
    /// algorithm, status, workspace bytes, determinism
    fn parts(&self) -> (u32, cudnnStatus_t, usize, cudnnDeterminism_t);
}

macro_rules! perf {
    ($($t:ty),*) => {$(
        impl Perf for $t {
            fn parts(&self) -> (u32, cudnnStatus_t, usize, cudnnDeterminism_t) {
                (self.algo as u32, self.status, self.memory, self.determinism)
            }
        }
    )*};
}
perf!(
    dnn::cudnnConvolutionFwdAlgoPerf_t,
    dnn::cudnnConvolutionBwdDataAlgoPerf_t,
    dnn::cudnnConvolutionBwdFilterAlgoPerf_t
);

/// More than any direction has algorithms: cuDNN returns as many as there are.
const MAX_ALGOS: usize = 16;

/// The usable algorithms of one `cudnnFind*` call, fastest first (its order).
fn measured<P: Perf>(
    find: impl FnOnce(i32, *mut i32, *mut P) -> cudnnStatus_t,
    deterministic: bool,
) -> Result<Vec<(u32, usize)>, CudnnError> {
    // SAFETY: plain C structs, filled by cuDNN; all zeros is a valid value of each.
    let mut perf = vec![unsafe { std::mem::zeroed::<P>() }; MAX_ALGOS];
    let mut n = 0;
    find(MAX_ALGOS as i32, &mut n, perf.as_mut_ptr()).result()?;
    Ok(perf[..n.clamp(0, MAX_ALGOS as i32) as usize]
        .iter()
        .map(Perf::parts)
        .filter(|&(_, status, _, det)| {
            status == cudnnStatus_t::CUDNN_STATUS_SUCCESS
                && (!deterministic || det == cudnnDeterminism_t::CUDNN_DETERMINISTIC)
        })
        .map(|(algo, _, bytes, _)| (algo, bytes))
        .collect())
}

impl Gpu {
    /// The plan for a convolution of `x` by `w` (both NCHW/OIHW, f32).
    pub fn conv_plan(&self, x: [usize; 4], w: [usize; 4], stride: usize, pad: usize, groups: usize) -> Arc<ConvPlan> {
        let key = (x, w, stride, pad, groups);
        let mut st = self.dnn();
        if let Some(p) = st.plans.get(&key) {
            return p.clone();
        }
        let out = [x[0], w[0], (x[2] + 2 * pad - w[2]) / stride + 1, (x[3] + 2 * pad - w[3]) / stride + 1];
        let (f32_, nchw) = (dnn::cudnnDataType_t::CUDNN_DATA_FLOAT, dnn::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW);
        let tensor = |s: [usize; 4], what| {
            let d = Raw(
                result::create_tensor_descriptor().unwrap_or_else(|e| fail(what, e)),
                result::destroy_tensor_descriptor,
            );
            let [n, c, h, w] = dims(s);
            // SAFETY: a fresh descriptor.
            unsafe { result::set_tensor4d_descriptor(d.0, nchw, f32_, [n, c, h, w]) }.unwrap_or_else(|e| fail(what, e));
            d
        };
        let (xd, yd) = (tensor(x, "input descriptor"), tensor(out, "output descriptor"));
        let wd = Raw(
            result::create_filter_descriptor().unwrap_or_else(|e| fail("filter descriptor", e)),
            result::destroy_filter_descriptor,
        );
        // SAFETY: a fresh descriptor.
        unsafe { result::set_filter4d_descriptor(wd.0, f32_, nchw, dims(w)) }
            .unwrap_or_else(|e| fail("filter descriptor", e));
        let conv = Raw(
            result::create_convolution_descriptor().unwrap_or_else(|e| fail("conv descriptor", e)),
            result::destroy_convolution_descriptor,
        );
        let (p, s) = (pad as i32, stride as i32);
        let math = if self.opts.tf32 {
            dnn::cudnnMathType_t::CUDNN_DEFAULT_MATH
        } else {
            dnn::cudnnMathType_t::CUDNN_FMA_MATH
        };
        // SAFETY: a fresh descriptor.
        unsafe {
            result::set_convolution2d_descriptor(
                conv.0,
                p,
                p,
                s,
                s,
                1,
                1,
                dnn::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                f32_,
            )
            .and_then(|_| result::set_convolution_group_count(conv.0, groups as i32))
            .and_then(|_| result::set_convolution_math_type(conv.0, math))
        }
        .unwrap_or_else(|e| fail("conv descriptor", e));
        let plan = Arc::new(ConvPlan { x: xd, w: wd, y: yd, conv, algos: Default::default(), key, out });
        st.plans.insert(key, plan.clone());
        plan
    }

    /// The plan's algorithms for `dir`, measured by `cudnnFind*` on first use.
    fn candidates<'p>(&self, p: &'p ConvPlan, dir: Dir) -> &'p Candidates {
        p.algos[dir as usize].get_or_init(|| {
            let _st = self.dnn();
            let (h, det) = (self.dnn.0.0, self.opts.deterministic);
            let (x, w, c, y) = (p.x.0, p.w.0, p.conv.0, p.y.0);
            // SAFETY: live handle and descriptors; cuDNN allocates the buffers it times with.
            let list = unsafe {
                match dir {
                    Dir::Forward => {
                        measured(|r, n, o| dnn::cudnnFindConvolutionForwardAlgorithm(h, x, w, c, y, r, n, o), det)
                    }
                    Dir::BackwardData => {
                        measured(|r, n, o| dnn::cudnnFindConvolutionBackwardDataAlgorithm(h, w, y, c, x, r, n, o), det)
                    }
                    Dir::BackwardFilter => measured(
                        |r, n, o| dnn::cudnnFindConvolutionBackwardFilterAlgorithm(h, x, y, c, w, r, n, o),
                        det,
                    ),
                }
            }
            .unwrap_or_else(|e| fail(&format!("{dir:?} algorithm search"), e));
            if list.is_empty() {
                panic!(
                    "cuDNN has no {}{dir:?} algorithm for a convolution of {:?} by {:?}{}",
                    if det { "deterministic " } else { "" },
                    p.key.0,
                    p.key.1,
                    if det { "; run without --deterministic" } else { "" }
                );
            }
            Candidates { list, at: AtomicUsize::new(0) }
        })
    }

    /// The algorithm `dir` of `p` uses now (the fastest that has not failed), for tests.
    pub fn conv_algorithm(&self, p: &ConvPlan, forward: bool) -> u32 {
        let c = self.candidates(p, if forward { Dir::Forward } else { Dir::BackwardData });
        c.list[c.at.load(Relaxed)].0
    }

    /// The cuDNN lock, with this GPU's context current on the thread (cuDNN uses whatever is).
    fn dnn(&self) -> MutexGuard<'_, DnnState> {
        let st = self.dnn_state.lock().unwrap_or_else(|e| e.into_inner());
        self.stream.context().bind_to_thread().unwrap_or_else(|e| panic!("cuda:{}: {e}", self.ordinal));
        st
    }

    /// Runs one cuDNN call of `dir`, `call(algorithm, workspace)`, holding the cuDNN lock: with the
    /// algorithm in use, or, when its workspace cannot be had or the call fails, the next ones.
    fn run(&self, p: &ConvPlan, dir: Dir, call: impl Fn(u32, &mut CudaSlice<u8>) -> Result<(), CudnnError>) {
        let c = self.candidates(p, dir);
        let mut st = self.dnn();
        if let Some(r) = st.recorded.as_mut() {
            r.push((p.key, dir));
        }
        let mut failures = Vec::new();
        for (i, &(algo, bytes)) in c.list.iter().enumerate().skip(c.at.load(Relaxed)) {
            if st.workspace.as_ref().is_none_or(|w| w.len() < bytes.max(1)) {
                st.workspace = None; // the old one is freed before the larger one is asked for
                match self.stream.alloc_zeros::<u8>(bytes.max(1)) {
                    Ok(w) => st.workspace = Some(w),
                    Err(e) => {
                        failures.push(format!("algorithm {algo}: workspace of {bytes} bytes: {e}"));
                        continue;
                    }
                }
            }
            self.launched();
            match call(algo, st.workspace.as_mut().expect("made above")) {
                Ok(()) => return c.at.store(i, Relaxed),
                Err(e) => failures.push(format!("algorithm {algo}: {e}")),
            }
        }
        panic!("cuDNN {dir:?} failed for a convolution of {:?} by {:?}: {}", p.key.0, p.key.1, failures.join("; "))
    }

    /// y = conv(x, w).
    pub fn conv_forward(&self, p: &ConvPlan, x: &CudaSlice<f32>, w: &CudaSlice<f32>, y: &mut CudaSlice<f32>) {
        let s = &self.stream;
        let ((xp, _a), (wp, _b), (yp, _c)) = (x.device_ptr(s), w.device_ptr(s), y.device_ptr_mut(s));
        self.run(p, Dir::Forward, |algo, ws| {
            let len = ws.len();
            let (wsp, _d) = ws.device_ptr_mut(s);
            // SAFETY: the descriptors were made from these buffers' shapes (the callers check them);
            // `algo` came from cuDNN for this direction.
            unsafe {
                result::convolution_forward(
                    self.dnn.0.0,
                    &1.0f32 as *const f32 as *const c_void,
                    p.x.0,
                    xp as *const c_void,
                    p.w.0,
                    wp as *const c_void,
                    p.conv.0,
                    std::mem::transmute::<u32, dnn::cudnnConvolutionFwdAlgo_t>(algo),
                    wsp as *mut c_void,
                    len,
                    &0.0f32 as *const f32 as *const c_void,
                    p.y.0,
                    yp as *mut c_void,
                )
            }
        });
    }

    /// dx = conv_transpose(dy, w).
    pub fn conv_backward_data(&self, p: &ConvPlan, dy: &CudaSlice<f32>, w: &CudaSlice<f32>, dx: &mut CudaSlice<f32>) {
        let s = &self.stream;
        let ((dyp, _a), (wp, _b), (dxp, _c)) = (dy.device_ptr(s), w.device_ptr(s), dx.device_ptr_mut(s));
        self.run(p, Dir::BackwardData, |algo, ws| {
            let len = ws.len();
            let (wsp, _d) = ws.device_ptr_mut(s);
            // SAFETY: as in `conv_forward`.
            unsafe {
                result::convolution_backward_data(
                    self.dnn.0.0,
                    &1.0f32 as *const f32 as *const c_void,
                    p.w.0,
                    wp as *const c_void,
                    p.y.0,
                    dyp as *const c_void,
                    p.conv.0,
                    std::mem::transmute::<u32, dnn::cudnnConvolutionBwdDataAlgo_t>(algo),
                    wsp as *mut c_void,
                    len,
                    &0.0f32 as *const f32 as *const c_void,
                    p.x.0,
                    dxp as *mut c_void,
                )
            }
        });
    }

    /// dw = the filter gradient of dy at x.
    pub fn conv_backward_filter(&self, p: &ConvPlan, x: &CudaSlice<f32>, dy: &CudaSlice<f32>, dw: &mut CudaSlice<f32>) {
        let s = &self.stream;
        let ((xp, _a), (dyp, _b), (dwp, _c)) = (x.device_ptr(s), dy.device_ptr(s), dw.device_ptr_mut(s));
        self.run(p, Dir::BackwardFilter, |algo, ws| {
            let len = ws.len();
            let (wsp, _d) = ws.device_ptr_mut(s);
            // SAFETY: as in `conv_forward`.
            unsafe {
                result::convolution_backward_filter(
                    self.dnn.0.0,
                    &1.0f32 as *const f32 as *const c_void,
                    p.x.0,
                    xp as *const c_void,
                    p.y.0,
                    dyp as *const c_void,
                    p.conv.0,
                    std::mem::transmute::<u32, dnn::cudnnConvolutionBwdFilterAlgo_t>(algo),
                    wsp as *mut c_void,
                    len,
                    &0.0f32 as *const f32 as *const c_void,
                    p.w.0,
                    dwp as *mut c_void,
                )
            }
        });
    }

    /// `f`'s result and the GPU time in ms of the cuDNN convolutions it ran, run again alone in the
    /// same order on buffers of the same shapes (made before the timing): the floor under a step
    /// that everything else in it adds to.
    pub fn convolutions_alone_ms<R>(&self, f: impl FnOnce() -> R) -> (R, f64) {
        self.dnn().recorded = Some(Vec::new());
        let r = f();
        let calls = self.dnn().recorded.take().unwrap_or_default();
        let zeros = |shape: [usize; 4]| {
            self.stream.alloc_zeros::<f32>(shape.iter().product()).unwrap_or_else(|e| fail("replay buffer", e))
        };
        let mut bufs = HashMap::new();
        let plans: Vec<(Arc<ConvPlan>, Dir)> = calls
            .iter()
            .map(|&(key, dir)| {
                let plan = self.dnn().plans[&key].clone();
                bufs.entry(key).or_insert_with(|| (zeros(key.0), zeros(key.1), zeros(plan.out)));
                (plan, dir)
            })
            .collect();
        let ((), ms) = self.time_ms(|| {
            for (p, dir) in &plans {
                let (x, w, y) = bufs.get_mut(&p.key).expect("made above");
                match dir {
                    Dir::Forward => self.conv_forward(p, x, w, y),
                    Dir::BackwardData => self.conv_backward_data(p, y, w, x),
                    Dir::BackwardFilter => self.conv_backward_filter(p, x, y, w),
                }
            }
        });
        (r, ms)
    }
}
