//! mmard: adversarial robustness distillation on a small, fast engine. docs/ARCHITECTURE.md is the
//! map (one step as data flows, the layout, the tape, devices, conventions), README.md the tour.
pub mod alloc;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod dist;
pub mod error;
pub mod kernel_bench;
#[macro_use]
mod names;
pub mod ops;
pub mod tape;
pub mod tensor;
pub mod twin;

pub use device::{Device, GpuOptions};
pub use error::{Error, Result};
pub use tape::{GradMode, Tape, Var};
pub use tensor::Tensor;
pub mod ard;
pub mod attack;
pub mod io;
pub mod nn;
pub mod report;
pub mod samples;
