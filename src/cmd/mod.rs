//! One file per group of subcommands.
pub mod bench;
pub mod data;
pub mod demo;
pub mod eval;
pub mod train;
pub mod weights;
