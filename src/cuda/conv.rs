//! cuDNN convolutions: descriptors and algorithms chosen once per shape and cached on the `Gpu`,
//! one workspace shared by all (grown to the largest a plan asks for).
use super::Gpu;
use cudarc::cudnn::sys::{
    cudnnConvolutionBwdDataAlgo_t, cudnnConvolutionBwdFilterAlgo_t, cudnnConvolutionFwdAlgo_t, cudnnConvolutionMode_t,
    cudnnMathType_t, cudnnTensorFormat_t,
};
use cudarc::cudnn::{
    ConvBackwardData, ConvBackwardFilter, ConvDescriptor, ConvForward, FilterDescriptor, TensorDescriptor,
};
use cudarc::driver::CudaSlice;
use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

/// Input shape, weight shape, stride, padding, groups.
type Key = ([usize; 4], [usize; 4], usize, usize, usize);

/// The plans made so far and the workspace they share.
#[derive(Default)]
pub(super) struct DnnState {
    plans: HashMap<Key, Arc<ConvPlan>>,
    workspace: Option<CudaSlice<u8>>,
}

/// A convolution's cuDNN descriptors and algorithms, made once per shape.
pub struct ConvPlan {
    x: TensorDescriptor<f32>,
    w: FilterDescriptor<f32>,
    y: TensorDescriptor<f32>,
    conv: ConvDescriptor<f32>,
    fwd: cudnnConvolutionFwdAlgo_t,
    bwd_data: cudnnConvolutionBwdDataAlgo_t,
    bwd_filter: cudnnConvolutionBwdFilterAlgo_t,
    /// Workspace bytes of each algorithm.
    ws_fwd: usize,
    ws_bwd_data: usize,
    ws_bwd_filter: usize,
    /// Output shape.
    pub out: [usize; 4],
}

// SAFETY: the descriptors are only read after the plan is built, and only under the Gpu's cuDNN lock.
unsafe impl Send for ConvPlan {}
unsafe impl Sync for ConvPlan {}

fn dims(s: [usize; 4]) -> [i32; 4] {
    s.map(|v| v as i32)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("cuDNN {what} failed: {e}")
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
        let nchw = cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
        let d = &self.dnn;
        let xd = d.create_4d_tensor::<f32>(nchw, dims(x)).unwrap_or_else(|e| fail("input descriptor", e));
        let yd = d.create_4d_tensor::<f32>(nchw, dims(out)).unwrap_or_else(|e| fail("output descriptor", e));
        let wd = d.create_4d_filter::<f32>(nchw, dims(w)).unwrap_or_else(|e| fail("filter descriptor", e));
        let (p, s) = (pad as i32, stride as i32);
        let mut conv = d
            .create_conv2d::<f32>([p, p], [s, s], [1, 1], cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION)
            .unwrap_or_else(|e| fail("conv descriptor", e));
        conv.set_group_count(groups as i32).unwrap_or_else(|e| fail("group count", e));
        let math = if self.tf32 { cudnnMathType_t::CUDNN_DEFAULT_MATH } else { cudnnMathType_t::CUDNN_FMA_MATH };
        conv.set_math_type(math).unwrap_or_else(|e| fail("math type", e));
        let f = ConvForward { conv: &conv, x: &xd, w: &wd, y: &yd };
        let fwd = f.pick_algorithm().unwrap_or_else(|e| fail("forward algorithm", e));
        let ws_fwd = f.get_workspace_size(fwd).unwrap_or_else(|e| fail("forward workspace", e));
        let bd = ConvBackwardData { conv: &conv, dx: &xd, w: &wd, dy: &yd };
        let bwd_data = bd.pick_algorithm().unwrap_or_else(|e| fail("backward-data algorithm", e));
        let ws_bwd_data = bd.get_workspace_size(bwd_data).unwrap_or_else(|e| fail("backward-data workspace", e));
        let bf = ConvBackwardFilter { conv: &conv, x: &xd, dw: &wd, dy: &yd };
        let bwd_filter = bf.pick_algorithm().unwrap_or_else(|e| fail("backward-filter algorithm", e));
        let ws_bwd_filter = bf.get_workspace_size(bwd_filter).unwrap_or_else(|e| fail("backward-filter workspace", e));
        let plan = Arc::new(ConvPlan {
            x: xd,
            w: wd,
            y: yd,
            conv,
            fwd,
            bwd_data,
            bwd_filter,
            ws_fwd,
            ws_bwd_data,
            ws_bwd_filter,
            out,
        });
        st.plans.insert(key, plan.clone());
        plan
    }

    /// The cuDNN lock, with this GPU's context current on the thread (cuDNN uses whatever is).
    fn dnn(&self) -> MutexGuard<'_, DnnState> {
        let st = self.dnn_state.lock().unwrap_or_else(|e| e.into_inner());
        self.stream.context().bind_to_thread().unwrap_or_else(|e| panic!("cuda:{}: {e}", self.ordinal));
        st
    }

    /// Runs `f`, one cuDNN call, with the shared workspace, at least `bytes` long, holding the
    /// cuDNN lock.
    fn with_workspace<R>(&self, bytes: usize, f: impl FnOnce(&mut CudaSlice<u8>) -> R) -> R {
        let mut st = self.dnn();
        if st.workspace.as_ref().is_none_or(|w| w.len() < bytes.max(1)) {
            st.workspace = Some(self.zeros::<u8>(bytes));
        }
        self.launched();
        f(st.workspace.as_mut().unwrap())
    }

    /// y = conv(x, w).
    pub fn conv_forward(&self, p: &ConvPlan, x: &CudaSlice<f32>, w: &CudaSlice<f32>, y: &mut CudaSlice<f32>) {
        let op = ConvForward { conv: &p.conv, x: &p.x, w: &p.w, y: &p.y };
        // SAFETY: the descriptors were made from these buffers' shapes (the callers check them).
        self.with_workspace(p.ws_fwd, |ws| unsafe { op.launch(p.fwd, Some(ws), (1.0, 0.0), x, w, y) })
            .unwrap_or_else(|e| fail("forward", e));
    }

    /// dx = conv_transpose(dy, w).
    pub fn conv_backward_data(&self, p: &ConvPlan, dy: &CudaSlice<f32>, w: &CudaSlice<f32>, dx: &mut CudaSlice<f32>) {
        let op = ConvBackwardData { conv: &p.conv, dx: &p.x, w: &p.w, dy: &p.y };
        self.with_workspace(p.ws_bwd_data, |ws| unsafe { op.launch(p.bwd_data, Some(ws), (1.0, 0.0), dx, w, dy) })
            .unwrap_or_else(|e| fail("backward-data", e));
    }

    /// dw = the filter gradient of dy at x.
    pub fn conv_backward_filter(&self, p: &ConvPlan, x: &CudaSlice<f32>, dy: &CudaSlice<f32>, dw: &mut CudaSlice<f32>) {
        let op = ConvBackwardFilter { conv: &p.conv, x: &p.x, dw: &p.w, dy: &p.y };
        self.with_workspace(p.ws_bwd_filter, |ws| unsafe { op.launch(p.bwd_filter, Some(ws), (1.0, 0.0), x, dw, dy) })
            .unwrap_or_else(|e| fail("backward-filter", e));
    }
}
