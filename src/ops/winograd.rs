//! Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, 2016). A 4×4 input tile `d`
//! and a 3×3 filter `g` give a 2×2 output block as `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`: 16 multiplies where
//! a direct sum takes 36. Over channels the 16 element-wise products become 16 GEMMs,
//! `M[ξ] = U[ξ] · V[ξ]` with `U[ξ]` the transformed filters `[cout, cin]` and `V[ξ]` the transformed
//! tiles `[cin, tiles]`, so the arithmetic of a conv layer falls 2.25x and its GEMMs stay large.
//!
//! The input gradient of a stride-1 convolution is the convolution of `gy`, padded by `2 − pad`,
//! with the flipped, transposed filter. Flipping `g` swaps rows/columns 0 and 3 of `G g Gᵀ`, so
//! the backward pass reads the forward's transformed filter through a permutation and a transpose.
//!
//! Rounding: every transform is a few additions and halvings. Against an f64 direct sum, on
//! ResNet-18 layer shapes (64→64 at 16×16, 256→256 at 8×8, 512→512 at 4×4), the relative error
//! norm was 4.2e-7, 3.8e-7 and 7.4e-7, where im2col + GEMM gave 4.7e-7, 2.4e-7 and 9.6e-7.
use super::chunks;
use super::gemm::{sgemm, Mat};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Tiles of one image: `th × tw` blocks of 2×2 outputs, reading `(2th+2) × (2tw+2)` zero-padded
/// inputs.
#[derive(Clone, Copy)]
struct Tiles {
    h: usize,
    w: usize,
    pad: usize,
    oh: usize,
    ow: usize,
    th: usize,
    tw: usize,
}

impl Tiles {
    fn new(h: usize, w: usize, pad: usize) -> Self {
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        Tiles { h, w, pad, oh, ow, th: oh.div_ceil(2), tw: ow.div_ceil(2) }
    }
    fn per_image(&self) -> usize {
        self.th * self.tw
    }
}

/// Transformed filters `u[ξ][co][ci] = (G w[co][ci] Gᵀ)[ξ]`, ξ = 4·row + column, with
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`. Runs once per weight (`cached_filter`).
fn transform_filter(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let k = cout * cin;
    assert_eq!(w.len(), k * 9, "winograd: filter of {} values, expected {cout}x{cin}x3x3", w.len());
    // G applied to three values: a column of g, then a row of Gg
    let g3 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let per_filter: Vec<[f32; 16]> = w.par_chunks_exact(9).map(|g| {
        let cols: [[f32; 4]; 3] = std::array::from_fn(|s| g3(g[s], g[3 + s], g[6 + s]));
        let mut u = [0.0f32; 16];
        for r in 0..4 {
            u[4 * r..4 * r + 4].copy_from_slice(&g3(cols[0][r], cols[1][r], cols[2][r]));
        }
        u
    }).collect();
    let mut u = vec![0.0f32; 16 * k];
    u.par_chunks_mut(k).enumerate().for_each(|(xi, row)| row.iter_mut().zip(&per_filter).for_each(|(o, f)| *o = f[xi]));
    u
}

/// `transform_filter` of the weights in use, kept as long as they live: the PGD inner loop runs
/// the same weights through 10 forwards and 10 input gradients, and a teacher's never change, so
/// each weight tensor is transformed once. An entry holds its weight's `Arc`, so while cached the
/// weight can neither be freed (and its address reused) nor changed in place (`Arc::make_mut`
/// copies a shared tensor); entries whose weight only the cache still holds are dropped.
pub fn cached_filter(w: &Arc<Tensor>, cout: usize, cin: usize) -> Arc<Vec<f32>> {
    static CACHE: Mutex<Vec<(Arc<Tensor>, Arc<Vec<f32>>)>> = Mutex::new(Vec::new());
    let found = {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(k, _)| Arc::strong_count(k) > 1);
        cache.iter().find(|(k, _)| Arc::ptr_eq(k, w)).map(|(_, u)| u.clone())
    };
    found.unwrap_or_else(|| {
        // transformed outside the lock: its parallel loop may run other tasks on this thread
        let u = Arc::new(transform_filter(w.data(), cout, cin));
        CACHE.lock().unwrap_or_else(|e| e.into_inner()).push((w.clone(), u.clone()));
        u
    })
}

/// ξ of the flipped filter's transform: rows and columns 0 and 3 swap.
fn flipped(xi: usize) -> usize {
    const P: [usize; 4] = [3, 1, 2, 0];
    P[xi / 4] * 4 + P[xi % 4]
}

/// `y = conv(x, w)` for x `[n, cin, h, w]`, transformed filter `u` of w `[cout, cin, 3, 3]`,
/// stride 1, padding `pad` (≤ 2); `y` is `[n, cout, h+2pad−2, w+2pad−2]`, fully written, plus `bias`.
pub fn forward(x: &[f32], u: &[f32], n: usize, cin: usize, cout: usize, (h, w): (usize, usize), pad: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    run(x, n, cin, cout, Tiles::new(h, w, pad), |xi| Mat::rows(&u[xi * cout * cin..][..cout * cin], cin), bias, y)
}

/// The input gradient `dx` `[n, cin, h, w]` of a stride-1 3×3 convolution with padding `pad`, from
/// `gy` `[n, cout, h+2pad−2, w+2pad−2]` and the forward's transformed filter `u`; fully written.
pub fn backward_data(gy: &[f32], u: &[f32], n: usize, cin: usize, cout: usize, (h, w): (usize, usize), pad: usize, dx: &mut [f32]) {
    let t = Tiles::new(h + 2 * pad - 2, w + 2 * pad - 2, 2 - pad);
    debug_assert_eq!((t.oh, t.ow), (h, w));
    run(gy, n, cout, cin, t, |xi| Mat::t(&u[flipped(xi) * cout * cin..][..cout * cin], cin), None, dx)
}

/// The convolution of `x` (`[n, c, h, w]`) to `co` channels with the transformed filters `lhs(ξ)`
/// (`[co, c]` views), in chunks of images: input transform, 16 GEMMs, output transform.
#[allow(clippy::too_many_arguments)]
fn run<'a>(x: &[f32], n: usize, c: usize, co: usize, t: Tiles, lhs: impl Fn(usize) -> Mat<'a> + Sync, bias: Option<&[f32]>, y: &mut [f32]) {
    let (plane, oplane, tpi) = (t.h * t.w, t.oh * t.ow, t.per_image());
    assert_eq!(x.len(), n * c * plane, "winograd: input of {} values, expected {n}x{c}x{}x{}", x.len(), t.h, t.w);
    assert_eq!(y.len(), n * co * oplane, "winograd: output of {} values, expected {n}x{co}x{}x{}", y.len(), t.oh, t.ow);
    let (nb, side_by_side) = chunks::split(n, 16 * (c + co) * tpi);
    y.par_chunks_mut(nb * co * oplane).enumerate().for_each(|(ci, yc)| {
        let nbc = yc.len() / (co * oplane);
        let tiles = nbc * tpi;
        chunks::with_scratch(16 * c * tiles, 16 * co * tiles, |v, m| {
            transform_input(&x[ci * nb * c * plane..][..nbc * c * plane], &t, c, nbc, v);
            for xi in 0..16 {
                let rhs = Mat { data: &v[xi * tiles..], rs: 16 * tiles, cs: 1 };
                sgemm(co, tiles, c, lhs(xi), rhs, &mut m[xi * tiles..], 16 * tiles, false, !side_by_side);
            }
            transform_output(m, &t, co, nbc, bias, yc);
        })
    });
}

/// `d[i] = f([src[0][i], src[1][i], …])`: the element-wise step of every transform, one
/// vectorisable loop (cutting every source to `d`'s length takes the bounds checks out of it).
#[inline(always)]
fn combine<const N: usize>(d: &mut [f32], src: [&[f32]; N], f: impl Fn([f32; N]) -> f32) {
    let n = d.len();
    let src = src.map(|s| &s[..n]);
    for i in 0..n {
        d[i] = f(std::array::from_fn(|k| src[k][i]));
    }
}

/// `v[ch][ξ][tile] = (Bᵀ d B)[ξ]` for every 4×4 tile `d` of every (image, channel) plane, tiles
/// numbered (image, tile row, tile column); `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0],
/// [0, 1, 0, −1]]`. Tile column tx reads padded columns 2tx..2tx+4, so each padded row is first
/// gathered into four arrays (columns 2tx, 2tx+1, 2tx+2, 2tx+3 for every tx), with the even rows
/// and the odd rows apart. After that, B along the rows and Bᵀ down the columns are long vector
/// operations over the whole plane: short per-row loops were most of the transform's time on
/// 8×8 and 16×16 maps.
fn transform_input(x: &[f32], t: &Tiles, c: usize, nb: usize, v: &mut [f32]) {
    let (plane, tpi, tiles, tw) = (t.h * t.w, t.per_image(), nb * t.per_image(), t.tw);
    let rows = t.th + 1;
    let span = rows * tw;
    // per-task scratch: a padded row (whose padding columns stay zero: only its interior is ever
    // copied into); taps[(parity·4 + k)·span ..], column 2tx+k of the padded rows of that parity;
    // cols[(parity·4 + j)·span ..], column combination j of the same rows
    let scratch = || (vec![0.0f32; 2 * tw + 2], vec![0.0f32; 8 * span], vec![0.0f32; 8 * span]);
    v[..16 * c * tiles].par_chunks_mut(16 * tiles).enumerate().for_each_init(scratch, |(padded, taps, cols), (ch, vc)| {
        for img in 0..nb {
            let src = &x[(img * c + ch) * plane..][..plane];
            for pr in 0..2 * rows {
                let iy = pr.wrapping_sub(t.pad);
                if iy < t.h {
                    padded[t.pad..t.pad + t.w].copy_from_slice(&src[iy * t.w..][..t.w]);
                } else {
                    padded.fill(0.0);
                }
                let at = |k: usize| (pr % 2 * 4 + k) * span + pr / 2 * tw;
                let (t0, rest) = taps[at(0)..].split_at_mut(span);
                let (t1, rest) = rest.split_at_mut(span);
                let (t2, t3) = rest.split_at_mut(span);
                let quads = padded.windows(4).step_by(2);
                for ((((a, b), c), d), q) in t0[..tw].iter_mut().zip(&mut t1[..tw]).zip(&mut t2[..tw]).zip(&mut t3[..tw]).zip(quads) {
                    (*a, *b, *c, *d) = (q[0], q[1], q[2], q[3]);
                }
            }
            for parity in 0..2 {
                let tap = |k: usize| &taps[(parity * 4 + k) * span..][..span];
                let col = |j: usize| (parity * 4 + j) * span;
                let (d0, d1, d2, d3) = (tap(0), tap(1), tap(2), tap(3));
                combine(&mut cols[col(0)..][..span], [d0, d2], |[a, b]| a - b);
                combine(&mut cols[col(1)..][..span], [d1, d2], |[a, b]| a + b);
                combine(&mut cols[col(2)..][..span], [d2, d1], |[a, b]| a - b);
                combine(&mut cols[col(3)..][..span], [d1, d3], |[a, b]| a - b);
            }
            // tile row ty reads padded rows 2ty..2ty+4 = even[ty], odd[ty], even[ty+1], odd[ty+1]
            for j in 0..4 {
                let (ev, od) = (&cols[j * span..][..span], &cols[(4 + j) * span..][..span]);
                let d = |i: usize| (4 * i + j) * tiles + img * tpi;
                combine(&mut vc[d(0)..][..tpi], [ev, &ev[tw..]], |[a, b]| a - b);
                combine(&mut vc[d(1)..][..tpi], [od, &ev[tw..]], |[a, b]| a + b);
                combine(&mut vc[d(2)..][..tpi], [&ev[tw..], od], |[a, b]| a - b);
                combine(&mut vc[d(3)..][..tpi], [od, &od[tw..]], |[a, b]| a - b);
            }
        }
    });
}

/// `y` (`[nb, co, oh, ow]`) from the GEMM products `m[ch][ξ][tile]`: each tile's 2×2 block is
/// `Aᵀ M A` with `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`, clipped at odd edges, plus `bias`. Both
/// steps run over all tiles of a plane at once; only the final interleave goes row by row.
fn transform_output(m: &[f32], t: &Tiles, co: usize, nb: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    let (oplane, tpi, tiles, tw) = (t.oh * t.ow, t.per_image(), nb * t.per_image(), t.tw);
    // per-task scratch: rows[(r·4 + j)·tpi ..], row r of Aᵀ applied to column j of every tile's
    // M; parts[(2r + parity)·tpi ..], the output columns of that parity of rows 2ty+r; one row
    let scratch = || (vec![0.0f32; 8 * tpi], vec![0.0f32; 4 * tpi], vec![0.0f32; 2 * tw]);
    y.par_chunks_mut(oplane).enumerate().with_min_len(super::grain(oplane)).for_each_init(scratch, |(rows, parts, out), (i, dst)| {
        let (img, ch) = (i / co, i % co);
        let b = bias.map_or(0.0, |b| b[ch]);
        let s = |xi: usize| &m[(ch * 16 + xi) * tiles + img * tpi..][..tpi];
        for j in 0..4 {
            let (s0, s1, s2, s3) = (s(j), s(4 + j), s(8 + j), s(12 + j));
            combine(&mut rows[j * tpi..][..tpi], [s0, s1, s2], |[a, c, d]| a + c + d);
            combine(&mut rows[(4 + j) * tpi..][..tpi], [s1, s2, s3], |[a, c, d]| a - c - d);
        }
        // then along the columns: output columns 2tx (even) and 2tx+1 (odd) of rows 2ty+r
        for r in 0..2 {
            let q = |j: usize| &rows[(4 * r + j) * tpi..][..tpi];
            combine(&mut parts[2 * r * tpi..][..tpi], [q(0), q(1), q(2)], |[a, c, d]| a + c + d + b);
            combine(&mut parts[(2 * r + 1) * tpi..][..tpi], [q(1), q(2), q(3)], |[a, c, d]| a - c - d + b);
        }
        for (oy, row) in dst.chunks_exact_mut(t.ow).enumerate() {
            let (ty, r) = (oy / 2, oy % 2);
            let (even, odd) = (&parts[2 * r * tpi + ty * tw..][..tw], &parts[(2 * r + 1) * tpi + ty * tw..][..tw]);
            // an odd-width row goes through `out`, which has the last tile's second column
            let full = t.ow == 2 * tw;
            let o = if full { &mut row[..] } else { &mut out[..] };
            for ((o, &e), &d) in o.chunks_exact_mut(2).zip(even).zip(odd) {
                (o[0], o[1]) = (e, d);
            }
            if !full {
                row.copy_from_slice(&out[..t.ow]);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 direct convolution, stride 1, the definition.
    fn direct(x: &[f32], w: &[f32], n: usize, cin: usize, cout: usize, h: usize, wd: usize, pad: usize) -> Vec<f64> {
        let (oh, ow) = (h + 2 * pad - 2, wd + 2 * pad - 2);
        let mut y = vec![0.0f64; n * cout * oh * ow];
        for (i, yv) in y.iter_mut().enumerate() {
            let (img, co, oy, ox) = (i / (cout * oh * ow), i / (oh * ow) % cout, i / ow % oh, i % ow);
            for ci in 0..cin {
                for (ki, kj) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                    let (iy, ix) = ((oy + ki) as isize - pad as isize, (ox + kj) as isize - pad as isize);
                    if (0..h as isize).contains(&iy) && (0..wd as isize).contains(&ix) {
                        *yv += x[((img * cin + ci) * h + iy as usize) * wd + ix as usize] as f64 * w[((co * cin + ci) * 3 + ki) * 3 + kj] as f64;
                    }
                }
            }
        }
        y
    }

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104729) % 2003) as f32 / 1001.0 - 1.0).collect()
    }

    fn rel_err(a: &[f32], want: &[f64]) -> f64 {
        let d: f64 = a.iter().zip(want).map(|(a, b)| (*a as f64 - b).powi(2)).sum();
        (d / want.iter().map(|b| b * b).sum::<f64>()).sqrt()
    }

    /// Forward and input gradient against the f64 definition, on odd and even maps, paddings 0–2,
    /// one to a few tiles, with bias: each output value comes from the right taps, or the error
    /// would be of order 1, not 1e-7.
    #[test]
    fn matches_definition() {
        for (n, cin, cout, h, w, pad) in [(2, 3, 4, 5, 7, 1), (1, 2, 3, 4, 4, 0), (2, 3, 2, 3, 5, 2), (1, 4, 5, 1, 1, 1), (3, 5, 6, 8, 6, 1), (1, 1, 1, 2, 3, 2)] {
            let (x, wt) = (data(n * cin * h * w, 1), data(cout * cin * 9, 2));
            let bias: Vec<f32> = (0..cout).map(|i| i as f32 * 0.25 - 0.5).collect();
            let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
            let u = transform_filter(&wt, cout, cin);
            let mut y = vec![f32::NAN; n * cout * oh * ow];
            forward(&x, &u, n, cin, cout, (h, w), pad, Some(&bias), &mut y);
            let mut want = direct(&x, &wt, n, cin, cout, h, w, pad);
            want.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i / (oh * ow) % cout] as f64);
            assert!(rel_err(&y, &want) < 1e-6, "forward n{n} {cin}->{cout} {h}x{w} pad {pad}: {}", rel_err(&y, &want));
            // dx[ci] = Σ_co conv(gy[co], flip(w[co][ci])) with padding 2 − pad
            let gy = data(y.len(), 3);
            let mut flipped = vec![0.0f32; wt.len()];
            for (co, ci, t) in (0..cout).flat_map(|co| (0..cin).flat_map(move |ci| (0..9).map(move |t| (co, ci, t)))) {
                flipped[(ci * cout + co) * 9 + 8 - t] = wt[(co * cin + ci) * 9 + t];
            }
            let want = direct(&gy, &flipped, n, cout, cin, oh, ow, 2 - pad);
            let mut dx = vec![f32::NAN; x.len()];
            backward_data(&gy, &u, n, cin, cout, (h, w), pad, &mut dx);
            assert!(rel_err(&dx, &want) < 1e-6, "backward n{n} {cin}->{cout} {h}x{w} pad {pad}: {}", rel_err(&dx, &want));
        }
    }

    /// The cache hands out one transform per weight tensor, and a fresh one once the weight is
    /// changed (`Arc::make_mut` copies it, since the cache holds it too).
    #[test]
    fn cache_follows_weight_changes() {
        let mut w = Arc::new(Tensor::from_vec(&[2, 3, 3, 3], data(54, 4)));
        let u = cached_filter(&w, 2, 3);
        assert!(Arc::ptr_eq(&u, &cached_filter(&w, 2, 3)));
        Arc::make_mut(&mut w).data_mut()[0] += 1.0;
        let changed = cached_filter(&w, 2, 3);
        assert_eq!(*changed, transform_filter(w.data(), 2, 3));
        assert_ne!(*changed, *u);
    }
}

