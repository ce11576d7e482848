//! One file per group of subcommands.
pub mod bench;
pub mod data;
pub mod demo;
pub mod eval;
pub mod train;
pub mod weights;

use mmard::Device;
use mmard::nn::Model;
use std::sync::OnceLock;

static DEVICE: OnceLock<Device> = OnceLock::new();

/// Records the device `--device` opened, for every command of this process.
pub fn set_device(d: Device) {
    DEVICE.set(d).expect("the device is chosen once");
}

/// The device models run on (`--device`, the CPU by default).
pub fn device() -> Device {
    DEVICE.get().cloned().unwrap_or(Device::Cpu)
}

/// `m`, moved to the chosen device.
pub fn placed(mut m: Model) -> Model {
    m.to_device(&device());
    m
}
