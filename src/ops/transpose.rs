//! Out-of-place transposes of row-major f32 matrices, in 8×8 blocks (eight row loads, a register
//! transpose, eight row stores), for the layout changes around the GEMMs. Index-by-index loops ran
//! at ~4 cycles a value, which made a 512-channel filter gradient's transpose cost a third of its
//! GEMM.
//! Tests: below.
use rayon::prelude::*;

const B: usize = 8;

/// `dst = srcᵀ`, `src` being `rows × (src.len() / rows)`.
pub fn transpose(src: &[f32], rows: usize, dst: &mut [f32]) {
    band(src, rows, 0, dst);
}

/// `transpose` in parallel over bands of `dst` rows.
pub fn par_transpose(src: &[f32], rows: usize, dst: &mut [f32]) {
    const BAND: usize = 8 * B;
    assert!(rows > 0, "transpose: a matrix of no rows");
    dst.par_chunks_mut(BAND * rows).enumerate().for_each(|(i, d)| band(src, rows, i * BAND, d));
}

/// Rows `c0..` of `srcᵀ` (columns `c0..` of `src`) into `dst`, which holds as many of them as fit.
fn band(src: &[f32], rows: usize, c0: usize, dst: &mut [f32]) {
    assert!(rows > 0, "transpose: a matrix of no rows");
    let cols = src.len() / rows;
    assert_eq!(src.len(), rows * cols, "transpose: {} values do not make {rows} rows", src.len());
    let n = dst.len() / rows;
    assert!(
        dst.len() == n * rows && c0 + n <= cols,
        "transpose: destination of {} values for rows {c0}.. of a {cols} x {rows} result",
        dst.len()
    );
    let (fr, fc) = (rows / B * B, n / B * B);
    let mut at = |r: usize, c: usize| block(&src[r * cols + c0 + c..], cols, &mut dst[c * rows + r..], rows);
    // Sweep along the side with the shorter rows, so that the eight rows of the other side (long
    // rows: maybe a power-of-two apart, in one cache set) are the same eight for the whole sweep.
    if rows >= cols {
        for c in (0..fc).step_by(B) {
            for r in (0..fr).step_by(B) {
                at(r, c);
            }
        }
    } else {
        for r in (0..fr).step_by(B) {
            for c in (0..fc).step_by(B) {
                at(r, c);
            }
        }
    }
    // the edges that do not fill a block
    for r in 0..rows {
        let cs = if r < fr { fc..n } else { 0..n };
        for c in cs {
            dst[c * rows + r] = src[r * cols + c0 + c];
        }
    }
}

/// One 8×8 block: `d[c·ld_d + r] = s[r·ld_s + c]`.
#[inline(always)]
fn block(s: &[f32], ld_s: usize, d: &mut [f32], ld_d: usize) {
    assert!(s.len() >= (B - 1) * ld_s + B && d.len() >= (B - 1) * ld_d + B);
    #[cfg(target_feature = "avx")]
    // SAFETY: the assert above keeps all eight 8-value rows of both sides in bounds; AVX is
    // enabled at compile time.
    unsafe {
        avx::block(s.as_ptr(), ld_s, d.as_mut_ptr(), ld_d)
    }
    #[cfg(not(target_feature = "avx"))]
    scalar_block(s, ld_s, d, ld_d)
}

/// `block` without AVX (and its reference in the tests).
#[cfg(any(test, not(target_feature = "avx")))]
fn scalar_block(s: &[f32], ld_s: usize, d: &mut [f32], ld_d: usize) {
    for r in 0..B {
        for c in 0..B {
            d[c * ld_d + r] = s[r * ld_s + c];
        }
    }
}

#[cfg(target_feature = "avx")]
mod avx {
    #[cfg(target_arch = "x86")]
    use std::arch::x86::*;
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    /// The 8×8 register transpose: interleave pairs of rows, then pairs of pairs, then swap
    /// 128-bit halves.
    #[inline(always)]
    pub unsafe fn block(s: *const f32, ld_s: usize, d: *mut f32, ld_d: usize) {
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * ld_s)));
            let t = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            for i in 0..4 {
                _mm256_storeu_ps(d.add(i * ld_d), _mm256_permute2f128_ps::<0x20>(u[i], u[i + 4]));
                _mm256_storeu_ps(d.add((i + 4) * ld_d), _mm256_permute2f128_ps::<0x31>(u[i], u[i + 4]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both versions against the definition, on shapes with and without partial blocks and bands.
    #[test]
    fn matches_definition() {
        for (rows, cols) in [(1, 1), (8, 8), (3, 17), (16, 9), (27, 64), (64, 27), (130, 70), (9, 600)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let want: Vec<f32> = (0..rows * cols).map(|i| src[(i % rows) * cols + i / rows]).collect();
            let (mut a, mut b) = (vec![f32::NAN; src.len()], vec![f32::NAN; src.len()]);
            transpose(&src, rows, &mut a);
            par_transpose(&src, rows, &mut b);
            assert_eq!(a, want, "{rows} x {cols}");
            assert_eq!(b, want, "{rows} x {cols} in parallel");
        }
    }

    /// The block kernel this build uses against the scalar one, with row strides wider than a block.
    #[test]
    fn block_matches_scalar() {
        let (ld_s, ld_d) = (11, 13);
        let s: Vec<f32> = (0..7 * ld_s + B).map(|i| i as f32).collect();
        let (mut a, mut b) = (vec![0.5f32; 7 * ld_d + B], vec![0.5f32; 7 * ld_d + B]);
        block(&s, ld_s, &mut a, ld_d);
        scalar_block(&s, ld_s, &mut b, ld_d);
        assert_eq!(a, b);
    }
}
