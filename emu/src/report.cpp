// Stopping like a debugger: a message that names the kernel, its arguments and the thread, then
// abort(). Faults (a kernel touching memory outside a live allocation) arrive as SIGSEGV/SIGBUS.
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdlib>

#include "emu.h"

namespace emu {
namespace {
struct sigaction previous_segv, previous_bus;

// Writes "mmard-emu: kernel(args): block (..) thread (..): " (as much as is known) into buf.
size_t prefix(char* buf, size_t len, bool in_kernel) {
    size_t at = snprintf(buf, len, "mmard-emu: ");
    if (!in_kernel) return at;
    at += snprintf(buf + at, len - at, "%s(", running->name);
    if (at < len) running->describe(running_params, buf + at, len - at);
    at = strlen(buf);
    at += snprintf(buf + at, len - at, "): ");
    if (at < len && running_thread >= 0)
        at += snprintf(buf + at, len - at, "block (%u,%u,%u) thread (%u,%u,%u): ", block_idx.x, block_idx.y,
                       block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z);
    return at < len ? at : len - 1;
}

[[noreturn]] void emit(char* buf, size_t at, size_t len) {
    at = at < len - 1 ? at : len - 2;
    buf[at++] = '\n';
    if (write(2, buf, at) < 0) abort();
    abort();
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
    uint64_t addr = (uint64_t)info->si_addr;
    bool in_kernel = running != nullptr && pthread_equal(running_on, pthread_self());
    char where[256];
    describe_address(addr, where, sizeof where);
    bool near_device = strncmp(where, "not near", 8) != 0;
    if (!in_kernel && !near_device) {
        // Not ours: let the handler that was there before (e.g. Rust's stack-overflow check) see it.
        sigaction(sig, sig == SIGSEGV ? &previous_segv : &previous_bus, nullptr);
        return;
    }
    auto* uc = static_cast<ucontext_t*>(uctx);
    const char* kind = uc->uc_mcontext.gregs[REG_ERR] & 2 ? "write" : "read";
    char buf[2048];
    size_t at = prefix(buf, sizeof buf, in_kernel);
    if (in_stack_guard(addr))
        at += snprintf(buf + at, sizeof buf - at, "stack overflow (a thread's stack is 64 KiB) at 0x%llx",
                       (unsigned long long)addr);
    else
        at += snprintf(buf + at, sizeof buf - at, "invalid %s at 0x%llx: %s%s", kind, (unsigned long long)addr,
                       where, in_kernel ? "" : " (in a driver, cuBLAS or cuDNN call, not a kernel)");
    emit(buf, at, sizeof buf);
}
}  // namespace

void die(const char* fmt, ...) {
    char buf[2048];
    size_t at = prefix(buf, sizeof buf, running != nullptr);
    va_list ap;
    va_start(ap, fmt);
    at += vsnprintf(buf + at, sizeof buf - at, fmt, ap);
    va_end(ap);
    emit(buf, at, sizeof buf);
}

void install_fault_handler() {
    struct sigaction sa = {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

// A fiber's stack overflowing faults on its guard page; the handler then needs a stack of its own.
void ensure_signal_stack() {
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
    static thread_local char* mine = nullptr;
    if (!mine) mine = static_cast<char*>(malloc(SIGSTKSZ * 4));
    stack_t s = {};
    s.ss_sp = mine;
    s.ss_size = SIGSTKSZ * 4;
    sigaltstack(&s, nullptr);
}
}  // namespace emu
