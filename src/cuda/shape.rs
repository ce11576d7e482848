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

/// Per-channel reductions over `n` images of `c` channels on a channel × slice grid: about four
/// blocks per multiprocessor in all, each channel's images in slices of `per` (grid x: the slices,
/// y: the channels). Returns the launch, the number of slices and `per`.
pub fn slices(n: usize, c: usize, sms: u32) -> (LaunchConfig, usize, usize) {
    let want = (sms as usize * 4).div_ceil(c.max(1)).clamp(1, n.max(1));
    let per = n.max(1).div_ceil(want);
    let slices = n.max(1).div_ceil(per);
    (
        LaunchConfig { grid_dim: (slices as u32, c.max(1) as u32, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 },
        slices,
        per,
    )
}

/// A grid-stride launch with a warp (32 threads) per row of `n` (the losses' rows of logits).
pub fn rows(n: usize, sms: u32) -> LaunchConfig {
    grid(n * 32, sms)
}

/// One block per item (per-channel reductions).
pub fn per_block(items: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (items.max(1) as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}
