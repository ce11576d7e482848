//! Device memory: a tensor's buffer on a GPU, and copies between host and device.
use super::Gpu;
use cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};
use std::sync::Arc;

/// A tensor's values on a GPU.
pub struct Buf {
    pub gpu: Arc<Gpu>,
    pub s: CudaSlice<f32>,
}

impl Clone for Buf {
    fn clone(&self) -> Self {
        Buf {
            gpu: self.gpu.clone(),
            s: self.gpu.stream.clone_dtod(&self.s).unwrap_or_else(|e| self.gpu.oom(self.s.len() * 4, e)),
        }
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} floats on {:?}", self.s.len(), self.gpu)
    }
}

impl Gpu {
    fn oom(&self, bytes: usize, e: impl std::fmt::Display) -> ! {
        panic!(
            "cuda:{}: could not allocate {:.1} MiB ({e}); try a smaller --batch",
            self.ordinal,
            bytes as f64 / (1 << 20) as f64
        )
    }

    /// `n` zeros (at least one).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> CudaSlice<T> {
        self.stream.alloc_zeros(n.max(1)).unwrap_or_else(|e| self.oom(n * size_of::<T>(), e))
    }

    /// `n` values (at least one) left as they are: only for outputs a kernel or library call
    /// overwrites completely.
    pub fn empty(&self, n: usize) -> CudaSlice<f32> {
        // SAFETY: the callers write every element before anything reads it.
        unsafe { self.stream.alloc(n.max(1)) }.unwrap_or_else(|e| self.oom(n * 4, e))
    }

    /// A copy of `v` (an empty `v` gets a one-element buffer: cudarc allocates no 0-byte buffers).
    pub fn upload<T: DeviceRepr + ValidAsZeroBits>(&self, v: &[T]) -> CudaSlice<T> {
        if v.is_empty() {
            return self.zeros(1);
        }
        self.uploaded();
        self.stream.clone_htod(v).unwrap_or_else(|e| self.oom(std::mem::size_of_val(v), e))
    }

    /// Waits for the stream, then copies to the host.
    pub fn download<T: DeviceRepr + Default + Clone>(&self, s: &CudaSlice<T>) -> Vec<T> {
        self.waited();
        self.stream.clone_dtoh(s).unwrap_or_else(|e| panic!("cuda:{}: copy to the host failed: {e}", self.ordinal))
    }
}

/// A host vector and its copy on the device, copied up again only when the host's changes: for
/// what a step hands the GPU unchanged step after step (the batch's labels, SGD's address table).
pub struct Mirror<T: DeviceRepr> {
    host: Vec<T>,
    dev: Option<Arc<CudaSlice<T>>>,
}

impl<T: DeviceRepr> Default for Mirror<T> {
    fn default() -> Self {
        Mirror { host: Vec::new(), dev: None }
    }
}

impl<T: DeviceRepr + ValidAsZeroBits + PartialEq> Mirror<T> {
    /// `host` on `g`, uploaded only if it differs from the last one.
    pub fn get(&mut self, g: &Gpu, host: Vec<T>) -> Arc<CudaSlice<T>> {
        match &self.dev {
            Some(d) if self.host == host => d.clone(),
            _ => {
                let d = Arc::new(g.upload(&host));
                (self.host, self.dev) = (host, Some(d.clone()));
                d
            }
        }
    }
}
