// What the parts of the emulated driver share: device memory, the block scheduler, the reports.
#pragma once
#include <pthread.h>

#include <cstdint>
#include <mutex>

#include "cuda_emu.h"
#include "emu_cuda.h"

namespace emu {
// Set by cuInit; every other call fails with CUDA_ERROR_NOT_INITIALIZED before it.
extern bool initialized;
// Every driver call holds this for its whole duration: calls run one at a time, synchronously.
extern std::mutex api;

// Device limits, H100/H200-like.
constexpr unsigned max_threads_per_block = 1024, max_block_z = 64, max_grid_yz = 65535;
constexpr unsigned max_grid_x = 0x7fffffff, max_shared_per_block = 48 << 10, sms = 132, warp = 32;
constexpr size_t total_memory = size_t(141) << 30;

// Device memory (memory.cpp): every allocation sits right before an inaccessible page and is
// never reused once freed, so overruns and uses after free fault.
void* device_alloc(size_t bytes);  // null when out of memory
enum class Freed { Ok, NotAllocated, Twice, Interior };
Freed device_free(uint64_t p);
bool range_live(uint64_t p, size_t bytes);
size_t live_bytes();
// "N bytes past the end of allocation 0x.. (M bytes, freed)" and the like, for reports.
void describe_address(uint64_t addr, char* buf, size_t len);

// The block scheduler (scheduler.cpp): runs the whole grid of `running` before it returns.
void run_grid(uint3 grid, uint3 block);
// The launch being run (also for reports): null outside a kernel.
extern const Kernel* running;
extern void** running_params;
// The OS thread that runs it (a fault on another thread is not the kernel's).
extern pthread_t running_on;
// The thread being run, or -1 between threads.
extern long running_thread;
// Whether addr lies in a guard page below a fiber's stack.
bool in_stack_guard(uint64_t addr);

// Reports (report.cpp): prints "mmard-emu: kernel(args): <message>" (or "mmard-emu: <message>"
// outside a kernel) and aborts.
[[noreturn]] void die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void install_fault_handler();
// Gives the calling thread an alternate signal stack if it has none (for faults on a fiber's guard).
void ensure_signal_stack();

// The context and streams (driver.cpp).
bool context_current();
bool stream_ok(CUstream s);
}  // namespace emu
