//! Winograd convolution for 3×3 stride-1 layers (Lavin & Gray, 2016), in two tile sizes
//! (`tiles.rs`): F(2×2, 3×3) and F(4×4, 3×3). Each n×n input tile `d` and 3×3 filter `g` give an
//! m×m output block as `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`. Over channels the n² element-wise products
//! become n² GEMMs, `M[ξ] = V[ξ] · U[ξ]` with `V[ξ]` the transformed tiles `[tiles, cin]` and
//! `U[ξ]` the transformed filters `[cin, cout]`, so the arithmetic of a conv layer falls 2.25x
//! (F2) or 4x (F4) and its GEMMs stay large. The transforms work channels last (images are
//! transposed to `[h, w, c]` and back), so each of their steps is a vector operation over
//! channels.
//!
//! The input gradient of a stride-1 convolution is the convolution of `gy`, padded by `2 − pad`,
//! with the flipped, transposed filter, so each direction caches its own transformed filters.
//! The filter gradient is the forward's adjoint (`backward_filter`): the gradient's m×m blocks are
//! transformed by A, the input tiles by Bᵀ·B as in the forward, n² GEMMs reduce over the tiles,
//! and Gᵀ·G maps the n×n sums back to 3×3, once per filter.
//!
//! Rounding: the transforms are a few additions and small multiples. Relative error norm against
//! an f64 direct sum on ResNet-18 layer shapes (64→64 at 16×16, 256→256 at 8×8, 512→512 at 4×4):
//! F2 4.2e-7, 3.8e-7, 7.4e-7; im2col + GEMM 4.7e-7, 2.4e-7, 9.6e-7. F4's larger coefficients
//! round 3–7x more than F2 on the same layers (below's data, forward / input gradient: 64→64 at
//! 16×16 9.6e-7 / 6.1e-7, 512→512 at 4×4 6.4e-7 / 6.3e-6 where F2 gave 1.3e-7 / 8.7e-7), within
//! the fixtures' 1e-5 for ops and 1e-4 for models. Filter gradient, F2 / F4 (it sums over all
//! tiles of the batch, so its error is that of a long dot product): 64→64 at 16×16, batch 8,
//! 5.2e-7 / 2.2e-7; 256→256 at 8×8, batch 16, 3.7e-7 / 2.0e-7; 512→512 at 4×4, batch 32,
//! 1.9e-7 / 2.0e-7; 64→64 at 32×32, batch 4, 3.3e-6 / 3.8e-7.
//! Tests: below (against the f64 definition), `tests/gradcheck.rs` and the fixtures' conv2d cases.
mod tiles;

use super::chunks;
use super::epilogue::Epilogue;
use super::gemm::{Mat, sgemm};
use super::transpose::transpose;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};
use tiles::{F2, F4, L, Lanes, Tile};

/// The tile size of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    F2,
    F4,
}

impl Kind {
    /// The size whose tiles take fewer multiplies over an `oh × ow` output map, F2 on a tie (it
    /// rounds less). F4 needs 2.25 per output where F2 needs 4, but pays for its larger tiles'
    /// overhang at the edges, so maps of 2 outputs a side stay on F2 (36 multiplies for 4 outputs,
    /// where F2 takes 16) and those of 5 or 6 tie. Measured on a 2-core Zen 4 (criterion
    /// `conv2d_*`, F4 / F2 time), F4 was 1.1–1.5x faster on ResNet-18's and WRN-34-10's layers
    /// (64 to 640 channels, 32×32 to 4×4 maps, forward and input gradient) and 1.4–2.1x on
    /// SmallCNN's, except ResNet-18's 64→64 at 32×32 (1.0–1.1x).
    pub fn fewest_multiplies(oh: usize, ow: usize) -> Kind {
        let cost = |m: usize| (m + 2).pow(2) * oh.div_ceil(m) * ow.div_ceil(m);
        if cost(4) < cost(2) { Kind::F4 } else { Kind::F2 }
    }
}

/// Tiles of one image: `th × tw` blocks of m×m outputs, reading `(m·th + 2) × (m·tw + 2)`
/// zero-padded inputs.
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
    fn new(h: usize, w: usize, pad: usize, m: usize) -> Self {
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        Tiles { h, w, pad, oh, ow, th: oh.div_ceil(m), tw: ow.div_ceil(m) }
    }
    fn per_image(&self) -> usize {
        self.th * self.tw
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Forward,
    Backward,
}

/// Transformed filters `(G g Gᵀ)[ξ]`, ξ = n·row + column, laid out for one direction: for the
/// forward `u[ξ][ci][co]` of `g = w[co][ci]`; for the input gradient `u[ξ][co][ci]` of the flipped
/// filter. Each task makes one row (a `ci`, or a `co`) of every `u[ξ]`, filter by filter, so the n²
/// rows fill in order and nothing else is allocated: transforming into `[filter][ξ]` first and
/// gathering from there read a cache line per value (~5% of a ResNet-18 step, where the student's
/// filters change every step) and held a second copy.
fn transform_filter<const M: usize, const N: usize, T: Tile<M, N>>(
    w: &[f32],
    cout: usize,
    cin: usize,
    dir: Dir,
) -> Vec<f32> {
    let (k, nn) = (cout * cin, N * N);
    assert_eq!(w.len(), k * 9, "winograd: filter of {} values, expected {cout}x{cin}x3x3", w.len());
    let (rows, per) = if let Dir::Forward = dir { (cin, cout) } else { (cout, cin) };
    let mut u = vec![0.0f32; nn * k];
    parts(&mut u, nn, k, rows, per).into_par_iter().enumerate().for_each(|(row, mut dst)| {
        for j in 0..per {
            let (g, tap): (&[f32], fn(usize) -> usize) = match dir {
                Dir::Forward => (&w[(j * cin + row) * 9..][..9], |i| i),
                Dir::Backward => (&w[(row * cin + j) * 9..][..9], |i| 8 - i),
            };
            let tap = |i: usize| f64::from(g[tap(i)]);
            // G applied to each column of g, then to each row of G g
            let cols: [[f64; N]; 3] = std::array::from_fn(|s| T::g([tap(s), tap(3 + s), tap(6 + s)]));
            for r in 0..N {
                for (c, v) in T::g([cols[0][r], cols[1][r], cols[2][r]]).into_iter().enumerate() {
                    dst[N * r + c][j] = v as f32;
                }
            }
        }
    });
    u
}

/// A weight's transformed filters, per direction and tile size, each made when first asked for.
#[derive(Default)]
struct Filter([OnceLock<Vec<f32>>; 4]);

impl Filter {
    fn slot(&self, dir: Dir, kind: Kind) -> &OnceLock<Vec<f32>> {
        &self.0[2 * dir as usize + kind as usize]
    }
    fn get(&self, dir: Dir, kind: Kind) -> &[f32] {
        self.slot(dir, kind).get().expect("cached_filter made it")
    }
}

/// `transform_filter` of a weight in use, kept as long as the weight lives: the PGD inner loop runs
/// the same weights through 10 forwards and 10 input gradients, and a teacher's never change, so
/// each weight tensor is transformed once per direction. An entry holds its weight's `Arc`, so
/// while cached the weight can neither be freed (and its address reused) nor changed in place
/// (`Arc::make_mut` copies a shared tensor); entries whose weight only the cache still holds are
/// dropped.
fn cached_filter(w: &Arc<Tensor>, cout: usize, cin: usize, dir: Dir, kind: Kind) -> Arc<Filter> {
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
    if f.slot(dir, kind).get().is_none() {
        let u = match kind {
            Kind::F2 => transform_filter::<2, 4, F2>(w.data(), cout, cin, dir),
            Kind::F4 => transform_filter::<4, 6, F4>(w.data(), cout, cin, dir),
        };
        let _ = f.slot(dir, kind).set(u);
    }
    f
}

/// A 3×3 stride-1 convolution layer: `n` images of `cin` channels, `h × w`, to `cout` channels,
/// padding `pad` (≤ 2), in tiles of `kind`.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
    pub kind: Kind,
}

/// `y = conv(x, w)` for x `[n, cin, h, w]`, w `[cout, cin, 3, 3]`; `y` is
/// `[n, cout, h+2pad−2, w+2pad−2]`, fully written, through the epilogue.
pub fn forward(x: &[f32], w: &Arc<Tensor>, l: Layer, epi: Epilogue, y: &mut [f32]) {
    let f = cached_filter(w, l.cout, l.cin, Dir::Forward, l.kind);
    let u = f.get(Dir::Forward, l.kind);
    match l.kind {
        Kind::F2 => run::<2, 4, F2>(x, l.n, l.cin, l.cout, Tiles::new(l.h, l.w, l.pad, 2), u, epi, y),
        Kind::F4 => run::<4, 6, F4>(x, l.n, l.cin, l.cout, Tiles::new(l.h, l.w, l.pad, 4), u, epi, y),
    }
}

/// The input gradient `dx` `[n, cin, h, w]` of a stride-1 3×3 convolution with padding `pad`, from
/// `gy` `[n, cout, h+2pad−2, w+2pad−2]` and the weight `w`; fully written. It is the convolution of
/// `gy`, padded by `2 − pad`, with the flipped, transposed filter.
pub fn backward_data(gy: &[f32], w: &Arc<Tensor>, l: Layer, dx: &mut [f32]) {
    let f = cached_filter(w, l.cout, l.cin, Dir::Backward, l.kind);
    let u = f.get(Dir::Backward, l.kind);
    let tiles = |m| Tiles::new(l.h + 2 * l.pad - 2, l.w + 2 * l.pad - 2, 2 - l.pad, m);
    let epi = Epilogue::default();
    match l.kind {
        Kind::F2 => run::<2, 4, F2>(gy, l.n, l.cout, l.cin, tiles(2), u, epi, dx),
        Kind::F4 => run::<4, 6, F4>(gy, l.n, l.cout, l.cin, tiles(4), u, epi, dx),
    }
}

/// The filter gradient `dw` `[cout, cin, 3, 3]` of a stride-1 3×3 convolution with padding `pad`,
/// from its input `x` `[n, cin, h, w]` and `gy` `[n, cout, h+2pad−2, w+2pad−2]`; fully written.
/// The adjoint of the forward's `Aᵀ[U ⊙ V]A` with `U = G g Gᵀ`: per tile,
/// `Gᵀ[(A ĝ Aᵀ) ⊙ (Bᵀ d B)]G`, with `ĝ` the tile's block of `gy`. Summed over tiles first, as
/// n² GEMMs `P[ξ][co, ci] = Ĝ[ξ]ᵀ[co, tiles] · V[ξ][tiles, ci]`, so the final transform runs
/// once per filter, in f64.
pub fn backward_filter(x: &[f32], gy: &[f32], l: Layer, dw: &mut [f32]) {
    match l.kind {
        Kind::F2 => filter_gradient::<2, 4, F2>(x, gy, l, Tiles::new(l.h, l.w, l.pad, 2), dw),
        Kind::F4 => filter_gradient::<4, 6, F4>(x, gy, l, Tiles::new(l.h, l.w, l.pad, 4), dw),
    }
}

fn filter_gradient<const M: usize, const N: usize, T: Tile<M, N>>(
    x: &[f32],
    gy: &[f32],
    l: Layer,
    t: Tiles,
    dw: &mut [f32],
) {
    let (n, c, co) = (l.n, l.cin, l.cout);
    let (plane, oplane, tpi, nn) = (t.h * t.w, t.oh * t.ow, t.per_image(), N * N);
    assert_eq!(x.len(), n * c * plane, "winograd: input of {} values, expected {n}x{c}x{}x{}", x.len(), t.h, t.w);
    assert_eq!(
        gy.len(),
        n * co * oplane,
        "winograd: gradient of {} values, expected {n}x{co}x{}x{}",
        gy.len(),
        t.oh,
        t.ow
    );
    assert_eq!(dw.len(), co * c * 9, "winograd: filter gradient of {} values for {c} -> {co} channels", dw.len());
    // Adds chunk n0's sums to p, or writes them there (`fresh`).
    let chunk = |n0: usize, nb: usize, p: &mut [f32], fresh: bool, par: bool| {
        let min = if par { 1 } else { usize::MAX };
        let nbc = nb.min(n - n0);
        let tiles = nbc * tpi;
        let (vs, gs) = (skewed(tiles * c), skewed(tiles * co));
        chunks::with_scratch(nbc * c * plane + nn * vs, nbc * co * oplane + nn * gs, |a, b| {
            let (xt, v) = a.split_at_mut(nbc * c * plane);
            let (gt, g) = b.split_at_mut(nbc * co * oplane);
            for (src, len, ch, dst) in
                [(&x[n0 * c * plane..], c * plane, c, &mut *xt), (&gy[n0 * co * oplane..], co * oplane, co, &mut *gt)]
            {
                dst.par_chunks_mut(len)
                    .zip(src[..nbc * len].par_chunks(len))
                    .with_min_len(min)
                    .for_each(|(d, s)| transpose(s, ch, d));
            }
            // V = Bᵀ d B per input tile
            transform_tiles::<M, N, N>(xt, (t.h, t.w, t.pad), &t, c, nbc, v, vs, min, T::bt);
            // Ĝ = A ĝ Aᵀ per m×m block of the gradient
            transform_tiles::<M, M, N>(gt, (t.oh, t.ow, 0), &t, co, nbc, g, gs, min, T::a);
            for xi in 0..nn {
                let (gx, vx) = (Mat::t(&g[xi * gs..][..tiles * co], co), Mat::rows(&v[xi * vs..][..tiles * c], c));
                sgemm(co, c, tiles, gx, vx, &mut p[xi * co * c..][..co * c], c, !fresh, par);
            }
        });
    };
    // Side by side, each chunk sums into its own partial, which pays where the partials (n² times
    // the filter) are small beside the chunk's work. Where they are not (many channels on small
    // maps: 512 → 512 at 4×4 took 2.7x im2col's time so), the chunks run one after another
    // into one sum, with parallel GEMMs over its rows.
    let per_image = nn * (c + co) * tpi + c * plane + co * oplane;
    let (nb, side_by_side) = chunks::split(n, per_image);
    let p = if side_by_side && nn * co * c <= nb * per_image {
        chunks::summed(n, nb, nn * co * c, |n0| {
            let mut p = vec![0.0; nn * co * c];
            chunk(n0, nb, &mut p, true, false);
            p
        })
    } else {
        let nb = chunks::largest(n, per_image);
        let mut p = vec![0.0; nn * co * c];
        (0..n).step_by(nb).for_each(|n0| chunk(n0, nb, &mut p, n0 == 0, true));
        p
    };
    // G's columns, for Gᵀ: (Gᵀv)[j] = Σ_k G[k][j]·v[k]
    let cols: [[f64; N]; 3] = std::array::from_fn(|j| T::g(std::array::from_fn(|i| f64::from(u8::from(i == j)))));
    dw.par_chunks_mut(c * 9).enumerate().for_each(|(o, dwo)| {
        // Gᵀ along each row of P, for all input channels at once (P's planes are contiguous in
        // them; gathering P[ξ][o][i] filter by filter took half of a 512 → 512 layer's time):
        // rows[kx][r][i] = Σ_k G[k][kx]·P[N·r + k][o][i]
        let mut rows = vec![0.0f64; 3 * N * c];
        for r in 0..N {
            for k in 0..N {
                let src = &p[((N * r + k) * co + o) * c..][..c];
                for (kx, col) in cols.iter().enumerate().filter(|(_, col)| col[k] != 0.0) {
                    let dst = &mut rows[(kx * N + r) * c..][..c];
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += col[k] * f64::from(*s));
                }
            }
        }
        // then down the columns
        for (i, d) in dwo.chunks_mut(9).enumerate() {
            for (t, d) in d.iter_mut().enumerate() {
                let (ky, kx) = (t / 3, t % 3);
                *d = (0..N).map(|r| cols[ky][r] * rows[(kx * N + r) * c + i]).sum::<f64>() as f32;
            }
        }
    });
}

/// The convolution of `x` (`[n, c, h, w]`) to `co` channels with the transformed filters `u`
/// (`[n²][c][co]`), in chunks of images, channels last: images to `[h, w, c]`, input transform,
/// n² GEMMs `M[ξ][tile, co] = V[ξ][tile, c] · u[ξ][c, co]`, output transform, images back to
/// NCHW. With the channels last every transform step is a vector operation over channels, whatever
/// the map size; channels first, small maps made them short per-plane loops.
#[allow(clippy::too_many_arguments)]
fn run<const M: usize, const N: usize, T: Tile<M, N>>(
    x: &[f32],
    n: usize,
    c: usize,
    co: usize,
    t: Tiles,
    u: &[f32],
    epi: Epilogue,
    y: &mut [f32],
) {
    let (plane, oplane, tpi, nn) = (t.h * t.w, t.oh * t.ow, t.per_image(), N * N);
    assert_eq!(x.len(), n * c * plane, "winograd: input of {} values, expected {n}x{c}x{}x{}", x.len(), t.h, t.w);
    assert_eq!(y.len(), n * co * oplane, "winograd: output of {} values, expected {n}x{co}x{}x{}", y.len(), t.oh, t.ow);
    assert_eq!(u.len(), nn * c * co, "winograd: {} transformed filter values for {c} -> {co} channels", u.len());
    let (nb, side_by_side) = chunks::split(n, nn * (c + co) * tpi + c * plane + co * oplane);
    // Work within a chunk runs in parallel only when the chunks do not: a thread waiting on a
    // nested task could start another chunk, whose scratch would then be freshly allocated.
    let min = if side_by_side { usize::MAX } else { 1 };
    y.par_chunks_mut(nb * co * oplane).enumerate().for_each(|(ci, yc)| {
        let nbc = yc.len() / (co * oplane);
        let tiles = nbc * tpi;
        let (vs, ms) = (skewed(tiles * c), skewed(tiles * co));
        chunks::with_scratch(nbc * c * plane + nn * vs, nn * ms + nbc * co * oplane, |a, b| {
            let (xt, v) = a.split_at_mut(nbc * c * plane);
            let (m, yt) = b.split_at_mut(nn * ms);
            let xc = &x[ci * nb * c * plane..][..nbc * c * plane];
            xt.par_chunks_mut(c * plane)
                .zip(xc.par_chunks(c * plane))
                .with_min_len(min)
                .for_each(|(d, s)| transpose(s, c, d));
            // V = Bᵀ d B per input tile
            transform_tiles::<M, N, N>(xt, (t.h, t.w, t.pad), &t, c, nbc, v, vs, min, T::bt);
            for xi in 0..nn {
                let (vx, ux) = (Mat::rows(&v[xi * vs..][..tiles * c], c), Mat::rows(&u[xi * c * co..][..c * co], co));
                sgemm(tiles, co, c, vx, ux, &mut m[xi * ms..][..tiles * co], co, false, !side_by_side);
            }
            transform_output::<M, N, T>(m, ms, &t, co, nbc, epi, yt, min);
            yc.par_chunks_mut(co * oplane)
                .zip(yt.par_chunks(co * oplane))
                .with_min_len(min)
                .for_each(|(d, s)| transpose(s, oplane, d));
        })
    });
}

/// The distance between consecutive `V[ξ]` (and `M[ξ]`) of `len` values: one cache line more, so
/// that the n² streams a transform reads or writes do not all fall into one cache set (`len` is
/// often a multiple of 4 KiB; ResNet-18's Winograd layers were 6-14% slower without the skew).
fn skewed(len: usize) -> usize {
    len + 16
}

/// The `items` consecutive parts (`per` values each) of each of the `nn` `V[ξ]` (`stride` apart
/// in `v`), one item holding its part of all of them, so that items can be transformed in parallel.
fn parts(v: &mut [f32], nn: usize, stride: usize, items: usize, per: usize) -> Vec<Vec<&mut [f32]>> {
    let mut rows: Vec<_> = v[..nn * stride].chunks_mut(stride).map(|r| r[..items * per].chunks_mut(per)).collect();
    (0..items).map(|_| rows.iter_mut().map(|r| r.next().expect("a part per item")).collect()).collect()
}

/// `L` channels from `src[at..]` (zeros for padding, `None`), only the first `l` of them read.
#[inline(always)]
fn load(src: &[f32], at: Option<usize>, l: usize) -> Lanes {
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

/// The first `l` of `v` into `dst`. A whole vector is stored as an array: written as two
/// `copy_from_slice`s, LLVM merged the branches into one variable-length memcpy, a libc call per
/// 32 bytes (5% of a ResNet-18 step's samples, in F4's input transform).
#[inline(always)]
fn store(dst: &mut [f32], v: &Lanes, l: usize) {
    if l == L {
        let whole: &mut Lanes = (&mut dst[..L]).try_into().expect("L values");
        *whole = *v;
    } else {
        dst[..l].copy_from_slice(&v[..l]);
    }
}

/// `dst[ξ·ds + tile·ch + channel] = (F d Fᵀ)[ξ]` for the k×k block `d` at `m·(tile row, tile
/// column) − pad` of every channel of `nb` channels-last maps `src` (`[nb][h][w][ch]`, zeros past
/// their edges), `f` applying F to a row of lanes.
#[allow(clippy::too_many_arguments)]
fn transform_tiles<const M: usize, const K: usize, const N: usize>(
    src: &[f32],
    (h, w, pad): (usize, usize, usize),
    t: &Tiles,
    ch: usize,
    nb: usize,
    dst: &mut [f32],
    ds: usize,
    min: usize,
    f: impl Fn([&Lanes; K]) -> [Lanes; N] + Sync,
) {
    let plane = h * w;
    // one item per row of tiles (whose tiles are consecutive in every output plane): even one
    // image spreads over the threads; at least `min` items per task
    parts(dst, N * N, ds, nb * t.th, t.tw * ch).into_par_iter().enumerate().with_min_len(min).for_each(
        |(row, mut out)| {
            let (img, ty) = (row / t.th, row % t.th);
            let src = &src[img * plane * ch..][..plane * ch];
            for tx in 0..t.tw {
                let at = tx * ch;
                // the block's pixels (None: padding, or past the map)
                let px: [[Option<usize>; K]; K] = std::array::from_fn(|r| {
                    std::array::from_fn(|k| {
                        let (iy, ix) = ((M * ty + r).wrapping_sub(pad), (M * tx + k).wrapping_sub(pad));
                        (iy < h && ix < w).then(|| (iy * w + ix) * ch)
                    })
                });
                for c0 in (0..ch).step_by(L) {
                    let l = L.min(ch - c0);
                    let d: [[Lanes; K]; K] =
                        std::array::from_fn(|r| std::array::from_fn(|k| load(src, px[r][k].map(|p| p + c0), l)));
                    // along each row (over the block's columns), then down the columns
                    let e: [[Lanes; N]; K] = std::array::from_fn(|r| f(std::array::from_fn(|k| &d[r][k])));
                    for j in 0..N {
                        for (i, o) in f(std::array::from_fn(|k| &e[k][j])).iter().enumerate() {
                            store(&mut out[N * i + j][at + c0..], o, l);
                        }
                    }
                }
            }
        },
    );
}

/// `yt` (`[nb][oh][ow][co]`) from the GEMM products `m[ξ·ms + tile·co + ch]`: each tile's m×m
/// block is `Aᵀ M A`, down the columns first, clipped at the edges, through the epilogue.
#[allow(clippy::too_many_arguments)]
fn transform_output<const M: usize, const N: usize, T: Tile<M, N>>(
    m: &[f32],
    ms: usize,
    t: &Tiles,
    co: usize,
    nb: usize,
    epi: Epilogue,
    yt: &mut [f32],
    min: usize,
) {
    let (tpi, oplane) = (t.per_image(), t.oh * t.ow);
    let coeffs = epi.coefficients(co);
    // one item per row of tiles, the (up to) m output rows it makes: even one image spreads over
    // the threads; at least `min` items per task
    let image = |(img, yi): (usize, &mut [f32])| {
        yi.par_chunks_mut(M * t.ow * co).enumerate().with_min_len(min).for_each(|(ty, dst)| {
            for tx in 0..t.tw {
                let tile = img * tpi + ty * t.tw + tx;
                for c0 in (0..co).step_by(L) {
                    let l = L.min(co - c0);
                    let s: [[Lanes; N]; N] = std::array::from_fn(|r| {
                        std::array::from_fn(|k| load(m, Some((N * r + k) * ms + tile * co + c0), l))
                    });
                    // rows of Aᵀ M (over the tile's columns j), then each row's m outputs
                    let q: [[Lanes; M]; N] = std::array::from_fn(|j| T::at(std::array::from_fn(|k| &s[k][j])));
                    for r in (0..M).take_while(|r| M * ty + r < t.oh) {
                        let o = T::at(std::array::from_fn(|j| &q[j][r]));
                        for (k, o) in o.iter().enumerate().take_while(|(k, _)| M * tx + k < t.ow) {
                            let mut v = *o;
                            epi.lanes(&mut v, &coeffs, c0, l);
                            store(&mut dst[(r * t.ow + M * tx + k) * co + c0..], &v, l);
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
        let Layer { n, cin, cout, h, w: wd, pad, .. } = l;
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

    /// Forward and input gradient of both tile sizes against the f64 definition, on odd and even
    /// maps, paddings 0–2, one to a few tiles, channel counts below, at and past the transforms'
    /// 8-channel steps, with bias: each output value comes from the right taps, or the error would
    /// be of order 1, not 1e-7.
    #[test]
    fn matches_definition() {
        for kind in [Kind::F2, Kind::F4] {
            for (n, cin, cout, h, w, pad) in [
                (2, 3, 4, 5, 7, 1),
                (1, 2, 3, 4, 4, 0),
                (2, 3, 2, 3, 5, 2),
                (1, 4, 5, 1, 1, 1),
                (3, 5, 6, 8, 6, 1),
                (1, 1, 1, 2, 3, 2),
                (2, 11, 9, 5, 6, 1),
                (1, 8, 16, 4, 4, 1),
                (2, 9, 10, 9, 10, 1),
            ] {
                let layer = Layer { n, cin, cout, h, w, pad, kind };
                let (y, want) = forward_against_definition(layer);
                assert!(rel_err(&y, &want) < 1e-6, "forward {layer:?}: {}", rel_err(&y, &want));
                let (dx, want) = backward_against_definition(layer);
                assert!(rel_err(&dx, &want) < 1e-6, "backward {layer:?}: {}", rel_err(&dx, &want));
                let (dw, want) = filter_gradient_against_definition(layer);
                assert!(rel_err(&dw, &want) < 1e-6, "filter gradient {layer:?}: {}", rel_err(&dw, &want));
            }
        }
    }

    /// `forward` with a bias, and the definition.
    fn forward_against_definition(l: Layer) -> (Vec<f32>, Vec<f64>) {
        let Layer { n, cin, cout, h, w, pad, .. } = l;
        let (x, wt) = (data(n * cin * h * w, 1), data(cout * cin * 9, 2));
        let bias: Vec<f32> = (0..cout).map(|i| i as f32 * 0.25 - 0.5).collect();
        let opix = (h + 2 * pad - 2) * (w + 2 * pad - 2);
        let wa = Arc::new(Tensor::from_vec(&[cout, cin, 3, 3], wt.clone()));
        let mut y = vec![f32::NAN; n * cout * opix];
        forward(&x, &wa, l, Epilogue { bias: Some(&bias), ..Default::default() }, &mut y);
        let mut want = direct(&x, &wt, l);
        want.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i / opix % cout] as f64);
        (y, want)
    }

    /// `backward_data`, and the definition: dx[ci] = Σ_co conv(gy[co], flip(w[co][ci])) with
    /// padding 2 − pad.
    fn backward_against_definition(l: Layer) -> (Vec<f32>, Vec<f64>) {
        let Layer { n, cin, cout, h, w, pad, .. } = l;
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let wt = data(cout * cin * 9, 2);
        let gy = data(n * cout * oh * ow, 3);
        let mut flipped = vec![0.0f32; wt.len()];
        for (co, ci, t) in (0..cout).flat_map(|co| (0..cin).flat_map(move |ci| (0..9).map(move |t| (co, ci, t)))) {
            flipped[(ci * cout + co) * 9 + 8 - t] = wt[(co * cin + ci) * 9 + t];
        }
        let want = direct(&gy, &flipped, Layer { cin: cout, cout: cin, h: oh, w: ow, pad: 2 - pad, ..l });
        let mut dx = vec![f32::NAN; n * cin * h * w];
        backward_data(&gy, &Arc::new(Tensor::from_vec(&[cout, cin, 3, 3], wt)), l, &mut dx);
        (dx, want)
    }

    /// `backward_filter`, and the definition: dw[co][ci][ky][kx] = Σ gy[co][oy][ox]·x[ci][oy+ky−pad][ox+kx−pad].
    fn filter_gradient_against_definition(l: Layer) -> (Vec<f32>, Vec<f64>) {
        let Layer { n, cin, cout, h, w, pad, .. } = l;
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let (x, gy) = (data(n * cin * h * w, 1), data(n * cout * oh * ow, 3));
        let mut want = vec![0.0f64; cout * cin * 9];
        for (i, v) in want.iter_mut().enumerate() {
            let (co, ci, ky, kx) = (i / (cin * 9), i / 9 % cin, i / 3 % 3, i % 3);
            for (img, oy, ox) in (0..n).flat_map(|a| (0..oh).flat_map(move |b| (0..ow).map(move |c| (a, b, c)))) {
                let (iy, ix) = ((oy + ky) as isize - pad as isize, (ox + kx) as isize - pad as isize);
                if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                    *v += gy[((img * cout + co) * oh + oy) * ow + ox] as f64
                        * x[((img * cin + ci) * h + iy as usize) * w + ix as usize] as f64;
                }
            }
        }
        let mut dw = vec![f32::NAN; cout * cin * 9];
        backward_filter(&x, &gy, l, &mut dw);
        (dw, want)
    }

    /// F2 only where F4's tiles overhang the map so far that they take more multiplies, or as many.
    #[test]
    fn tile_size_by_multiplies() {
        let f4: Vec<usize> = (1..=12).filter(|&s| Kind::fewest_multiplies(s, s) == Kind::F4).collect();
        assert_eq!(f4, [3, 4, 7, 8, 9, 10, 11, 12]);
        assert_eq!(Kind::fewest_multiplies(2, 32), Kind::F2);
        assert_eq!(Kind::fewest_multiplies(4, 32), Kind::F4);
    }

    /// The cache hands out one transform per weight tensor, direction and tile size, and a fresh
    /// one once the weight is changed (`Arc::make_mut` copies it, since the cache holds it too).
    #[test]
    fn cache_follows_weight_changes() {
        let mut w = Arc::new(Tensor::from_vec(&[2, 3, 3, 3], data(54, 4)));
        let f = cached_filter(&w, 2, 3, Dir::Forward, Kind::F2);
        assert!(Arc::ptr_eq(&f, &cached_filter(&w, 2, 3, Dir::Backward, Kind::F4)));
        assert!(f.slot(Dir::Forward, Kind::F2).get().is_some() && f.slot(Dir::Backward, Kind::F4).get().is_some());
        assert!(f.slot(Dir::Forward, Kind::F4).get().is_none());
        Arc::make_mut(&mut w).data_mut()[0] += 1.0;
        let changed = cached_filter(&w, 2, 3, Dir::Forward, Kind::F2);
        assert!(changed.slot(Dir::Backward, Kind::F4).get().is_none());
        assert_eq!(changed.get(Dir::Forward, Kind::F2), transform_filter::<2, 4, F2>(w.data(), 2, 3, Dir::Forward));
        assert_ne!(changed.get(Dir::Forward, Kind::F2), f.get(Dir::Forward, Kind::F2));
    }
}
