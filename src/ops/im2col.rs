//! im2col / col2im for a chunk of NCHW images, so that a whole chunk of a conv layer is one GEMM.
//! Column matrix layout: rows (c, ki, kj) of one channel group, columns (image, out_y, out_x).
//! Tests: below, and every im2col conv2d test (`tests/gradcheck.rs`, `tests/parity.rs`).
use rayon::prelude::*;

/// Geometry of one convolution, shared by forward and both backward passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    pub fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Self {
        assert!(h + 2 * pad >= k && w + 2 * pad >= k, "conv kernel {k} larger than padded input {h}x{w}");
        let oh = (h + 2 * pad - k) / stride + 1;
        let ow = (w + 2 * pad - k) / stride + 1;
        Geom { c, h, w, k, stride, pad, oh, ow }
    }

    /// Output columns `ox` whose input column `ox*stride - pad + kj` lies inside the image.
    fn valid_x(&self, kj: usize) -> std::ops::Range<usize> {
        span(self.ow, self.w, self.stride, self.pad, kj)
    }
}

/// Outputs `o` in `0..n_out` with `o*stride + kk - pad` in `0..n_in`.
pub fn span(n_out: usize, n_in: usize, stride: usize, pad: usize, kk: usize) -> std::ops::Range<usize> {
    let lo = pad.saturating_sub(kk).div_ceil(stride);
    let hi = if n_in + pad > kk { ((n_in + pad - kk - 1) / stride + 1).min(n_out) } else { 0 };
    lo..hi.max(lo)
}

/// Fills `col` ([cg*k*k, nb*oh*ow]) from channels `c0..c0+cg` of the `nb` images in `x`.
pub fn im2col(x: &[f32], g: &Geom, c0: usize, cg: usize, nb: usize, col: &mut [f32]) {
    let (kk, plane, opix) = (g.k * g.k, g.h * g.w, g.oh * g.ow);
    let ncols = nb * opix;
    col[..cg * kk * ncols].par_chunks_mut(ncols).enumerate().with_min_len(super::grain(ncols)).for_each(
        |(row, dst)| {
            let (c, ki, kj) = (c0 + row / kk, row % kk / g.k, row % g.k);
            let xs = g.valid_x(kj);
            for n in 0..nb {
                let src = &x[(n * g.c + c) * plane..][..plane];
                let d = &mut dst[n * opix..][..opix];
                if g.stride == 1 && g.ow == g.w {
                    shifted_plane(src, d, g, ki, kj);
                    continue;
                }
                for oy in 0..g.oh {
                    let d = &mut d[oy * g.ow..][..g.ow];
                    let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        d.fill(0.0);
                        continue;
                    }
                    let srow = &src[iy as usize * g.w..][..g.w];
                    d[..xs.start].fill(0.0);
                    d[xs.end..].fill(0.0);
                    let ix0 = xs.start * g.stride + kj - g.pad;
                    match g.stride {
                        1 => d[xs.clone()].copy_from_slice(&srow[ix0..ix0 + xs.len()]),
                        2 => every_second(&mut d[xs.clone()], &srow[ix0..]),
                        s => d[xs.clone()].iter_mut().zip(srow[ix0..].iter().step_by(s)).for_each(|(o, v)| *o = *v),
                    }
                }
            }
        },
    );
}

/// `d[i] = src[2i]`. Read as pairs the loop vectorises (an interleaved load); `step_by` stays
/// scalar, which made stride-2 im2col a fifth of a stride-2 layer's forward.
fn every_second(d: &mut [f32], src: &[f32]) {
    let pairs = d.len().min(src.len() / 2);
    d.iter_mut().zip(src.chunks_exact(2)).for_each(|(o, p)| *o = p[0]);
    for i in pairs..d.len() {
        d[i] = src[2 * i];
    }
}

/// `d[2i] += s[i]`, as pairs for the same reason.
fn add_every_second(d: &mut [f32], s: &[f32]) {
    let pairs = s.len().min(d.len() / 2);
    d.chunks_exact_mut(2).zip(s).for_each(|(p, v)| p[0] += v);
    for i in pairs..s.len() {
        d[2 * i] += s[i];
    }
}

/// Tap (ki, kj) of a stride-1 convolution whose output is as wide as its input: the column row is
/// the input plane shifted by a constant offset, so it is one long copy, after which the entries
/// that fell outside the image (whole rows above and below, a column at each side, which the copy
/// filled with wrapped-around neighbours) are zeroed. Row by row copies of 8 to 32 values spent
/// most of their time in memcpy's call overhead.
fn shifted_plane(src: &[f32], d: &mut [f32], g: &Geom, ki: usize, kj: usize) {
    let (w, plane) = (g.w as isize, src.len() as isize);
    let ys = span(g.oh, g.h, 1, g.pad, ki);
    let shift = (ki as isize - g.pad as isize) * w + kj as isize - g.pad as isize;
    // d[j] = src[j + shift] for j in the valid rows, clipped to the plane
    let (r0, r1) = ((ys.start * g.w) as isize, (ys.end * g.w) as isize);
    let lo = r0.max(-shift).min(r1);
    let hi = r1.min(plane - shift).max(lo);
    let (lo, hi) = (lo as usize, hi as usize);
    d[..lo].fill(0.0);
    d[hi..].fill(0.0);
    if lo < hi {
        d[lo..hi].copy_from_slice(&src[lo.wrapping_add_signed(shift)..hi.wrapping_add_signed(shift)]);
    }
    let xs = g.valid_x(kj);
    if xs != (0..g.w) {
        for row in d[ys.start * g.w..ys.end * g.w].chunks_exact_mut(g.w) {
            row[..xs.start].fill(0.0);
            row[xs.end..].fill(0.0);
        }
    }
}

/// Adds `col` ([cg*k*k, nb*oh*ow]) back into channels `c0..c0+cg` of the `nb` images of `dx`.
pub fn col2im(col: &[f32], g: &Geom, c0: usize, cg: usize, nb: usize, dx: &mut [f32]) {
    let (plane, opix) = (g.h * g.w, g.oh * g.ow);
    let ncols = nb * opix;
    // Parallel over images then channels: every (image, channel) plane is written by one task.
    dx[..nb * g.c * plane].par_chunks_mut(g.c * plane).enumerate().for_each(|(n, img)| {
        img[c0 * plane..(c0 + cg) * plane]
            .par_chunks_mut(plane)
            .enumerate()
            .with_min_len(super::grain(plane * g.k * g.k))
            .for_each(|(cl, dst)| {
                let row = |ki: usize, kj: usize, oy: usize| {
                    &col[((cl * g.k + ki) * g.k + kj) * ncols + n * opix + oy * g.ow..][..g.ow]
                };
                for ki in 0..g.k {
                    if g.stride == 1 {
                        for oy in span(g.oh, g.h, 1, g.pad, ki) {
                            add_taps(&mut dst[(oy + ki - g.pad) * g.w..][..g.w], g.k, g.pad, |kj| row(ki, kj, oy));
                        }
                        continue;
                    }
                    for kj in 0..g.k {
                        let xs = g.valid_x(kj);
                        if xs.is_empty() {
                            continue;
                        }
                        for oy in span(g.oh, g.h, g.stride, g.pad, ki) {
                            let drow = &mut dst[(oy * g.stride + ki - g.pad) * g.w..][..g.w];
                            let s = &row(ki, kj, oy)[xs.clone()];
                            let d = &mut drow[xs.start * g.stride + kj - g.pad..];
                            if g.stride == 2 {
                                add_every_second(d, s);
                            } else {
                                d.iter_mut().step_by(g.stride).zip(s).for_each(|(d, v)| *d += v);
                            }
                        }
                    }
                }
            });
    });
}

/// One input row of a stride-1 convolution's backward: `d[ix] += row(kj)[ix + pad - kj]` for every
/// tap kj that lands inside the output row, taps in order, so each value sums exactly as a tap-by-
/// tap pass would. The interior, where all taps land, takes the three taps of a 3x3 kernel in one
/// pass: one read and write of `d` instead of three, and a third of the loop overhead on rows of
/// 4 to 32 values.
fn add_taps<'a>(d: &mut [f32], k: usize, pad: usize, row: impl Fn(usize) -> &'a [f32]) {
    let (w, ow) = (d.len(), row(0).len());
    let lo = (k - 1).saturating_sub(pad).min(w);
    let hi = ow.saturating_sub(pad).min(w).max(lo);
    for ix in (0..lo).chain(hi..w) {
        for kj in 0..k {
            if let Some(v) = (ix + pad).checked_sub(kj).and_then(|ox| row(kj).get(ox)) {
                d[ix] += v;
            }
        }
    }
    if lo == hi {
        return;
    }
    let taps = |kj: usize| &row(kj)[lo + pad - kj..hi + pad - kj];
    if k == 3 {
        let (a, b, c) = (taps(0), taps(1), taps(2));
        for (i, x) in d[lo..hi].iter_mut().enumerate() {
            *x = *x + a[i] + b[i] + c[i];
        }
    } else {
        for kj in 0..k {
            d[lo..hi].iter_mut().zip(taps(kj)).for_each(|(x, v)| *x += v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// im2col and col2im against their definitions, on geometries that take each path (stride 1
    /// as wide as the input, stride 1 narrower, stride 2; 1x1, 3x3, 5x5; maps smaller than the
    /// kernel). col2im must match bit for bit: it sums each value's taps in (ki, kj) order.
    #[test]
    fn match_definition() {
        for (c, h, w, k, stride, pad) in [
            (2, 5, 7, 3, 1, 1),
            (3, 4, 4, 1, 1, 0),
            (1, 6, 5, 5, 1, 2),
            (2, 5, 5, 3, 1, 0),
            (2, 7, 6, 3, 2, 1),
            (1, 2, 2, 3, 1, 1),
            (1, 1, 1, 3, 1, 1),
            (2, 8, 8, 1, 2, 0),
        ] {
            let (g, nb) = (Geom::new(c, h, w, k, stride, pad), 2);
            let (opix, ncols) = (g.oh * g.ow, nb * g.oh * g.ow);
            let x: Vec<f32> = (0..nb * c * h * w).map(|i| ((i * 7919) % 997) as f32 / 97.0 - 5.0).collect();
            let mut col = vec![f32::NAN; c * k * k * ncols];
            im2col(&x, &g, 0, c, nb, &mut col);
            let mut want_dx = vec![0.5f32; x.len()];
            let mut dx = want_dx.clone();
            let colv: Vec<f32> = (0..col.len()).map(|i| ((i * 104729) % 1009) as f32 / 101.0 - 5.0).collect();
            for n in 0..nb {
                for ci in 0..c {
                    for (ki, kj) in (0..k).flat_map(|ki| (0..k).map(move |kj| (ki, kj))) {
                        let r = (ci * k + ki) * k + kj;
                        for (oy, ox) in (0..g.oh).flat_map(|oy| (0..g.ow).map(move |ox| (oy, ox))) {
                            let (iy, ix) = (
                                (oy * stride + ki) as isize - pad as isize,
                                (ox * stride + kj) as isize - pad as isize,
                            );
                            let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                            let at = r * ncols + n * opix + oy * g.ow + ox;
                            let xi = ((n * c + ci) * h + iy.max(0) as usize) * w + ix.max(0) as usize;
                            assert_eq!(col[at], if inside { x[xi] } else { 0.0 }, "im2col {g:?} at {at}");
                            if inside {
                                want_dx[xi] += colv[at];
                            }
                        }
                    }
                }
            }
            col2im(&colv, &g, 0, c, nb, &mut dx);
            assert_eq!(dx, want_dx, "col2im {g:?}");
        }
    }
}
