//! The allocator the binary and the benches install: training allocates and frees activation-sized
//! buffers in every op, and mimalloc keeps them in its pages instead of handing them back to the
//! kernel (page faults and zeroing were ~8% of a SmallCNN step with glibc's malloc).
//! Install with `#[global_allocator] static A: mmard::alloc::MiMalloc = mmard::alloc::MiMalloc;`
//! and call [`keep_freed_pages`] first thing in `main`.
pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` (index 15 in mimalloc.h, v2 and v3 alike).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never return freed pages to the OS, so the next buffer of the same size does not fault and
/// zero them again (a further ~10% of a step).
pub fn keep_freed_pages() {
    // SAFETY: sets an integer option; no allocation state is touched.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}
