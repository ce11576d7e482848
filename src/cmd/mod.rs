//! One file per group of subcommands.
pub mod bench;
pub mod data;
pub mod demo;
pub mod doctor;
pub mod eval;
pub mod progress;
pub mod report;
pub mod train;
pub mod weights;

use mmard::Device;
use mmard::nn::Model;
use std::sync::OnceLock;

static DEVICE: OnceLock<Device> = OnceLock::new();
static FOLD: OnceLock<bool> = OnceLock::new();

/// Records the device `--device` opened and whether models fold BatchNorm (`--no-fold`), for every
/// command of this process.
pub fn configure(d: Device, fold: bool) {
    DEVICE.set(d).expect("the device is chosen once");
    FOLD.set(fold).expect("folding is chosen once");
}

/// The device models run on (`--device`, the CPU by default).
pub fn device() -> Device {
    DEVICE.get().cloned().unwrap_or(Device::Cpu)
}

/// `m`, moved to the chosen device, folding as chosen.
pub fn placed(mut m: Model) -> Model {
    m.to_device(&device());
    m.fold = FOLD.get().copied().unwrap_or(true);
    m
}
