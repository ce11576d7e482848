//! Files in and out: safetensors now; datasets join here.
pub mod safetensors;
pub mod datasets;
pub mod augment;
