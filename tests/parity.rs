//! Parity with PyTorch on the CPU: every case of `tests/fixtures` (a subset shipped with the repo),
//! of the full folder `$MMARD_FIXTURES` (default `../shared/fixtures`) and of RobustBench's
//! `$MMARD_RB_FIXTURES` (default `../shared/fixtures-robustbench`) and of the method steps
//! `$MMARD_METHOD_FIXTURES` (default `../shared/fixtures-methods`) wherever they exist.
#[path = "common/parity_cases.rs"]
mod parity_cases;

use mmard::Device;
use parity_cases::{run_folder, shared_folder, shipped_folder};

#[test]
fn shipped_fixtures() {
    run_folder(&shipped_folder(), &Device::Cpu);
}

#[test]
fn shared_fixtures() {
    if let Some(dir) = shared_folder("MMARD_FIXTURES", "fixtures") {
        run_folder(&dir, &Device::Cpu);
    }
}

/// RobustBench's DeepMind WideResNets (`../shared/fixtures-robustbench`, or `$MMARD_RB_FIXTURES`).
#[test]
fn robustbench_fixtures() {
    if let Some(dir) = shared_folder("MMARD_RB_FIXTURES", "fixtures-robustbench") {
        run_folder(&dir, &Device::Cpu);
    }
}

/// One training step of every method against an independent float64 implementation of
/// docs/methods.md (`../shared/fixtures-methods`, or `$MMARD_METHOD_FIXTURES`).
#[test]
fn method_fixtures() {
    if let Some(dir) = shared_folder("MMARD_METHOD_FIXTURES", "fixtures-methods") {
        run_folder(&dir, &Device::Cpu);
    }
}
