// Kernels by name: the compiled kernels register themselves; a module is the list of kernels its
// PTX text names (`.entry NAME(` lines), checked against them when it is loaded; a launch checks
// the configuration and the pointer arguments, then runs the whole grid before it returns.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "emu.h"

struct EmuModule {
    std::vector<const emu::Kernel*> kernels;
};

namespace emu {
namespace {
std::map<std::string, const Kernel*>& registry() {
    static std::map<std::string, const Kernel*> r;
    return r;
}

std::set<const Kernel*>& registered() {
    static std::set<const Kernel*> r;
    return r;
}

std::set<const EmuModule*> modules;

// The kernel names a PTX text declares.
std::vector<std::string> entries(const char* ptx) {
    std::vector<std::string> names;
    for (const char* at = strstr(ptx, ".entry"); at; at = strstr(at + 1, ".entry")) {
        const char* p = at + 6;
        if (*p != ' ' && *p != '\t') continue;
        while (*p == ' ' || *p == '\t') p++;
        const char* end = p;
        while (*end && *end != '(' && *end != ' ' && *end != '\t' && *end != '\n') end++;
        names.emplace_back(p, end);
    }
    return names;
}

// Real CUDA would reject these with an error code; here they stop the program like a fault does.
void check_launch(const Kernel* k, uint3 g, uint3 b, unsigned shared_bytes) {
    unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
        die("launch with an empty grid (%u,%u,%u) or block (%u,%u,%u)", g.x, g.y, g.z, b.x, b.y, b.z);
    if (threads > max_threads_per_block || b.x > max_threads_per_block || b.y > max_threads_per_block ||
        b.z > max_block_z)
        die("block (%u,%u,%u) exceeds the device's limits (%u threads per block, z up to %u)", b.x, b.y, b.z,
            max_threads_per_block, max_block_z);
    if (g.x > max_grid_x || g.y > max_grid_yz || g.z > max_grid_yz)
        die("grid (%u,%u,%u) exceeds the device's limits (x up to %u, y and z up to %u)", g.x, g.y, g.z, max_grid_x,
            max_grid_yz);
    size_t static_bytes = k->shared_end - k->shared_begin;
    if (static_bytes + shared_bytes > max_shared_per_block)
        die("%zu bytes of static shared memory (every __shared__ variable of the kernel's file) and %u dynamic "
            "exceed the device's %u per block",
            static_bytes, shared_bytes, max_shared_per_block);
}
}  // namespace
}  // namespace emu

EMU_API void emu_register_kernel(const emu::Kernel* k) {
    std::lock_guard<std::mutex> lock(emu::api);
    auto [it, fresh] = emu::registry().emplace(k->name, k);
    if (!fresh && it->second != k) emu::die("two kernels are named %s", k->name);
    emu::registered().insert(k);
}

CU_API CUresult cuModuleLoadData(CUmodule* m, const void* image) {
    std::lock_guard<std::mutex> lock(emu::api);
    if (!emu::initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!emu::context_current()) return CUDA_ERROR_INVALID_CONTEXT;
    if (!m || !image) return CUDA_ERROR_INVALID_VALUE;
    const char* text = static_cast<const char*>(image);
    if (memcmp(text, "\x7f" "ELF", 4) == 0) {
        fprintf(stderr, "mmard-emu: cuModuleLoadData: a cubin or fatbin cannot run on the emulator; give it PTX\n");
        return CUDA_ERROR_INVALID_IMAGE;
    }
    auto* mod = new EmuModule;
    for (const std::string& name : emu::entries(text)) {
        auto it = emu::registry().find(name);
        if (it == emu::registry().end()) {
            fprintf(stderr, "mmard-emu: cuModuleLoadData: kernel %s is not compiled into the emulator\n",
                    name.c_str());
            delete mod;
            return CUDA_ERROR_NOT_FOUND;
        }
        mod->kernels.push_back(it->second);
    }
    emu::modules.insert(mod);
    *m = mod;
    return CUDA_SUCCESS;
}

CU_API CUresult cuModuleLoadDataEx(CUmodule* m, const void* image, unsigned, int*, void**) {
    return cuModuleLoadData(m, image);
}

CU_API CUresult cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
    std::lock_guard<std::mutex> lock(emu::api);
    if (!emu::initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!f || !name) return CUDA_ERROR_INVALID_VALUE;
    if (!emu::modules.count(m)) return CUDA_ERROR_INVALID_HANDLE;
    for (const emu::Kernel* k : m->kernels)
        if (strcmp(k->name, name) == 0) {
            *f = k;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_NOT_FOUND;
}

CU_API CUresult cuModuleUnload(CUmodule m) {
    std::lock_guard<std::mutex> lock(emu::api);
    if (!emu::initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!emu::modules.erase(m)) return CUDA_ERROR_INVALID_HANDLE;
    delete m;
    return CUDA_SUCCESS;
}

CU_API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shared_bytes, CUstream s, void** params, void** extra) {
    std::lock_guard<std::mutex> lock(emu::api);
    if (!emu::initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!emu::context_current()) return CUDA_ERROR_INVALID_CONTEXT;
    if (!emu::registered().count(f) || !emu::stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    if (extra || (!params && f->arity > 0)) return CUDA_ERROR_INVALID_VALUE;
    emu::running = f;
    emu::running_params = params;
    emu::running_on = pthread_self();
    emu::check_launch(f, {gx, gy, gz}, {bx, by, bz}, shared_bytes);
    int bad = f->bad_pointer(params);
    if (bad >= 0) {
        uint64_t p = *static_cast<uint64_t*>(params[bad]);
        char where[256];
        emu::describe_address(p, where, sizeof where);
        emu::die("argument %d (0x%llx) is not a pointer into live device memory: %s", bad, (unsigned long long)p,
                 where);
    }
    emu::ensure_signal_stack();
    emu::run_grid({gx, gy, gz}, {bx, by, bz});
    emu::running = nullptr;
    emu::running_params = nullptr;
    return CUDA_SUCCESS;
}
