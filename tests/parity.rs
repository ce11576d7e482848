//! Parity with PyTorch on the CPU: every case of `tests/fixtures` (a subset shipped with the repo)
//! and of the full folder `$MMARD_FIXTURES` (default `../shared/fixtures`) wherever it exists.
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
    if let Some(dir) = shared_folder() {
        run_folder(&dir, &Device::Cpu);
    }
}
