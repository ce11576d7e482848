//! SGD with momentum and weight decay, PyTorch semantics (dampening 0):
//! d = g + wd·p;  buf = μ·buf + d;  d = nesterov ? d + μ·buf : buf;  p −= lr·d.
//! A zero-initialised buffer gives exactly PyTorch's first step (buf = d). On the CPU one fused pass
//! per tensor; on a GPU one launch of `kernels/sgd.cu` for every tensor of a model. `nn/optim.rs`
//! holds the buffers and calls these. Tests: below, and the fixtures' `sgd_steps` cases
//! (`tests/parity.rs`, `tests/cuda_parity.rs`).
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct SgdCfg {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

const CHUNK: usize = 1 << 14;

/// One fused update of a parameter, its gradient and its momentum buffer.
pub fn sgd_update(p: &mut [f32], g: &[f32], buf: &mut [f32], c: SgdCfg) {
    assert!(p.len() == g.len() && p.len() == buf.len(), "sgd_update: lengths differ");
    p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(buf.par_chunks_mut(CHUNK)).for_each(|((p, g), b)| {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(b) {
            let d = g + c.weight_decay * *p;
            *b = c.momentum * *b + d;
            let d = if c.nesterov { d + c.momentum * *b } else { *b };
            *p -= c.lr * d;
        }
    });
}

/// Device pointers of the tensors one GPU launch updates: tensor k is `params[k]`, `grads[k]`,
/// `bufs[k]`, with `lens[k]` values.
#[cfg(feature = "cuda")]
#[derive(Default)]
pub struct Tables {
    params: Vec<u64>,
    grads: Vec<u64>,
    bufs: Vec<u64>,
    lens: Vec<u64>,
}

#[cfg(feature = "cuda")]
impl Tables {
    /// Adds a parameter, its gradient and its momentum buffer (all on the GPU `g`).
    pub fn push(&mut self, g: &crate::cuda::Gpu, p: &mut crate::Tensor, grad: &crate::Tensor, buf: &mut crate::Tensor) {
        use cudarc::driver::{DevicePtr, DevicePtrMut};
        assert!(p.numel() == grad.numel() && p.numel() == buf.numel(), "sgd: lengths differ");
        let s = &g.stream;
        self.params.push(p.cu_mut().device_ptr_mut(s).0);
        self.grads.push(grad.cu().device_ptr(s).0);
        self.bufs.push(buf.cu_mut().device_ptr_mut(s).0);
        self.lens.push(p.numel() as u64);
    }
}

/// One launch of `kernels/sgd.cu` over every tensor of `t`, its address table in `up`: the
/// optimiser keeps it, and it is copied up again only when an address changed (parameters and
/// buffers stay put; whether a step's gradients get the last step's addresses is the allocator's
/// doing).
#[cfg(feature = "cuda")]
pub fn update_cuda(g: &crate::cuda::Gpu, t: &Tables, c: SgdCfg, up: &mut crate::cuda::Mirror<u64>) {
    let Some(&longest) = t.lens.iter().max() else { return };
    let table: Vec<u64> = [&t.params, &t.grads, &t.bufs, &t.lens].into_iter().flatten().copied().collect();
    let dev = up.get(g, table);
    let mut cfg = g.grid(longest as usize);
    cfg.grid_dim.1 = t.lens.len() as u32;
    let (tensors, nesterov) = (t.lens.len() as i32, c.nesterov as i32);
    crate::cuda::kernels::sgd_update(g, cfg, &dev, tensors, c.lr, c.momentum, c.weight_decay, nesterov);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_steps_by_hand() {
        let c = SgdCfg { lr: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov: false };
        let (mut p, mut buf) = ([1.0f32], [0.0f32]);
        sgd_update(&mut p, &[0.5], &mut buf, c); // d = 0.51, buf = 0.51, p = 1 - 0.051
        assert!((p[0] - 0.949).abs() < 1e-7 && (buf[0] - 0.51).abs() < 1e-7);
        sgd_update(&mut p, &[0.5], &mut buf, c); // d = 0.50949, buf = 0.459 + 0.50949
        assert!((buf[0] - 0.96849).abs() < 1e-6 && (p[0] - (0.949 - 0.096849)).abs() < 1e-6);
        let (mut p, mut buf) = ([1.0f32], [0.0f32]);
        sgd_update(&mut p, &[0.5], &mut buf, SgdCfg { nesterov: true, ..c }); // d = 0.51 + 0.9 * 0.51
        assert!((p[0] - (1.0 - 0.1 * 0.969)).abs() < 1e-6);
    }
}
