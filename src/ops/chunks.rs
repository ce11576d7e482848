//! How the convolutions split a batch into chunks of images, and the per-thread scratch a chunk
//! works in (shared by the im2col and the Winograd paths).
//! Tests: below.
use rayon::prelude::*;

/// Scratch floats per chunk: big enough for efficient GEMMs, small enough to stay in the last-level
/// cache's neighbourhood and out of the way of the activations.
const BUDGET: usize = 1 << 21;

/// `(images per chunk, side by side)` for `n` images of `per_image` scratch floats each. Side by
/// side, chunks run on all threads with one single-threaded GEMM each: the GEMM crate's own
/// threading splits the small output of a conv layer (64 rows) poorly, and a filter gradient's
/// long reduction (all pixels of the batch) not at all, while chunks of images split evenly. The
/// chunk size is the largest within the budget that spreads the images over the threads as evenly
/// as any (on 2 threads, 32 images as 11 chunks of 3 leave one thread 18 of them; as 16 chunks
/// of 2, 16). With fewer images than threads, one chunk runs with parallel GEMMs.
pub fn split(n: usize, per_image: usize) -> (usize, bool) {
    let threads = rayon::current_num_threads();
    let n = n.max(1);
    let largest = largest(n, per_image);
    if threads == 1 || n < threads {
        return (n.div_ceil(n.div_ceil(largest)), false);
    }
    let per_thread = |nb: usize| n.div_ceil(nb).div_ceil(threads) * nb;
    let nb = (1..=largest.min(n.div_ceil(threads))).rev().min_by_key(|&nb| per_thread(nb)).expect("nb = 1 at least");
    (nb, true)
}

/// The most of `n` images of `per_image` scratch floats each that fit the budget (at least 1).
pub fn largest(n: usize, per_image: usize) -> usize {
    (BUDGET / per_image.max(1)).clamp(1, n.max(1))
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

/// The sum of `partial(n0)` (each `len` values) over the chunks `n0 = 0, nb, 2·nb, …` of `n`
/// images, made in parallel and added in chunk order: a parallel reduce's grouping would depend
/// on scheduling, and training must be bit-for-bit repeatable.
pub fn summed(n: usize, nb: usize, len: usize, partial: impl Fn(usize) -> Vec<f32> + Sync) -> Vec<f32> {
    let starts: Vec<usize> = (0..n).step_by(nb.max(1)).collect();
    let mut partials = starts.par_iter().map(|&n0| partial(n0)).collect::<Vec<_>>().into_iter();
    let mut sum = partials.next().unwrap_or_else(|| vec![0.0; len]);
    for part in partials {
        sum.par_chunks_mut(1 << 14)
            .zip(part.par_chunks(1 << 14))
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks respect the budget, cover the batch, and spread it evenly over the threads.
    #[test]
    fn split_is_even_and_within_budget() {
        let threads = rayon::current_num_threads();
        for (n, per) in [(32, 655_000), (32, 327_000), (32, 82_000), (128, 50_000), (7, 1 << 20), (1, 1 << 23), (32, 1)]
        {
            let (nb, side_by_side) = split(n, per);
            assert!(nb >= 1 && nb <= n);
            assert!(nb == 1 || nb * per <= BUDGET, "{n} x {per}: {nb} images per chunk exceed the budget");
            assert_eq!(side_by_side, threads > 1 && n >= threads);
            if side_by_side {
                // one image per chunk always reaches the even spread, so the chosen size must too
                let most = n.div_ceil(nb).div_ceil(threads) * nb;
                assert_eq!(most, n.div_ceil(threads), "{n} x {per}: {nb} per chunk leaves a thread {most} images");
            }
        }
    }
}
