//! Launch shapes, as plain functions of the work and the GPU's size, so launchers and tests (the
//! emulated GPU's among them) compute the same grids.
use cudarc::driver::LaunchConfig;

/// Threads per block of every launch.
pub const BLOCK: u32 = 256;

/// A grid-stride launch over `n` elements: enough blocks to give each of `sms` multiprocessors
/// eight, no more (the kernels loop over the rest).
pub fn grid(n: usize, sms: u32) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, sms as usize * 8) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// One block per item (per-channel reductions).
pub fn per_block(items: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (items.max(1) as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}
