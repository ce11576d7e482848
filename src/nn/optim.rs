//! SGD over a model's trainable parameters, one fused update per tensor (`ops::sgd`).
use super::params::ParamStore;
use crate::ops::sgd::{sgd_update, SgdCfg};
use crate::tape::Tape;

pub struct Sgd {
    pub cfg: SgdCfg,
    /// Momentum buffer per parameter id (empty for buffers).
    bufs: Vec<Vec<f32>>,
}

impl Sgd {
    pub fn new(cfg: SgdCfg, params: &ParamStore) -> Self {
        let mut bufs = vec![Vec::new(); params.len()];
        for id in params.trainable() {
            bufs[id] = vec![0.0; params.get(id).numel()];
        }
        Sgd { cfg, bufs }
    }

    /// Updates every trainable parameter that has a gradient on `tape`; one without is left
    /// alone (momentum and decay included), as PyTorch skips parameters whose grad is None.
    pub fn step(&mut self, params: &mut ParamStore, tape: &Tape) {
        let ids: Vec<usize> = params.trainable().collect();
        for id in ids {
            if let Some(g) = tape.param_grad(id) {
                sgd_update(params.get_mut(id).data_mut(), g.data(), &mut self.bufs[id], self.cfg);
            }
        }
    }

    /// The momentum buffer of parameter `id` (for checkpoints).
    pub fn momentum(&self, id: usize) -> &[f32] {
        &self.bufs[id]
    }

    /// Restores the momentum buffer of parameter `id`.
    pub fn set_momentum(&mut self, id: usize, v: &[f32]) -> Result<(), String> {
        if v.len() != self.bufs[id].len() {
            return Err(format!("momentum buffer of {} values, the parameter has {}", v.len(), self.bufs[id].len()));
        }
        self.bufs[id].copy_from_slice(v);
        Ok(())
    }
}
