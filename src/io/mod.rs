//! Files in and out: safetensors now; datasets join here.
pub mod augment;
pub mod datasets;
pub mod safetensors;
