//! Dense f32 tensors, row-major (NCHW for images), on the CPU or a GPU. Shapes are checked where
//! tensors enter the engine (files, CLI); inside, ops assert their invariants. `data()` is the CPU
//! view; code that works on either device reads through `host()` or dispatches on `gpu()`. The
//! in-place arithmetic's kernels are in `kernels/tensor.cu`; tests through every op's.
use crate::device::Device;
use std::borrow::Cow;

#[derive(Clone, Debug)]
pub enum Storage {
    Cpu(Vec<f32>),
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::Buf),
}

#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Storage,
}

/// `n` values that `fill` writes, every one of them, before reading any: outputs an op overwrites
/// anyway skip the zeroing of `vec![0; n]`, which was 8% of a SmallCNN training step. Debug builds
/// start from all-ones bytes (NaN for f32) so that a value `fill` missed shows up in the tests.
pub fn written<T: bytemuck::Pod>(n: usize, fill: impl FnOnce(&mut [T])) -> Vec<T> {
    let mut v = Vec::<T>::with_capacity(n);
    // SAFETY: the allocation holds n values of T; T is plain data, so even a value read before it
    // is written is some bit pattern of T, never an invalid one; the length is set once all are
    // written.
    let s = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr(), n) };
    if cfg!(debug_assertions) {
        bytemuck::cast_slice_mut::<T, u8>(s).fill(0xff);
    }
    fill(s);
    unsafe { v.set_len(n) };
    v
}

impl Tensor {
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?} does not match {} values", data.len());
        Tensor { shape: shape.to_vec(), storage: Storage::Cpu(data) }
    }

    /// A CPU tensor whose every value `fill` writes (see `written`).
    pub fn written(shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Self {
        Self::from_vec(shape, written(shape.iter().product(), fill))
    }

    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, 0.0)
    }

    pub fn full(shape: &[usize], v: f32) -> Self {
        Self::from_vec(shape, vec![v; shape.iter().product()])
    }

    /// Zeros on `dev`.
    pub fn zeros_on(shape: &[usize], dev: &Device) -> Self {
        match dev {
            Device::Cpu => Self::zeros(shape),
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => Self::from_cuda(g, shape, g.zeros(shape.iter().product())),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(b) => Device::Cuda(b.gpu.clone()),
        }
    }

    /// A copy on `dev` (a plain clone when it is already there).
    pub fn to_device(&self, dev: &Device) -> Tensor {
        match dev {
            Device::Cpu => Tensor::from_vec(&self.shape, self.to_vec()),
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => match &self.storage {
                Storage::Cuda(b) if std::sync::Arc::ptr_eq(&b.gpu, g) => self.clone(),
                _ => Self::from_cuda(g, &self.shape, g.upload(&self.host())),
            },
        }
    }

    /// `self` on `dev`: moved as it is when already there, copied otherwise.
    pub fn into_device(self, dev: &Device) -> Tensor {
        if self.device() == *dev { self } else { self.to_device(dev) }
    }

    /// `self` on `dev`: borrowed when already there, a copy otherwise.
    pub fn on(&self, dev: &Device) -> Cow<'_, Tensor> {
        if self.device() == *dev { Cow::Borrowed(self) } else { Cow::Owned(self.to_device(dev)) }
    }

    /// The values on the host (a copy from a GPU, which waits for it).
    pub fn host(&self) -> Cow<'_, [f32]> {
        match &self.storage {
            Storage::Cpu(v) => Cow::Borrowed(v),
            #[cfg(feature = "cuda")]
            Storage::Cuda(b) => Cow::Owned(b.gpu.download(&b.s)[..self.numel()].to_vec()),
        }
    }

    pub fn to_vec(&self) -> Vec<f32> {
        self.host().into_owned()
    }

    /// The values of a CPU tensor.
    pub fn data(&self) -> &[f32] {
        match &self.storage {
            Storage::Cpu(v) => v,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => panic!("a CPU code path read a tensor of shape {:?} that is on the GPU", self.shape),
        }
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        match &mut self.storage {
            Storage::Cpu(v) => v,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => panic!("a CPU code path wrote a tensor of shape {:?} that is on the GPU", self.shape),
        }
    }

    pub fn into_vec(self) -> Vec<f32> {
        match self.storage {
            Storage::Cpu(v) => v,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => self.to_vec(),
        }
    }

    /// Same values, new shape of the same size.
    pub fn reshape(mut self, shape: &[usize]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), self.numel(), "reshape {:?} -> {shape:?}", self.shape);
        self.shape = shape.to_vec();
        self
    }

    /// (N, C, H, W) of a 4-d tensor.
    pub fn dims4(&self) -> (usize, usize, usize, usize) {
        match self.shape[..] {
            [n, c, h, w] => (n, c, h, w),
            _ => panic!("expected an NCHW tensor, found shape {:?}", self.shape),
        }
    }

    /// (rows, cols) of a 2-d tensor.
    pub fn dims2(&self) -> (usize, usize) {
        match self.shape[..] {
            [r, c] => (r, c),
            _ => panic!("expected a 2-d tensor, found shape {:?}", self.shape),
        }
    }

    /// `self += other`, elementwise.
    pub fn add_assign(&mut self, other: &Tensor) {
        assert_eq!(self.shape, other.shape, "add_assign: shapes differ");
        crate::on_gpu!(self, |g| {
            let n = self.numel() as i32;
            crate::cuda::kernels::add_assign(&g, g.grid(n as usize), self.cu_mut(), other.cu(), n);
        });
        for (a, b) in self.data_mut().iter_mut().zip(other.data()) {
            *a += b;
        }
    }

    /// `self *= k`, elementwise.
    pub fn scale(&mut self, k: f32) {
        crate::on_gpu!(self, |g| {
            let n = self.numel() as i32;
            crate::cuda::kernels::scale(&g, g.grid(n as usize), self.cu_mut(), k, n);
        });
        self.data_mut().iter_mut().for_each(|v| *v *= k);
    }

    /// `self += k * other`, elementwise.
    pub fn add_scaled(&mut self, other: &Tensor, k: f32) {
        assert_eq!(self.shape, other.shape, "add_scaled: shapes differ");
        crate::on_gpu!(self, |g| {
            let n = self.numel() as i32;
            crate::cuda::kernels::axpy(&g, g.grid(n as usize), self.cu_mut(), other.cu(), k, n);
        });
        self.data_mut().iter_mut().zip(other.data()).for_each(|(a, b)| *a += k * b);
    }

    /// Rows (first-axis entries) `start..end`, copied.
    pub fn rows(&self, start: usize, end: usize) -> Tensor {
        let per = self.numel() / self.shape[0].max(1);
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        assert!(start <= end && end <= self.shape[0], "rows {start}..{end} of a tensor of shape {:?}", self.shape);
        if (end - start) * per == 0 {
            return Tensor::zeros_on(&shape, &self.device());
        }
        match &self.storage {
            Storage::Cpu(v) => Tensor::from_vec(&shape, v[start * per..end * per].to_vec()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(b) => {
                let s = b.gpu.stream.clone_dtod(&b.s.slice(start * per..end * per)).expect("cuda copy");
                Self::from_cuda(&b.gpu, &shape, s)
            }
        }
    }

    /// The tensors one after the other along the first axis (all on the first one's device).
    pub fn cat_rows(parts: &[Tensor]) -> Tensor {
        let mut shape = parts[0].shape.clone();
        shape[0] = parts.iter().map(|p| p.shape[0]).sum();
        #[cfg(feature = "cuda")]
        if let Some(g) = parts[0].gpu() {
            let mut out = g.zeros(shape.iter().product());
            let mut at = 0;
            for p in parts {
                // a buffer can be longer than its tensor (empty tensors get one element)
                g.stream
                    .memcpy_dtod(&p.cu().slice(..p.numel()), &mut out.slice_mut(at..at + p.numel()))
                    .expect("cuda copy");
                at += p.numel();
            }
            return Self::from_cuda(g, &shape, out);
        }
        Tensor::from_vec(&shape, parts.iter().flat_map(|p| p.data().iter().copied()).collect())
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{Storage, Tensor};
    use crate::cuda::{Buf, Gpu};
    use cudarc::driver::CudaSlice;
    use std::sync::Arc;

    impl Tensor {
        pub fn from_cuda(gpu: &Arc<Gpu>, shape: &[usize], s: CudaSlice<f32>) -> Tensor {
            assert!(s.len() >= shape.iter().product(), "a buffer of {} floats for shape {shape:?}", s.len());
            Tensor { shape: shape.to_vec(), storage: Storage::Cuda(Buf { gpu: gpu.clone(), s }) }
        }

        /// The GPU the tensor lives on, if any.
        pub fn gpu(&self) -> Option<&Arc<Gpu>> {
            match &self.storage {
                Storage::Cuda(b) => Some(&b.gpu),
                Storage::Cpu(_) => None,
            }
        }

        /// The device buffer of a GPU tensor.
        pub fn cu(&self) -> &CudaSlice<f32> {
            match &self.storage {
                Storage::Cuda(b) => &b.s,
                Storage::Cpu(_) => panic!("a GPU code path read a CPU tensor of shape {:?}", self.shape),
            }
        }

        pub fn cu_mut(&mut self) -> &mut CudaSlice<f32> {
            match &mut self.storage {
                Storage::Cuda(b) => &mut b.s,
                Storage::Cpu(_) => panic!("a GPU code path wrote a CPU tensor of shape {:?}", self.shape),
            }
        }
    }
}
