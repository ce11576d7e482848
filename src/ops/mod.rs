//! One file per op: the CPU code, the recorded (tape) version where it has a backward, and tests.
pub mod batchnorm;
pub mod conv2d;
mod depthwise;
pub mod elementwise;
pub mod gemm;
mod im2col;
pub mod linear;
pub mod loss;
pub mod pgd;
pub mod pool;
pub mod sgd;
