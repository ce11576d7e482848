//! SGD over a model's trainable parameters: one fused update per tensor on the CPU (`ops::sgd`),
//! one launch for all of them on a GPU.
use super::params::ParamStore;
pub use crate::ops::sgd::SgdCfg;
use crate::ops::sgd::sgd_update;
use crate::tape::Tape;
use crate::tensor::Tensor;

pub struct Sgd {
    pub cfg: SgdCfg,
    /// Momentum buffer per parameter id (None for buffers), on the parameters' device.
    bufs: Vec<Option<Tensor>>,
    /// The GPU's table of tensor addresses, as last uploaded.
    #[cfg(feature = "cuda")]
    table: crate::cuda::Mirror<u64>,
}

impl Sgd {
    pub fn new(cfg: SgdCfg, params: &ParamStore) -> Self {
        let mut bufs = vec![None; params.len()];
        for id in params.trainable() {
            bufs[id] = Some(Tensor::zeros_on(params.get(id).shape(), &params.device()));
        }
        Sgd {
            cfg,
            bufs,
            #[cfg(feature = "cuda")]
            table: Default::default(),
        }
    }

    /// Updates every trainable parameter that has a gradient on `tape`; one without is left
    /// alone (momentum and decay included), as PyTorch skips parameters whose grad is None.
    pub fn step(&mut self, params: &mut ParamStore, tape: &Tape) {
        let ids: Vec<usize> = params.trainable().filter(|&id| tape.param_grad(id).is_some()).collect();
        #[cfg(feature = "cuda")]
        if let crate::Device::Cuda(g) = params.device() {
            return self.step_cuda(&g, params, tape, &ids);
        }
        for id in ids {
            let buf = self.bufs[id].as_mut().expect("a trainable parameter has a buffer");
            sgd_update(params.get_mut(id).data_mut(), tape.param_grad(id).unwrap().data(), buf.data_mut(), self.cfg);
        }
    }

    /// All parameters in one launch (`ops::sgd::update_cuda`), given their device pointers.
    #[cfg(feature = "cuda")]
    fn step_cuda(&mut self, g: &crate::cuda::Gpu, params: &mut ParamStore, tape: &Tape, ids: &[usize]) {
        use crate::ops::sgd::{Tables, update_cuda};
        let mut t = Tables::default();
        for &id in ids {
            t.push(g, params.get_mut(id), tape.param_grad(id).unwrap(), self.bufs[id].as_mut().unwrap());
        }
        update_cuda(g, &t, self.cfg, &mut self.table);
    }

    /// The momentum buffer of parameter `id` (for checkpoints).
    pub fn momentum(&self, id: usize) -> Vec<f32> {
        self.bufs[id].as_ref().map(Tensor::to_vec).unwrap_or_default()
    }

    /// Restores the momentum buffer of parameter `id`.
    pub fn set_momentum(&mut self, id: usize, v: &[f32]) -> Result<(), String> {
        let Some(buf) = self.bufs[id].as_mut() else {
            return Err("the tensor is not a trainable parameter".into());
        };
        if v.len() != buf.numel() {
            return Err(format!("momentum buffer of {} values, the parameter has {}", v.len(), buf.numel()));
        }
        *buf = Tensor::from_vec(buf.shape(), v.to_vec()).into_device(&buf.device());
        Ok(())
    }
}
