// Device memory: host pages, handed out from reserved address space so that a kernel's stray access
// faults. Each allocation ends exactly at an inaccessible page (one guard page between any two);
// a freed one is made inaccessible and its addresses are never handed out again.
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>
#include <map>

#include "emu.h"

namespace emu {
namespace {
constexpr size_t page = 4096, arena_bytes = size_t(1) << 40;

struct Alloc {
    size_t bytes;
    uint64_t pages_begin;  // the accessible pages: [pages_begin, base + bytes)
    bool live;
};

// Every allocation ever made, by base address (freed ones stay, to name them in reports).
std::map<uint64_t, Alloc> allocs;
uint64_t next_free = 0, arena_end = 0;
size_t live = 0;

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

// The allocation whose [base, base + bytes] holds addr (the end included), or allocs.end().
std::map<uint64_t, Alloc>::const_iterator containing(uint64_t addr) {
    auto it = allocs.upper_bound(addr);
    if (it == allocs.begin()) return allocs.end();
    --it;
    return addr <= it->first + it->second.bytes ? it : allocs.end();
}
}  // namespace

void* device_alloc(size_t bytes) {
    if (bytes == 0 || bytes > total_memory - live) return nullptr;
    size_t pages = round_up(bytes, page);
    // A guard page before the allocation (the previous one's trailing guard), then its pages.
    if (next_free == 0 || next_free + page + pages + page > arena_end) {
        void* a = mmap(nullptr, arena_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (a == MAP_FAILED) return nullptr;
        next_free = (uint64_t)a;
        arena_end = next_free + arena_bytes;
    }
    uint64_t begin = next_free + page;
    if (mprotect((void*)begin, pages, PROT_READ | PROT_WRITE) != 0) return nullptr;
    next_free = begin + pages;
    // Right-aligned: the byte after the last one is inaccessible. The address stays aligned to
    // the largest power of two (up to 256) that divides the size, so typed buffers stay aligned.
    uint64_t base = begin + pages - bytes;
    // Fresh device memory holds garbage on a GPU: all-ones bytes read as NaN floats and -1 ints.
    memset((void*)base, 0xff, bytes);
    allocs[base] = {bytes, begin, true};
    live += bytes;
    return (void*)base;
}

Freed device_free(uint64_t p) {
    auto it = containing(p);
    if (it == allocs.end()) return Freed::NotAllocated;
    if (it->first != p) return Freed::Interior;
    if (!it->second.live) return Freed::Twice;
    Alloc& a = allocs[p];
    size_t len = p + a.bytes - a.pages_begin;
    madvise((void*)a.pages_begin, len, MADV_DONTNEED);
    mprotect((void*)a.pages_begin, len, PROT_NONE);
    a.live = false;
    live -= a.bytes;
    return Freed::Ok;
}

bool range_live(uint64_t p, size_t bytes) {
    auto it = containing(p);
    return it != allocs.end() && it->second.live && p + bytes >= p && p + bytes <= it->first + it->second.bytes;
}

size_t live_bytes() { return live; }

bool device_pointer_ok(const void* p) { return p == nullptr || range_live((uint64_t)p, 0); }

void describe_address(uint64_t addr, char* buf, size_t len) {
    auto after = allocs.upper_bound(addr);
    if (after != allocs.begin()) {
        auto it = std::prev(after);
        const Alloc& a = it->second;
        const char* state = a.live ? "live" : "freed";
        if (addr < it->first + a.bytes) {
            snprintf(buf, len, "byte %" PRIu64 " of allocation 0x%" PRIx64 " (%zu bytes, %s)", addr - it->first,
                     it->first, a.bytes, state);
            return;
        }
        if (addr - (it->first + a.bytes) < page) {
            snprintf(buf, len, "%" PRIu64 " bytes past the end of allocation 0x%" PRIx64 " (%zu bytes, %s)",
                     addr - (it->first + a.bytes), it->first, a.bytes, state);
            return;
        }
    }
    if (after != allocs.end() && addr >= after->second.pages_begin - page) {
        snprintf(buf, len, "%" PRIu64 " bytes before allocation 0x%" PRIx64 " (%zu bytes, %s)", after->first - addr,
                 after->first, after->second.bytes, after->second.live ? "live" : "freed");
        return;
    }
    snprintf(buf, len, "not near any device allocation");
}
}  // namespace emu

EMU_API int emu_check_range(unsigned long long ptr, size_t bytes) {
    std::lock_guard<std::mutex> lock(emu::api);
    return emu::range_live(ptr, bytes);
}
