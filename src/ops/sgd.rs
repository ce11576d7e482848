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
