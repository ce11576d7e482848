//! Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, 2016). A 4×4 input tile `d`
//! and a 3×3 filter `g` give a 2×2 output block as `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`: 16 multiplies where
//! a direct sum takes 36. Over channels the 16 element-wise products become 16 GEMMs,
//! `M[ξ] = V[ξ] · U[ξ]` with `V[ξ]` the transformed tiles `[tiles, cin]` and `U[ξ]` the transformed
//! filters `[cin, cout]`, so the arithmetic of a conv layer falls 2.25x and its GEMMs stay large.
//! The transforms work channels last (images are transposed to `[h, w, c]` and back), so each of
//! their steps is a vector operation over channels.
//!
//! The input gradient of a stride-1 convolution is the convolution of `gy`, padded by `2 − pad`,
//! with the flipped, transposed filter. Flipping `g` swaps rows/columns 0 and 3 of `G g Gᵀ`; the
//! transposed filter needs the other layout, `[cout, cin]`, so each direction caches its own.
//!
//! Rounding: every transform is a few additions and halvings. Against an f64 direct sum, on
//! ResNet-18 layer shapes (64→64 at 16×16, 256→256 at 8×8, 512→512 at 4×4), the relative error
//! norm was 4.2e-7, 3.8e-7 and 7.4e-7, where im2col + GEMM gave 4.7e-7, 2.4e-7 and 9.6e-7.
//! Tests: below (against the f64 definition), `tests/gradcheck.rs` and the fixtures' conv2d cases.
use super::chunks;
use super::epilogue::Epilogue;
use super::gemm::{Mat, sgemm};
use super::transpose::transpose;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Transformed filters `(G w[co][ci] Gᵀ)[ξ]`, ξ = 4·row + column, with
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`, laid out for one direction: for the
/// forward `u[ξ][ci][co]`; for the input gradient, the flipped filter's `u[ξ][co][ci]`, which is the
/// forward's ξ' = `flipped(ξ)` (flipping g swaps rows and columns 0 and 3 of `G g Gᵀ`).
fn transform_filter(w: &[f32], cout: usize, cin: usize, dir: Dir) -> Vec<f32> {
    let k = cout * cin;
    assert_eq!(w.len(), k * 9, "winograd: filter of {} values, expected {cout}x{cin}x3x3", w.len());
    // G applied to three values: a column of g, then a row of Gg
    let g3 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let per_filter: Vec<[f32; 16]> = w
        .par_chunks_exact(9)
        .map(|g| {
            let cols: [[f32; 4]; 3] = std::array::from_fn(|s| g3(g[s], g[3 + s], g[6 + s]));
            let mut u = [0.0f32; 16];
            for r in 0..4 {
                u[4 * r..4 * r + 4].copy_from_slice(&g3(cols[0][r], cols[1][r], cols[2][r]));
            }
            u
        })
        .collect();
    let mut u = vec![0.0f32; 16 * k];
    u.par_chunks_mut(k).enumerate().for_each(|(xi, block)| match dir {
        Dir::Forward => {
            block.iter_mut().enumerate().for_each(|(i, o)| *o = per_filter[(i % cout) * cin + i / cout][xi])
        }
        Dir::Backward => block.iter_mut().zip(&per_filter).for_each(|(o, f)| *o = f[flipped(xi)]),
    });
    u
}

/// ξ of the flipped filter's transform: rows and columns 0 and 3 swap.
fn flipped(xi: usize) -> usize {
    const P: [usize; 4] = [3, 1, 2, 0];
    P[xi / 4] * 4 + P[xi % 4]
}

#[derive(Clone, Copy)]
enum Dir {
    Forward,
    Backward,
}

/// A weight's transformed filters, each direction's made when first asked for.
#[derive(Default)]
struct Filter {
    forward: OnceLock<Vec<f32>>,
    backward: OnceLock<Vec<f32>>,
}

impl Filter {
    fn slot(&self, dir: Dir) -> &OnceLock<Vec<f32>> {
        match dir {
            Dir::Forward => &self.forward,
            Dir::Backward => &self.backward,
        }
    }
    fn get(&self, dir: Dir) -> &[f32] {
        self.slot(dir).get().expect("cached_filter made it")
    }
}

/// `transform_filter` of a weight in use, kept as long as the weight lives: the PGD inner loop runs
/// the same weights through 10 forwards and 10 input gradients, and a teacher's never change, so
/// each weight tensor is transformed once per direction. An entry holds its weight's `Arc`, so
/// while cached the weight can neither be freed (and its address reused) nor changed in place
/// (`Arc::make_mut` copies a shared tensor); entries whose weight only the cache still holds are
/// dropped.
fn cached_filter(w: &Arc<Tensor>, cout: usize, cin: usize, dir: Dir) -> Arc<Filter> {
    static CACHE: Mutex<Vec<(Arc<Tensor>, Arc<Filter>)>> = Mutex::new(Vec::new());
    let f = {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(k, _)| Arc::strong_count(k) > 1);
        match cache.iter().find(|(k, _)| Arc::ptr_eq(k, w)) {
            Some((_, f)) => f.clone(),
            None => {
                let f = Arc::new(Filter::default());
                cache.push((w.clone(), f.clone()));
                f
            }
        }
    };
    // Transformed holding no lock (not even the slot's, as `get_or_init` would): its parallel loop
    // may run other tasks on this thread, which may want the same filter. Two racing callers
    // transform it twice, and the first result stays.
    if f.slot(dir).get().is_none() {
        let _ = f.slot(dir).set(transform_filter(w.data(), cout, cin, dir));
    }
    f
}

/// A 3×3 stride-1 convolution layer: `n` images of `cin` channels, `h × w`, to `cout` channels,
/// padding `pad` (≤ 2).
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
}

/// `y = conv(x, w)` for x `[n, cin, h, w]`, w `[cout, cin, 3, 3]`; `y` is
/// `[n, cout, h+2pad−2, w+2pad−2]`, fully written, through the epilogue.
pub fn forward(x: &[f32], w: &Arc<Tensor>, l: Layer, epi: Epilogue, y: &mut [f32]) {
    let f = cached_filter(w, l.cout, l.cin, Dir::Forward);
    run(x, l.n, l.cin, l.cout, Tiles::new(l.h, l.w, l.pad), f.get(Dir::Forward), epi, y)
}

/// The input gradient `dx` `[n, cin, h, w]` of a stride-1 3×3 convolution with padding `pad`, from
/// `gy` `[n, cout, h+2pad−2, w+2pad−2]` and the weight `w`; fully written. It is the convolution of
/// `gy`, padded by `2 − pad`, with the flipped, transposed filter.
pub fn backward_data(gy: &[f32], w: &Arc<Tensor>, l: Layer, dx: &mut [f32]) {
    let f = cached_filter(w, l.cout, l.cin, Dir::Backward);
    let t = Tiles::new(l.h + 2 * l.pad - 2, l.w + 2 * l.pad - 2, 2 - l.pad);
    debug_assert_eq!((t.oh, t.ow), (l.h, l.w));
    run(gy, l.n, l.cout, l.cin, t, f.get(Dir::Backward), Epilogue::default(), dx)
}

/// The convolution of `x` (`[n, c, h, w]`) to `co` channels with the transformed filters `u`
/// (`[16][c][co]`), in chunks of images, channels last: images to `[h, w, c]`, input transform,
/// 16 GEMMs `M[ξ][tile, co] = V[ξ][tile, c] · u[ξ][c, co]`, output transform, images back to NCHW.
/// With the channels last every transform step is a vector operation over channels, whatever the
/// map size; channels first, small maps made them short per-plane loops.
#[allow(clippy::too_many_arguments)]
fn run(x: &[f32], n: usize, c: usize, co: usize, t: Tiles, u: &[f32], epi: Epilogue, y: &mut [f32]) {
    let (plane, oplane, tpi) = (t.h * t.w, t.oh * t.ow, t.per_image());
    assert_eq!(x.len(), n * c * plane, "winograd: input of {} values, expected {n}x{c}x{}x{}", x.len(), t.h, t.w);
    assert_eq!(y.len(), n * co * oplane, "winograd: output of {} values, expected {n}x{co}x{}x{}", y.len(), t.oh, t.ow);
    assert_eq!(u.len(), 16 * c * co, "winograd: {} transformed filter values for {c} -> {co} channels", u.len());
    let (nb, side_by_side) = chunks::split(n, 16 * (c + co) * tpi + c * plane + co * oplane);
    // Work within a chunk runs in parallel only when the chunks do not: a thread waiting on a
    // nested task could start another chunk, whose scratch would then be freshly allocated.
    let min = if side_by_side { usize::MAX } else { 1 };
    y.par_chunks_mut(nb * co * oplane).enumerate().for_each(|(ci, yc)| {
        let nbc = yc.len() / (co * oplane);
        let tiles = nbc * tpi;
        let (vs, ms) = (skewed(tiles * c), skewed(tiles * co));
        chunks::with_scratch(nbc * c * plane + 16 * vs, 16 * ms + nbc * co * oplane, |a, b| {
            let (xt, v) = a.split_at_mut(nbc * c * plane);
            let (m, yt) = b.split_at_mut(16 * ms);
            let xc = &x[ci * nb * c * plane..][..nbc * c * plane];
            xt.par_chunks_mut(c * plane)
                .zip(xc.par_chunks(c * plane))
                .with_min_len(min)
                .for_each(|(d, s)| transpose(s, c, d));
            transform_input(xt, &t, c, nbc, v, vs, min);
            for xi in 0..16 {
                let (vx, ux) = (Mat::rows(&v[xi * vs..][..tiles * c], c), Mat::rows(&u[xi * c * co..][..c * co], co));
                sgemm(tiles, co, c, vx, ux, &mut m[xi * ms..][..tiles * co], co, false, !side_by_side);
            }
            transform_output(m, ms, &t, co, nbc, epi, yt, min);
            yc.par_chunks_mut(co * oplane)
                .zip(yt.par_chunks(co * oplane))
                .with_min_len(min)
                .for_each(|(d, s)| transpose(s, oplane, d));
        })
    });
}

/// Channels per step of the transforms: one AVX2 vector.
const L: usize = 8;

/// The distance between consecutive `V[ξ]` (and `M[ξ]`) of `len` values: one cache line more, so
/// that the 16 streams a transform reads or writes do not all fall into one cache set (`len` is
/// often a multiple of 4 KiB; ResNet-18's Winograd layers were 6-14% slower without the skew).
fn skewed(len: usize) -> usize {
    len + 16
}

/// The `items` consecutive parts (`per` values each) of each of the 16 `V[ξ]` (`stride` apart in
/// `v`), one item holding its part of all 16, so that items can be transformed in parallel.
fn parts(v: &mut [f32], stride: usize, items: usize, per: usize) -> Vec<[&mut [f32]; 16]> {
    let mut rows: Vec<_> = v.chunks_mut(stride).map(|r| r[..items * per].chunks_mut(per)).collect();
    (0..items).map(|_| std::array::from_fn(|xi| rows[xi].next().expect("a part per item"))).collect()
}

/// `L` channels from `src[at..]` (zeros for padding, `None`), only the first `l` of them read.
#[inline(always)]
fn load(src: &[f32], at: Option<usize>, l: usize) -> [f32; L] {
    let mut r = [0.0; L];
    if let Some(p) = at {
        if l == L {
            r = src[p..p + L].try_into().expect("L values");
        } else {
            r[..l].copy_from_slice(&src[p..p + l]);
        }
    }
    r
}

/// The first `l` of `v` into `dst`.
#[inline(always)]
fn store(dst: &mut [f32], v: &[f32; L], l: usize) {
    if l == L {
        dst[..L].copy_from_slice(v);
    } else {
        dst[..l].copy_from_slice(&v[..l]);
    }
}

/// `[a[i] ∘ b[i]]` for `∘` = `f`.
#[inline(always)]
fn lanes(a: &[f32; L], b: &[f32; L], f: impl Fn(f32, f32) -> f32) -> [f32; L] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

/// `Bᵀ d` for four values (rows or columns of a tile), lane by lane.
#[inline(always)]
fn bt(d: [&[f32; L]; 4]) -> [[f32; L]; 4] {
    [
        lanes(d[0], d[2], |a, b| a - b),
        lanes(d[1], d[2], |a, b| a + b),
        lanes(d[2], d[1], |a, b| a - b),
        lanes(d[1], d[3], |a, b| a - b),
    ]
}

/// `v[ξ·vs + tile·c + ch] = (Bᵀ d B)[ξ]` for every 4×4 input tile `d` of every channel of the `nb`
/// images `xt` (`[nb][h][w][c]`), tiles numbered (image, tile row, tile column);
/// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`, along the tile's rows first.
fn transform_input(xt: &[f32], t: &Tiles, c: usize, nb: usize, v: &mut [f32], vs: usize, min: usize) {
    let plane = t.h * t.w;
    // one item per row of tiles (whose tiles are consecutive in every V[ξ]): even one image
    // spreads over the threads; at least `min` items per task
    parts(&mut v[..16 * vs], vs, nb * t.th, t.tw * c).into_par_iter().enumerate().with_min_len(min).for_each(
        |(row, dst)| {
            let (img, ty) = (row / t.th, row % t.th);
            let src = &xt[img * plane * c..][..plane * c];
            for tx in 0..t.tw {
                let at = tx * c;
                // the tile's 16 input pixels (None: padding), row-major
                let px: [Option<usize>; 16] = std::array::from_fn(|k| {
                    let (iy, ix) = ((2 * ty + k / 4).wrapping_sub(t.pad), (2 * tx + k % 4).wrapping_sub(t.pad));
                    (iy < t.h && ix < t.w).then(|| (iy * t.w + ix) * c)
                });
                for c0 in (0..c).step_by(L) {
                    let l = L.min(c - c0);
                    let d: [[f32; L]; 16] = std::array::from_fn(|k| load(src, px[k].map(|p| p + c0), l));
                    // along each row (over the tile's columns), then down the columns
                    let e: [[[f32; L]; 4]; 4] =
                        std::array::from_fn(|r| bt([&d[4 * r], &d[4 * r + 1], &d[4 * r + 2], &d[4 * r + 3]]));
                    for j in 0..4 {
                        for (i, o) in bt([&e[0][j], &e[1][j], &e[2][j], &e[3][j]]).iter().enumerate() {
                            store(&mut dst[4 * i + j][at + c0..], o, l);
                        }
                    }
                }
            }
        },
    );
}

/// `yt` (`[nb][oh][ow][co]`) from the GEMM products `m[ξ·ms + tile·co + ch]`: each tile's 2×2 block
/// is `Aᵀ M A` with `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`, down the columns first, clipped at odd
/// edges, through the epilogue.
#[allow(clippy::too_many_arguments)]
fn transform_output(m: &[f32], ms: usize, t: &Tiles, co: usize, nb: usize, epi: Epilogue, yt: &mut [f32], min: usize) {
    let (tpi, oplane) = (t.per_image(), t.oh * t.ow);
    let coeffs = epi.coefficients(co);
    // Aᵀ applied to four values, lane by lane, each sum left to right
    let at = |a: &[f32; L], b: &[f32; L], c: &[f32; L], d: &[f32; L]| -> [[f32; L]; 2] {
        [std::array::from_fn(|i| a[i] + b[i] + c[i]), std::array::from_fn(|i| b[i] - c[i] - d[i])]
    };
    // one item per row of tiles, the (up to) two output rows it makes: even one image spreads
    // over the threads; at least `min` items per task
    let image = |(img, yi): (usize, &mut [f32])| {
        yi.par_chunks_mut(2 * t.ow * co).enumerate().with_min_len(min).for_each(|(ty, dst)| {
            for tx in 0..t.tw {
                let tile = img * tpi + ty * t.tw + tx;
                for c0 in (0..co).step_by(L) {
                    let l = L.min(co - c0);
                    let s: [[f32; L]; 16] = std::array::from_fn(|xi| load(m, Some(xi * ms + tile * co + c0), l));
                    // rows r of Aᵀ M (over the tile's columns j), then each row's two outputs
                    let q: [[[f32; L]; 2]; 4] = std::array::from_fn(|j| at(&s[j], &s[4 + j], &s[8 + j], &s[12 + j]));
                    for r in 0..2 {
                        let o = at(&q[0][r], &q[1][r], &q[2][r], &q[3][r]);
                        for (k, o) in o.iter().enumerate() {
                            let ox = 2 * tx + k;
                            if 2 * ty + r < t.oh && ox < t.ow {
                                let mut v = *o;
                                epi.lanes(&mut v, &coeffs, c0, l);
                                store(&mut dst[(r * t.ow + ox) * co + c0..], &v, l);
                            }
                        }
                    }
                }
            }
        })
    };
    yt[..nb * oplane * co].par_chunks_mut(oplane * co).enumerate().with_min_len(min).for_each(image);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 direct convolution, stride 1, the definition.
    fn direct(x: &[f32], w: &[f32], l: Layer) -> Vec<f64> {
        let Layer { n, cin, cout, h, w: wd, pad } = l;
        let (oh, ow) = (h + 2 * pad - 2, wd + 2 * pad - 2);
        let mut y = vec![0.0f64; n * cout * oh * ow];
        for (i, yv) in y.iter_mut().enumerate() {
            let (img, co, oy, ox) = (i / (cout * oh * ow), i / (oh * ow) % cout, i / ow % oh, i % ow);
            for ci in 0..cin {
                for (ki, kj) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                    let (iy, ix) = ((oy + ki) as isize - pad as isize, (ox + kj) as isize - pad as isize);
                    if (0..h as isize).contains(&iy) && (0..wd as isize).contains(&ix) {
                        *yv += x[((img * cin + ci) * h + iy as usize) * wd + ix as usize] as f64
                            * w[((co * cin + ci) * 3 + ki) * 3 + kj] as f64;
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
    /// one to a few tiles, channel counts below, at and past the transforms' 8-channel steps, with
    /// bias: each output value comes from the right taps, or the error would be of order 1, not 1e-7.
    #[test]
    fn matches_definition() {
        for (n, cin, cout, h, w, pad) in [
            (2, 3, 4, 5, 7, 1),
            (1, 2, 3, 4, 4, 0),
            (2, 3, 2, 3, 5, 2),
            (1, 4, 5, 1, 1, 1),
            (3, 5, 6, 8, 6, 1),
            (1, 1, 1, 2, 3, 2),
            (2, 11, 9, 5, 6, 1),
            (1, 8, 16, 4, 4, 1),
        ] {
            let (x, wt) = (data(n * cin * h * w, 1), data(cout * cin * 9, 2));
            let bias: Vec<f32> = (0..cout).map(|i| i as f32 * 0.25 - 0.5).collect();
            let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
            let wa = Arc::new(Tensor::from_vec(&[cout, cin, 3, 3], wt.clone()));
            let mut y = vec![f32::NAN; n * cout * oh * ow];
            let layer = Layer { n, cin, cout, h, w, pad };
            forward(&x, &wa, layer, Epilogue { bias: Some(&bias), ..Default::default() }, &mut y);
            let mut want = direct(&x, &wt, layer);
            want.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i / (oh * ow) % cout] as f64);
            assert!(rel_err(&y, &want) < 1e-6, "forward n{n} {cin}->{cout} {h}x{w} pad {pad}: {}", rel_err(&y, &want));
            // dx[ci] = Σ_co conv(gy[co], flip(w[co][ci])) with padding 2 − pad
            let gy = data(y.len(), 3);
            let mut flipped = vec![0.0f32; wt.len()];
            for (co, ci, t) in (0..cout).flat_map(|co| (0..cin).flat_map(move |ci| (0..9).map(move |t| (co, ci, t)))) {
                flipped[(ci * cout + co) * 9 + 8 - t] = wt[(co * cin + ci) * 9 + t];
            }
            let want = direct(&gy, &flipped, Layer { n, cin: cout, cout: cin, h: oh, w: ow, pad: 2 - pad });
            let mut dx = vec![f32::NAN; x.len()];
            backward_data(&gy, &wa, layer, &mut dx);
            assert!(
                rel_err(&dx, &want) < 1e-6,
                "backward n{n} {cin}->{cout} {h}x{w} pad {pad}: {}",
                rel_err(&dx, &want)
            );
        }
    }

    /// The cache hands out one transform per weight tensor and direction, and a fresh one once the
    /// weight is changed (`Arc::make_mut` copies it, since the cache holds it too).
    #[test]
    fn cache_follows_weight_changes() {
        let mut w = Arc::new(Tensor::from_vec(&[2, 3, 3, 3], data(54, 4)));
        let f = cached_filter(&w, 2, 3, Dir::Forward);
        assert!(Arc::ptr_eq(&f, &cached_filter(&w, 2, 3, Dir::Backward)));
        assert!(f.forward.get().is_some() && f.backward.get().is_some());
        Arc::make_mut(&mut w).data_mut()[0] += 1.0;
        let changed = cached_filter(&w, 2, 3, Dir::Forward);
        assert!(changed.backward.get().is_none());
        assert_eq!(changed.get(Dir::Forward), transform_filter(w.data(), 2, 3, Dir::Forward));
        assert_ne!(changed.get(Dir::Forward), f.get(Dir::Forward));
    }
}
