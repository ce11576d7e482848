//! Depthwise convolution (one filter per channel) by direct loops: each kernel tap is a strided
//! multiply-add over a row, so no im2col buffer and no one-row GEMMs. Planes run in parallel.
//! Tests: `tests/gradcheck.rs` (conv2d_depthwise) and the fixtures' depthwise conv2d case.
use super::grain;
use super::im2col::{Geom, span};
use rayon::prelude::*;

/// Calls `f(ki, kj, oy, iy, ox_range, ix0)` for every kernel tap and output row that reads inside the image.
fn taps(g: &Geom, mut f: impl FnMut(usize, usize, usize, usize, std::ops::Range<usize>, usize)) {
    for ki in 0..g.k {
        for oy in span(g.oh, g.h, g.stride, g.pad, ki) {
            let iy = oy * g.stride + ki - g.pad;
            for kj in 0..g.k {
                let xs = span(g.ow, g.w, g.stride, g.pad, kj);
                if !xs.is_empty() {
                    let ix0 = xs.start * g.stride + kj - g.pad;
                    f(ki, kj, oy, iy, xs, ix0);
                }
            }
        }
    }
}

pub fn forward(x: &[f32], w: &[f32], g: &Geom, n: usize, y: &mut [f32]) {
    let (plane, opix, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    y[..n * g.c * opix].par_chunks_mut(opix).enumerate().with_min_len(grain(opix)).for_each(|(i, yp)| {
        let (xp, wc) = (&x[i * plane..][..plane], &w[(i % g.c) * kk..][..kk]);
        taps(g, |ki, kj, oy, iy, xs, ix0| {
            let wv = wc[ki * g.k + kj];
            let yr = &mut yp[oy * g.ow..][xs];
            for (o, v) in yr.iter_mut().zip(xp[iy * g.w + ix0..].iter().step_by(g.stride)) {
                *o += wv * v;
            }
        });
    });
}

pub fn backward_data(gy: &[f32], w: &[f32], g: &Geom, n: usize, dx: &mut [f32]) {
    let (plane, opix, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    dx[..n * g.c * plane].par_chunks_mut(plane).enumerate().with_min_len(grain(plane)).for_each(|(i, dp)| {
        let (gp, wc) = (&gy[i * opix..][..opix], &w[(i % g.c) * kk..][..kk]);
        taps(g, |ki, kj, oy, iy, xs, ix0| {
            let wv = wc[ki * g.k + kj];
            let gr = &gp[oy * g.ow..][xs];
            for (d, v) in dp[iy * g.w + ix0..].iter_mut().step_by(g.stride).zip(gr) {
                *d += wv * v;
            }
        });
    });
}

pub fn backward_filter(gy: &[f32], x: &[f32], g: &Geom, n: usize, dw: &mut [f32]) {
    let (plane, opix, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    dw[..g.c * kk].par_chunks_mut(kk).enumerate().for_each(|(c, dwc)| {
        let mut acc = vec![0.0f64; kk];
        for img in 0..n {
            let i = img * g.c + c;
            let (gp, xp) = (&gy[i * opix..][..opix], &x[i * plane..][..plane]);
            taps(g, |ki, kj, oy, iy, xs, ix0| {
                let gr = &gp[oy * g.ow..][xs];
                let s: f32 = gr.iter().zip(xp[iy * g.w + ix0..].iter().step_by(g.stride)).map(|(a, b)| a * b).sum();
                acc[ki * g.k + kj] += s as f64;
            });
        }
        for (d, a) in dwc.iter_mut().zip(acc) {
            *d += a as f32;
        }
    });
}
