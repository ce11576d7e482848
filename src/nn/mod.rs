//! Layers, the five architectures (PyTorch state_dict names) and models built from them.
pub mod arch;
pub mod layers;
mod mobilenet_v2;
pub mod model;
pub mod optim;
pub mod params;
mod preact_resnet18;
mod resnet18;
mod small_cnn;
mod wide_resnet;

pub use arch::{Arch, Overrides};
pub use model::Model;
