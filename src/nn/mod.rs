//! Layers and the blocks they make (`layers`, `blocks`), the six architectures with their PyTorch
//! state_dict names (one file each: the network, and its `Spec`: name, config, detection, builder;
//! none imports another), the list of them and their configurations (`arch`, the only place that
//! names them all), detection from a weights file (`detect`), the model that runs one (`model`),
//! its tensors (`params`), SGD (`optim`), and a classifier in evaluation (`eval`: logits in chunks,
//! predictions, input gradients).
pub mod arch;
mod blocks;
pub mod detect;
mod dm_wide_resnet;
pub mod eval;
pub mod layers;
mod mobilenet_v2;
pub mod model;
pub mod optim;
pub mod params;
mod preact_resnet18;
mod resnet18;
mod small_cnn;
mod wide_resnet;

pub use arch::{
    Activation, Arch, ArchName, DmWideResNetCfg, MobileNetV2Cfg, Overrides, PreActResNet18Cfg, ResNet18Cfg,
    SmallCnnCfg, WideResNetCfg,
};
pub use model::{Model, Placement};
