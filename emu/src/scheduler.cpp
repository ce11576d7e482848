// The block scheduler: runs a grid one block at a time, each block's threads as fibers, one warp at
// a time, each lane until it waits (at __syncthreads or a shuffle) or finishes. A shuffle completes
// when every lane of the warp waits at it; a barrier when every thread of the block does. Block,
// warp and lane order are drawn from MMARD_EMU_SEED, so a result that depends on them changes
// with the seed.
//
// Fibers switch with a few instructions of our own rather than swapcontext, which makes a
// sigprocmask system call per switch: that was most of the run time of kernels with barriers.
#include <sys/mman.h>

#include <cstdlib>
#include <vector>

#include "emu.h"

#if !defined(__x86_64__)
#error "the emulator's fiber switch is written for x86-64"
#endif

// Saves the callee-saved registers on the current stack and the stack pointer in *save, then
// continues on the stack `to` (as saved by an earlier switch, or prepared by new_fiber).
extern "C" void emu_fiber_switch(void** save, void* to);
asm(R"(
    .text
    .globl emu_fiber_switch
    .hidden emu_fiber_switch
    .type emu_fiber_switch, @function
emu_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_fiber_switch, .-emu_fiber_switch
)");

namespace emu {
uint3 thread_idx, block_idx, block_dim, grid_dim;
const Kernel* running = nullptr;
void** running_params = nullptr;
pthread_t running_on;
long running_thread = -1;

namespace {
constexpr size_t stack_bytes = 64 << 10, guard_bytes = 4096;

enum class State : uint8_t { Fresh, Ready, Barrier, Shuffle, Done };

struct Fiber;

struct Thread {
    State state;
    Fiber* fiber;
    uint3 idx;
    // Where it waits, and for a shuffle what it asked for and (on return) what it got.
    const void* site;
    unsigned mask, arg;
    int width;
    Shfl kind;
    size_t bytes;
    uint64_t value;
};

struct Fiber {
    void* sp;     // where it continues
    char* stack;  // its lowest page is the guard
    Thread* thread;
};

void* scheduler;
std::vector<Fiber*> fibers, idle;
Fiber* starting;
std::vector<Thread> threads;
Thread* current;
// The lanes the scheduler resumes in this pass, in order; a fiber whose thread finished takes the
// next fresh one itself (no switch), so kernels without barriers cost one switch per block.
std::vector<unsigned> pass;
size_t pass_at;

uint64_t rng;

uint64_t next_random() {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t seed() {
    static const uint64_t s = [] {
        const char* v = getenv("MMARD_EMU_SEED");
        return v ? strtoull(v, nullptr, 0) : 1;
    }();
    return s;
}

template <class T>
void shuffle_in_place(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[next_random() % i]);
}

void make_current(Thread* t) {
    current = t;
    thread_idx = t->idx;
    running_thread = t - threads.data();
}

[[noreturn]] void fiber_main() {
    Fiber* f = starting;
    for (;;) {
        for (;;) {
            running->run(running_params);
            Thread* done = f->thread;
            done->state = State::Done;
            done->fiber = nullptr;
            if (pass_at == pass.size() || threads[pass[pass_at]].state != State::Fresh) break;
            Thread* next = &threads[pass[pass_at++]];
            next->state = State::Ready;
            next->fiber = f;
            f->thread = next;
            make_current(next);
        }
        f->thread = nullptr;
        idle.push_back(f);
        emu_fiber_switch(&f->sp, scheduler);
    }
}

Fiber* get_fiber() {
    if (!idle.empty()) {
        Fiber* f = idle.back();
        idle.pop_back();
        return f;
    }
    auto* f = new Fiber{};
    void* s = mmap(nullptr, stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) die("out of memory for thread stacks");
    mprotect(s, guard_bytes, PROT_NONE);
    f->stack = (char*)s;
    // What emu_fiber_switch pops: six zero registers, then fiber_main as the return address,
    // over a slot that leaves the stack aligned as after a call.
    void** top = (void**)(f->stack + stack_bytes) - 8;
    memset(top, 0, 8 * sizeof(void*));
    top[6] = (void*)fiber_main;
    f->sp = top;
    fibers.push_back(f);
    return f;
}

void resume(Thread* t) {
    if (t->state == State::Fresh) {
        Fiber* f = get_fiber();
        f->thread = t;
        t->fiber = f;
        starting = f;
    }
    t->state = State::Ready;
    make_current(t);
    emu_fiber_switch(&scheduler, t->fiber->sp);
    current = nullptr;
    running_thread = -1;
}

// Suspends the current thread in `state` until the scheduler resumes it.
void wait(State state) {
    Thread* t = current;
    t->state = state;
    emu_fiber_switch(&t->fiber->sp, scheduler);
}

const char* state_name(State s) {
    switch (s) {
        case State::Barrier: return "wait at __syncthreads";
        case State::Shuffle: return "wait at a shuffle";
        case State::Done: return "have finished";
        default: return "run";
    }
}

// Completes the shuffle every lane of warp [begin, end) waits at.
void exchange(unsigned begin, unsigned end) {
    const Thread& first = threads[begin];
    unsigned lanes = end - begin, w = begin / warp;
    unsigned full = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    for (unsigned i = begin; i < end; i++) {
        const Thread& t = threads[i];
        if (t.site != first.site || t.kind != first.kind || t.arg != first.arg || t.width != first.width ||
            t.mask != first.mask || t.bytes != first.bytes)
            die("block (%u,%u,%u) warp %u: lanes %u and %u wait at different shuffles", block_idx.x, block_idx.y,
                block_idx.z, w, 0, i - begin);
    }
    if (first.mask != 0xffffffffu || lanes != 32)
        die("block (%u,%u,%u) warp %u: shuffle with mask 0x%x over a warp of %u lanes (lanes 0x%x exist): the "
            "emulator takes full warps and full masks only",
            block_idx.x, block_idx.y, block_idx.z, w, first.mask, lanes, full);
    if (first.width <= 0 || first.width > 32 || (first.width & (first.width - 1)))
        die("block (%u,%u,%u) warp %u: shuffle width %d is not a power of two up to 32", block_idx.x, block_idx.y,
            block_idx.z, w, first.width);
    uint64_t old[32];
    for (unsigned l = 0; l < 32; l++) old[l] = threads[begin + l].value;
    for (unsigned l = 0; l < 32; l++) {
        unsigned w_ = (unsigned)first.width, src = first.kind == Shfl::Down ? l + first.arg : l ^ first.arg;
        bool inside = first.kind == Shfl::Down ? (l % w_) + first.arg < w_ : src < (l / w_ + 1) * w_;
        threads[begin + l].value = inside ? old[src] : old[l];
        threads[begin + l].state = State::Ready;
    }
}

// Runs warp w until each of its lanes waits at a barrier or has finished.
void run_warp(unsigned w) {
    unsigned begin = w * warp, end = std::min<unsigned>(begin + warp, threads.size());
    for (;;) {
        pass.clear();
        for (unsigned i = begin; i < end; i++)
            if (threads[i].state == State::Fresh || threads[i].state == State::Ready) pass.push_back(i);
        shuffle_in_place(pass);
        for (pass_at = 0; pass_at < pass.size();) {
            Thread* t = &threads[pass[pass_at++]];
            if (t->state == State::Fresh || t->state == State::Ready) resume(t);
        }
        unsigned at_shuffle = 0;
        for (unsigned i = begin; i < end; i++) at_shuffle += threads[i].state == State::Shuffle;
        if (at_shuffle == 0) return;
        if (at_shuffle < end - begin) {
            unsigned other = begin;
            while (threads[other].state == State::Shuffle) other++;
            die("block (%u,%u,%u) warp %u: a shuffle is reached by %u of its %u lanes; lane %u and others %s",
                block_idx.x, block_idx.y, block_idx.z, w, at_shuffle, end - begin, other - begin,
                state_name(threads[other].state));
        }
        exchange(begin, end);
    }
}

void run_block(unsigned warps) {
    for (Thread& t : threads) t.state = State::Fresh;
    if (running->shared_begin) memset(running->shared_begin, 0xff, running->shared_end - running->shared_begin);
    std::vector<unsigned> order(warps);
    for (;;) {
        for (unsigned w = 0; w < warps; w++) order[w] = w;
        shuffle_in_place(order);
        for (unsigned w : order) run_warp(w);
        size_t done = 0, first_waiting = threads.size();
        for (size_t i = 0; i < threads.size(); i++) {
            if (threads[i].state == State::Done)
                done++;
            else if (first_waiting == threads.size())
                first_waiting = i;
        }
        if (done == threads.size()) return;
        if (done > 0)
            die("block (%u,%u,%u): __syncthreads is reached by %zu of its %zu threads; the others have finished",
                block_idx.x, block_idx.y, block_idx.z, threads.size() - done, threads.size());
        for (Thread& t : threads) {
            if (t.site != threads[first_waiting].site)
                die("block (%u,%u,%u): threads %zu and %zu wait at different __syncthreads", block_idx.x, block_idx.y,
                    block_idx.z, first_waiting, (size_t)(&t - threads.data()));
            t.state = State::Ready;
        }
    }
}
}  // namespace

void barrier(const void* site) {
    current->site = site;
    wait(State::Barrier);
}

void shuffle(unsigned mask, void* v, size_t bytes, Shfl kind, unsigned arg, int width, const void* site) {
    Thread* t = current;
    t->mask = mask;
    t->kind = kind;
    t->arg = arg;
    t->width = width;
    t->site = site;
    t->bytes = bytes;
    t->value = 0;
    memcpy(&t->value, v, bytes);
    wait(State::Shuffle);
    memcpy(v, &t->value, bytes);
}

bool in_stack_guard(uint64_t addr) {
    for (const Fiber* f : fibers)
        if (addr >= (uint64_t)f->stack && addr < (uint64_t)f->stack + guard_bytes) return true;
    return false;
}

void run_grid(uint3 grid, uint3 block) {
    static uint64_t launches = 0;
    rng = seed() * 0x2545f4914f6cdd1dull + ++launches;
    grid_dim = grid;
    block_dim = block;
    unsigned n = block.x * block.y * block.z;
    threads.assign(n, Thread{});
    for (unsigned i = 0; i < n; i++) threads[i].idx = {i % block.x, i / block.x % block.y, i / (block.x * block.y)};
    // Blocks in a random order without a table: x -> a*x + b mod 2^k (a bijection, a odd), walked
    // until it lands inside the grid.
    uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z, mask = 1;
    while (mask < blocks) mask <<= 1;
    mask--;
    uint64_t a = next_random() | 1, b = next_random();
    for (uint64_t i = 0; i < blocks; i++) {
        uint64_t x = i;
        do x = (a * x + b) & mask;
        while (x >= blocks);
        block_idx = {(unsigned)(x % grid.x), (unsigned)(x / grid.x % grid.y), (unsigned)(x / ((uint64_t)grid.x * grid.y))};
        run_block((n + warp - 1) / warp);
    }
}
}  // namespace emu
