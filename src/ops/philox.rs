//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
//! counter-based generator of the training step's random start: value i of a draw is a pure
//! function of (key, i), so a GPU computes it in place (`kernels/pgd.cu`, `philox`) with the same
//! bits as this CPU twin, and nothing is drawn on the host or copied up. No maintained crate has
//! it, and the twin must match the kernel bit for bit, so it is written out here (20 lines).
//! Tests: below (Random123's known answers), CPU against GPU in `tests/cuda_parity.rs`.

const M: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
const W: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];

/// The 4 words of block `ctr` under `key`.
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            key = [key[0].wrapping_add(W[0]), key[1].wrapping_add(W[1])];
        }
        let (p0, p1) = (u64::from(M[0]) * u64::from(ctr[0]), u64::from(M[1]) * u64::from(ctr[2]));
        let (hi0, lo0, hi1, lo1) = ((p0 >> 32) as u32, p0 as u32, (p1 >> 32) as u32, p1 as u32);
        ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
    }
    ctr
}

/// Value `i` of the stream `seed`, uniform in [0, 1) on a 2⁻²⁴ grid (every such float exact):
/// word `i % 4` of block `i / 4`.
pub fn unit(seed: u64, i: u64) -> f32 {
    let block = i / 4;
    let w = philox4x32_10([block as u32, (block >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32]);
    (w[(i % 4) as usize] >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for philox4x32_10 (kat_vectors).
    #[test]
    fn known_answers() {
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        let pi = philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]);
        assert_eq!(pi, [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
    }

    /// [0, 1), mean ½ and variance 1/12 to within their sampling error over 2¹⁶ values, and two
    /// seeds give different streams.
    #[test]
    fn uniform_values() {
        let n = 1 << 16;
        let v: Vec<f64> = (0..n).map(|i| f64::from(unit(7, i))).collect();
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 4.0 * (1.0 / 12.0f64 / n as f64).sqrt(), "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "variance {var}");
        assert_ne!((0..8).map(|i| unit(7, i)).collect::<Vec<_>>(), (0..8).map(|i| unit(8, i)).collect::<Vec<_>>());
    }
}
