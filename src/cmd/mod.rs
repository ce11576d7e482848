//! One file per group of subcommands.
pub mod data;
pub mod demo;
pub mod eval;
pub mod train;
pub mod weights;
