//! Files in and out: safetensors, datasets (idx, CIFAR binary and pickle) and augmentation.
pub mod augment;
mod cifar;
mod cifar_pickle;
pub mod datasets;
pub mod safetensors;
