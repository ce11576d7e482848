//! The two tile sizes of Winograd's minimal filtering (Lavin & Gray, 2016) as their transforms:
//! F(m×m, 3×3) turns an n×n input tile (n = m + 2) and a 3×3 filter into an m×m output block as
//! `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, evaluating polynomials at n points.
//! - F(2×2): points 0, 1, −1, ∞; 16 multiplies for 4 outputs (1/2.25 of a direct sum's).
//! - F(4×4): points 0, 1, −1, 2, −2, ∞; 36 multiplies for 16 outputs (1/4), with larger
//!   coefficients, so more rounding (`mod.rs` has the measured error).
//!
//! `bt` and `at` work on `L` channels at once (one AVX2 vector); `g` works in f64, since the
//! filters are transformed once per weight and rounding once is free accuracy.
//! Tests: `mod.rs` (both sizes against the f64 definition of a convolution).

/// Channels per step of the transforms.
pub const L: usize = 8;
pub type Lanes = [f32; L];

/// F(m×m, 3×3), `M` = m, `N` = m + 2.
pub trait Tile<const M: usize, const N: usize> {
    /// `G g` for three filter taps.
    fn g(g: [f64; 3]) -> [f64; N];
    /// `Bᵀ d` for the `N` values of a row or column of input tiles.
    fn bt(d: [&Lanes; N]) -> [Lanes; N];
    /// `Aᵀ m` for the `N` values of a row or column of products.
    fn at(m: [&Lanes; N]) -> [Lanes; M];
    /// `A v` for the `M` values of a row or column of an output gradient block (the filter
    /// gradient's transform: the adjoint of `at`).
    fn a(v: [&Lanes; M]) -> [Lanes; N];
}

pub struct F2;
pub struct F4;

impl Tile<2, 4> for F2 {
    /// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`
    fn g([a, b, c]: [f64; 3]) -> [f64; 4] {
        [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
    }
    /// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`
    #[inline(always)]
    fn bt(d: [&Lanes; 4]) -> [Lanes; 4] {
        let mut r = [[0.0; L]; 4];
        for i in 0..L {
            let [d0, d1, d2, d3] = d.map(|x| x[i]);
            r[0][i] = d0 - d2;
            r[1][i] = d1 + d2;
            r[2][i] = d2 - d1;
            r[3][i] = d1 - d3;
        }
        r
    }
    /// `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`
    #[inline(always)]
    fn at(m: [&Lanes; 4]) -> [Lanes; 2] {
        let mut r = [[0.0; L]; 2];
        for i in 0..L {
            let [m0, m1, m2, m3] = m.map(|x| x[i]);
            r[0][i] = m0 + m1 + m2;
            r[1][i] = m1 - m2 - m3;
        }
        r
    }
    /// `A = [[1, 0], [1, 1], [1, −1], [0, −1]]`
    #[inline(always)]
    fn a(v: [&Lanes; 2]) -> [Lanes; 4] {
        let mut r = [[0.0; L]; 4];
        for i in 0..L {
            let [v0, v1] = v.map(|x| x[i]);
            r[0][i] = v0;
            r[1][i] = v0 + v1;
            r[2][i] = v0 - v1;
            r[3][i] = -v1;
        }
        r
    }
}

impl Tile<4, 6> for F4 {
    /// `G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]]`
    fn g([a, b, c]: [f64; 3]) -> [f64; 6] {
        [
            a / 4.0,
            -(a + b + c) / 6.0,
            -(a - b + c) / 6.0,
            (a + 2.0 * b + 4.0 * c) / 24.0,
            (a - 2.0 * b + 4.0 * c) / 24.0,
            c,
        ]
    }
    /// `Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0],
    /// [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]`, rows 1–4 in pairs through shared partial sums.
    #[inline(always)]
    fn bt(d: [&Lanes; 6]) -> [Lanes; 6] {
        let mut r = [[0.0; L]; 6];
        for i in 0..L {
            let [d0, d1, d2, d3, d4, d5] = d.map(|x| x[i]);
            let (p, q) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
            let (s, t) = (d4 - d2, 2.0 * (d3 - d1));
            r[0][i] = 4.0 * d0 - 5.0 * d2 + d4;
            r[1][i] = p + q;
            r[2][i] = p - q;
            r[3][i] = s + t;
            r[4][i] = s - t;
            r[5][i] = 4.0 * d1 - 5.0 * d3 + d5;
        }
        r
    }
    /// `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]]`
    #[inline(always)]
    fn at(m: [&Lanes; 6]) -> [Lanes; 4] {
        let mut r = [[0.0; L]; 4];
        for i in 0..L {
            let [m0, m1, m2, m3, m4, m5] = m.map(|x| x[i]);
            let (a, b, c, e) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
            r[0][i] = m0 + a + c;
            r[1][i] = b + 2.0 * e;
            r[2][i] = a + 4.0 * c;
            r[3][i] = b + 8.0 * e + m5;
        }
        r
    }
    /// `A = [[1, 0, 0, 0], [1, 1, 1, 1], [1, −1, 1, −1], [1, 2, 4, 8], [1, −2, 4, −8], [0, 0, 0, 1]]`,
    /// rows 1–4 in pairs through shared partial sums.
    #[inline(always)]
    fn a(v: [&Lanes; 4]) -> [Lanes; 6] {
        let mut r = [[0.0; L]; 6];
        for i in 0..L {
            let [v0, v1, v2, v3] = v.map(|x| x[i]);
            let (even1, odd1) = (v0 + v2, v1 + v3);
            let (even2, odd2) = (v0 + 4.0 * v2, 2.0 * v1 + 8.0 * v3);
            r[0][i] = v0;
            r[1][i] = even1 + odd1;
            r[2][i] = even1 - odd1;
            r[3][i] = even2 + odd2;
            r[4][i] = even2 - odd2;
            r[5][i] = v3;
        }
        r
    }
}
