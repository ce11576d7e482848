//! How the convolutions split a batch into chunks of images, and the per-thread scratch a chunk
//! works in (shared by the im2col and the Winograd paths).

/// Scratch floats per chunk: big enough for efficient GEMMs, small enough to stay in the last-level
/// cache's neighbourhood and out of the way of the activations.
const BUDGET: usize = 1 << 21;

/// `(images per chunk, side by side)` for `n` images of `per_image` scratch floats each. Side by
/// side, chunks run on all threads with one single-threaded GEMM each: the GEMM crate's own
/// threading splits the small output of a conv layer (64 rows) poorly, and a filter gradient's
/// long reduction (all pixels of the batch) not at all, while chunks of images split evenly.
pub fn split(n: usize, per_image: usize) -> (usize, bool) {
    let threads = rayon::current_num_threads();
    // Enough chunks to respect the budget, rounded up to a multiple of the threads, then even.
    let chunks = (n * per_image.max(1)).div_ceil(BUDGET).max(1).next_multiple_of(threads).min(n.max(1));
    (n.max(1).div_ceil(chunks), chunks >= threads && threads > 1)
}

/// Runs `f` with two scratch buffers of `a` and `b` floats, reused from call to call on each
/// thread: zeroing 16 MiB per call showed as 10% of a training profile. Their contents are
/// whatever the last user left. The buffers are taken out of the thread-local while in use, so a
/// nested call (rayon runs other tasks while a thread waits) gets its own.
pub fn with_scratch<R>(a: usize, b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::Cell<(Vec<f32>, Vec<f32>)> = const { std::cell::Cell::new((Vec::new(), Vec::new())) };
    }
    let (mut va, mut vb) = SCRATCH.take();
    for (v, n) in [(&mut va, a), (&mut vb, b)] {
        if v.len() < n {
            v.resize(n, 0.0);
        }
    }
    let r = f(&mut va[..a], &mut vb[..b]);
    SCRATCH.set((va, vb));
    r
}
