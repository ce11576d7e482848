//! Layers and the blocks they make (`layers`, `blocks`), the five architectures with their PyTorch
//! state_dict names (one file each; none imports another), their configurations and detection
//! (`arch`), the model that runs one (`model`, the only file that knows them all), its tensors
//! (`params`) and SGD (`optim`).
pub mod arch;
mod blocks;
pub mod layers;
mod mobilenet_v2;
pub mod model;
pub mod optim;
pub mod params;
mod preact_resnet18;
mod resnet18;
mod small_cnn;
mod wide_resnet;

pub use arch::{Arch, ArchName, Overrides};
pub use model::Model;
