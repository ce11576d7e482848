//! The one door to the `gemm` crate. Matrices are slices with explicit (row, column) strides, so a
//! transposed operand is just swapped strides and never a copy.
//! Tests: below; every conv and linear test goes through it.

/// A read-only strided matrix view.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn t(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: 1, cs: cols }
    }
}

fn check(len: usize, r: usize, c: usize, rs: usize, cs: usize, what: &str) {
    if r > 0 && c > 0 {
        assert!(
            (r - 1) * rs + (c - 1) * cs < len,
            "gemm: {what} view {r}x{c} (strides {rs},{cs}) exceeds {len} values"
        );
    }
}

/// `c[m,n] = a[m,k] · b[k,n]`, or `c += a · b` when `accumulate`; `c` is row-major with row stride
/// `ldc`. `parallel` spreads one GEMM over all threads; callers that already run GEMMs side by side
/// (one per chunk of images) pass false. BLAS's argument list, so clippy's limit does not apply.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    parallel: bool,
) {
    sgemm_strided(m, n, k, a, b, c, (ldc, 1), accumulate, parallel)
}

/// `sgemm` with any (row, column) strides for `c`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_strided(
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    (crs, ccs): (usize, usize),
    accumulate: bool,
    parallel: bool,
) {
    check(a.data.len(), m, k, a.rs, a.cs, "lhs");
    check(b.data.len(), k, n, b.rs, b.cs, "rhs");
    check(c.len(), m, n, crs, ccs, "dst");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * crs + j * ccs] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: the three views were bounds-checked above; `c` is borrowed mutably and cannot alias.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            ccs as isize,
            crs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_with_transposes() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 1.0).collect(); // b stored as [n, k]
        let mut c = vec![1.0; m * n];
        sgemm(m, n, k, Mat::rows(&a, k), Mat::t(&bt, k), &mut c, n, true, true);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum::<f32>();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
