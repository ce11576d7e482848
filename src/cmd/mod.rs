//! One file per group of subcommands.
pub mod bench;
pub mod bench_kernels;
pub mod data;
pub mod demo;
pub mod doctor;
pub mod eval;
pub mod progress;
pub mod ranks;
pub mod report;
pub mod train;
pub mod weights;
