//! The fused L∞ PGD step: x' ← clip[0,1](clip[x−ε, x+ε](x' + α·sign(∇))), in one pass.
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// One step in place on `x_adv`, around the clean images `x0`. sign(0) = 0, as torch.sign.
pub fn pgd_step(x_adv: &mut [f32], grad: &[f32], x0: &[f32], alpha: f32, eps: f32) {
    assert!(x_adv.len() == grad.len() && x_adv.len() == x0.len(), "pgd_step: lengths differ");
    x_adv.par_chunks_mut(CHUNK).zip(grad.par_chunks(CHUNK)).zip(x0.par_chunks(CHUNK)).for_each(|((xa, g), x0)| {
        for ((a, &g), &x) in xa.iter_mut().zip(g).zip(x0) {
            let s = if g > 0.0 { alpha } else if g < 0.0 { -alpha } else { 0.0 };
            *a = (*a + s).max(x - eps).min(x + eps).clamp(0.0, 1.0);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_stay_in_the_ball_and_the_box() {
        let x0 = [0.0, 0.5, 0.98, 0.3];
        let mut xa = x0;
        for _ in 0..5 {
            pgd_step(&mut xa, &[1.0, -1.0, 1.0, 0.0], &x0, 0.03, 0.05);
        }
        assert_eq!(xa[0], 0.05);
        assert!((xa[1] - 0.45).abs() < 1e-7);
        assert_eq!(xa[2], 1.0);
        assert_eq!(xa[3], 0.3, "a zero gradient does not move the pixel");
    }
}
