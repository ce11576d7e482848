//! SGD with momentum and weight decay, PyTorch semantics (dampening 0):
//! d = g + wd·p;  buf = μ·buf + d;  d = nesterov ? d + μ·buf : buf;  p −= lr·d.
//! A zero-initialised buffer gives exactly PyTorch's first step (buf = d).
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
