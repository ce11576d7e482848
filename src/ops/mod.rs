//! One file per op: the CPU code, the recorded (tape) version where it has a backward, the CUDA
//! launcher (its kernels in `kernels/X.cu`), and where its tests are (each file's opening comment).
pub mod batchnorm;
mod chunks;
pub mod conv2d;
mod depthwise;
pub mod elementwise;
pub mod epilogue;
pub mod gemm;
mod im2col;
pub mod linear;
pub mod loss;
pub mod pad;
pub mod pgd;
pub mod philox;
pub mod pool;
pub mod sgd;
mod transpose;
mod winograd;

/// Minimum items per rayon task when each item is `len` floats: tasks of at least ~16k values, so
/// small planes (7x7 maps) do not drown in scheduling.
pub(crate) fn grain(len: usize) -> usize {
    ((1 << 14) / len.max(1)).max(1)
}
