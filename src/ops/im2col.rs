//! im2col / col2im for a chunk of NCHW images, so that a whole chunk of a conv layer is one GEMM.
//! Column matrix layout: rows (c, ki, kj) of one channel group, columns (image, out_y, out_x).
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
    col[..cg * kk * ncols].par_chunks_mut(ncols).enumerate().with_min_len(super::grain(ncols)).for_each(|(row, dst)| {
        let (c, ki, kj) = (c0 + row / kk, row % kk / g.k, row % g.k);
        let xs = g.valid_x(kj);
        for n in 0..nb {
            let src = &x[(n * g.c + c) * plane..][..plane];
            for oy in 0..g.oh {
                let d = &mut dst[n * opix + oy * g.ow..][..g.ow];
                let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                if iy < 0 || iy >= g.h as isize {
                    d.fill(0.0);
                    continue;
                }
                let srow = &src[iy as usize * g.w..][..g.w];
                d[..xs.start].fill(0.0);
                d[xs.end..].fill(0.0);
                let ix0 = xs.start * g.stride + kj - g.pad;
                if g.stride == 1 {
                    d[xs.clone()].copy_from_slice(&srow[ix0..ix0 + xs.len()]);
                } else {
                    for (o, v) in d[xs.clone()].iter_mut().zip(srow[ix0..].iter().step_by(g.stride)) {
                        *o = *v;
                    }
                }
            }
        }
    });
}

/// Adds `col` ([cg*k*k, nb*oh*ow]) back into channels `c0..c0+cg` of the `nb` images of `dx`.
pub fn col2im(col: &[f32], g: &Geom, c0: usize, cg: usize, nb: usize, dx: &mut [f32]) {
    let (plane, opix) = (g.h * g.w, g.oh * g.ow);
    let ncols = nb * opix;
    // Parallel over images then channels: every (image, channel) plane is written by one task.
    dx[..nb * g.c * plane].par_chunks_mut(g.c * plane).enumerate().for_each(|(n, img)| {
        img[c0 * plane..(c0 + cg) * plane].par_chunks_mut(plane).enumerate().with_min_len(super::grain(plane * g.k * g.k)).for_each(|(cl, dst)| {
            for ki in 0..g.k {
                for kj in 0..g.k {
                    let xs = g.valid_x(kj);
                    let src = &col[((cl * g.k + ki) * g.k + kj) * ncols + n * opix..][..opix];
                    for oy in 0..g.oh {
                        let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize || xs.is_empty() {
                            continue;
                        }
                        let drow = &mut dst[iy as usize * g.w..][..g.w];
                        let s = &src[oy * g.ow + xs.start..oy * g.ow + xs.end];
                        let ix0 = xs.start * g.stride + kj - g.pad;
                        if g.stride == 1 {
                            // contiguous: a plain zip vectorises, step_by does not
                            drow[ix0..ix0 + s.len()].iter_mut().zip(s).for_each(|(d, v)| *d += v);
                        } else {
                            drow[ix0..].iter_mut().step_by(g.stride).zip(s).for_each(|(d, v)| *d += v);
                        }
                    }
                }
            }
        });
    });
}
