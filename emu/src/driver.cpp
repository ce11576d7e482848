// The driver API around the kernels: one emulated device with its primary context, streams and
// events (all work runs synchronously on the calling thread, so stream order holds trivially and
// every event has completed when it is recorded), and device memory with checked copies.
#include <chrono>
#include <set>

#include "emu.h"

struct EmuCtx {
    int retained;
};
struct EmuStream {};
struct EmuEvent {
    bool timing, recorded;
    std::chrono::steady_clock::time_point at;
};
struct EmuPool {
    uint64_t release_threshold;
};

namespace emu {
std::mutex api;
bool initialized = false;

namespace {
EmuCtx primary;
thread_local CUcontext current_ctx = nullptr;
std::set<const EmuStream*> streams;
std::set<const EmuEvent*> events;
EmuPool pool;

// CU_STREAM_LEGACY and CU_STREAM_PER_THREAD, the special handles.
const CUstream legacy_stream = reinterpret_cast<CUstream>(1), per_thread_stream = reinterpret_cast<CUstream>(2);

// The checks every call starts with; calls that work on the device also need a current context.
CUresult enter(const char* call, bool needs_context) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (needs_context && !context_current()) {
        // cudarc records some errors (e.g. of frees in Drop) for later; say where it came from now.
        fprintf(stderr, "mmard-emu: %s on a thread with no current context: CUDA_ERROR_INVALID_CONTEXT\n", call);
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    return CUDA_SUCCESS;
}

// Stops the program when [p, p + bytes) is not inside one live allocation.
void check_range(const char* call, const char* what, uint64_t p, size_t bytes) {
    if (range_live(p, bytes)) return;
    char where[256];
    describe_address(p, where, sizeof where);
    die("%s: %s [0x%llx, +%zu bytes) is not inside one live device allocation (its start: %s)", call, what,
        (unsigned long long)p, bytes, where);
}

enum class Dir { HtoD, DtoH, DtoD };

// A copy; dst and src are host or device addresses as dir says.
CUresult copy(const char* call, Dir dir, uint64_t dst, uint64_t src, size_t bytes, CUstream s) {
    std::lock_guard<std::mutex> lock(api);
    if (CUresult e = enter(call, true)) return e;
    if (!stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    if (dir != Dir::HtoD) check_range(call, "source", src, bytes);
    if (dir != Dir::DtoH) check_range(call, "destination", dst, bytes);
    if (dir == Dir::DtoD && dst < src + bytes && src < dst + bytes)
        die("%s(0x%llx, 0x%llx, %zu bytes): the ranges overlap", call, (unsigned long long)dst,
            (unsigned long long)src, bytes);
    if (bytes && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    if (bytes) memcpy((void*)dst, (const void*)src, bytes);
    return CUDA_SUCCESS;
}

CUresult alloc(CUdeviceptr* p, size_t bytes) {
    if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    void* a = device_alloc(bytes);
    if (!a) return CUDA_ERROR_OUT_OF_MEMORY;
    *p = (CUdeviceptr)a;
    return CUDA_SUCCESS;
}

CUresult release(const char* call, CUdeviceptr p) {
    switch (device_free(p)) {
        case Freed::Ok: return CUDA_SUCCESS;
        case Freed::NotAllocated: return CUDA_ERROR_INVALID_VALUE;
        case Freed::Twice: die("%s(0x%llx): the allocation was freed before", call, p);
        case Freed::Interior: die("%s(0x%llx): not the start of an allocation", call, p);
    }
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult memset8(const char* call, CUdeviceptr dst, unsigned char v, size_t n) {
    check_range(call, "destination", dst, n);
    memset((void*)dst, v, n);
    return CUDA_SUCCESS;
}
}  // namespace

bool context_current() { return current_ctx == &primary && primary.retained > 0; }

bool stream_ok(CUstream s) {
    return s == nullptr || s == legacy_stream || s == per_thread_stream || streams.count(s);
}
}  // namespace emu

using emu::api;
using emu::enter;
using Lock = std::lock_guard<std::mutex>;

CU_API CUresult cuInit(unsigned flags) {
    Lock lock(api);
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (!emu::initialized) emu::install_fault_handler();
    emu::initialized = true;
    return CUDA_SUCCESS;
}

CU_API CUresult cuDriverGetVersion(int* version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 13000;
    return CUDA_SUCCESS;
}

namespace {
struct ErrorText {
    CUresult code;
    const char *name, *text;
};
const ErrorText error_texts[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

CUresult error_text(CUresult e, const char** s, bool name) {
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    for (const ErrorText& t : error_texts)
        if (t.code == e) {
            *s = name ? t.name : t.text;
            return CUDA_SUCCESS;
        }
    *s = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
}
}  // namespace

CU_API CUresult cuGetErrorName(CUresult e, const char** s) { return error_text(e, s, true); }
CU_API CUresult cuGetErrorString(CUresult e, const char** s) { return error_text(e, s, false); }

CU_API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *d = 0;
    return CUDA_SUCCESS;
}

CU_API CUresult cuDeviceGetCount(int* n) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    *n = 1;
    return CUDA_SUCCESS;
}

CU_API CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, len, "mmard emulated GPU (CPU)");
    return CUDA_SUCCESS;
}

CU_API CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    memcpy(uuid->bytes, "mmard-emu-gpu-00", 16);
    return CUDA_SUCCESS;
}

CU_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = emu::total_memory;
    return CUDA_SUCCESS;
}

CU_API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *v = emu::max_threads_per_block; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *v = emu::max_block_z; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *v = emu::max_grid_x; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *v = emu::max_grid_yz; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = emu::max_shared_per_block; break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = emu::warp; break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = emu::sms; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *v = 2048; break;
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
        case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: *v = 1; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
        default:
            fprintf(stderr, "mmard-emu: cuDeviceGetAttribute: attribute %d is not emulated\n", attr);
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CU_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* p, CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    *p = &emu::pool;
    return CUDA_SUCCESS;
}

CU_API CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    emu::primary.retained++;
    *ctx = &emu::primary;
    return CUDA_SUCCESS;
}

CU_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (emu::primary.retained == 0) return CUDA_ERROR_INVALID_CONTEXT;
    emu::primary.retained--;
    return CUDA_SUCCESS;
}

CU_API CUresult cuCtxGetCurrent(CUcontext* ctx) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    *ctx = emu::current_ctx;
    return CUDA_SUCCESS;
}

CU_API CUresult cuCtxSetCurrent(CUcontext ctx) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (ctx && (ctx != &emu::primary || emu::primary.retained == 0)) return CUDA_ERROR_INVALID_CONTEXT;
    emu::current_ctx = ctx;
    return CUDA_SUCCESS;
}

CU_API CUresult cuCtxSynchronize() {
    Lock lock(api);
    return enter(__func__, true);
}

CU_API CUresult cuStreamCreate(CUstream* s, unsigned) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    *s = new EmuStream;
    emu::streams.insert(*s);
    return CUDA_SUCCESS;
}

CU_API CUresult cuStreamDestroy_v2(CUstream s) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    if (!emu::streams.erase(s)) return CUDA_ERROR_INVALID_HANDLE;
    delete s;
    return CUDA_SUCCESS;
}

CU_API CUresult cuStreamSynchronize(CUstream s) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    return emu::stream_ok(s) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CU_API CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    return emu::stream_ok(s) && emu::events.count(e) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CU_API CUresult cuEventCreate(CUevent* e, unsigned flags) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    if (!e) return CUDA_ERROR_INVALID_VALUE;
    const unsigned disable_timing = 2;
    *e = new EmuEvent{!(flags & disable_timing), false, {}};
    emu::events.insert(*e);
    return CUDA_SUCCESS;
}

CU_API CUresult cuEventRecord(CUevent e, CUstream s) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    if (!emu::events.count(e) || !emu::stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    e->recorded = true;
    e->at = std::chrono::steady_clock::now();
    return CUDA_SUCCESS;
}

CU_API CUresult cuEventSynchronize(CUevent e) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    return emu::events.count(e) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CU_API CUresult cuEventQuery(CUevent e) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    return emu::events.count(e) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CU_API CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    if (!emu::events.count(start) || !emu::events.count(end)) return CUDA_ERROR_INVALID_HANDLE;
    if (!start->timing || !end->timing || !start->recorded || !end->recorded) return CUDA_ERROR_INVALID_HANDLE;
    *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
    return CUDA_SUCCESS;
}

CU_API CUresult cuEventDestroy_v2(CUevent e) {
    Lock lock(api);
    if (CUresult r = enter(__func__, true)) return r;
    if (!emu::events.erase(e)) return CUDA_ERROR_INVALID_HANDLE;
    delete e;
    return CUDA_SUCCESS;
}

CU_API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    return emu::alloc(p, bytes);
}

CU_API CUresult cuMemFree_v2(CUdeviceptr p) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    return emu::release(__func__, p);
}

CU_API CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, CUstream s) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    if (!emu::stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    return emu::alloc(p, bytes);
}

CU_API CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    if (!emu::stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    return emu::release(__func__, p);
}

CU_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, int attr, void* value) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (pool != &emu::pool) return CUDA_ERROR_INVALID_HANDLE;
    if (attr != CU_MEMPOOL_ATTR_RELEASE_THRESHOLD || !value) return CUDA_ERROR_INVALID_VALUE;
    pool->release_threshold = *static_cast<uint64_t*>(value);
    return CUDA_SUCCESS;
}

CU_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, int attr, void* value) {
    Lock lock(api);
    if (CUresult e = enter(__func__, false)) return e;
    if (pool != &emu::pool) return CUDA_ERROR_INVALID_HANDLE;
    if (attr != CU_MEMPOOL_ATTR_RELEASE_THRESHOLD || !value) return CUDA_ERROR_INVALID_VALUE;
    *static_cast<uint64_t*>(value) = pool->release_threshold;
    return CUDA_SUCCESS;
}

CU_API CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
    *total = emu::total_memory;
    *free = emu::total_memory - emu::live_bytes();
    return CUDA_SUCCESS;
}

CU_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
    return emu::copy(__func__, emu::Dir::HtoD, dst, (uint64_t)src, bytes, nullptr);
}

CU_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
    return emu::copy(__func__, emu::Dir::DtoH, (uint64_t)dst, src, bytes, nullptr);
}

CU_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return emu::copy(__func__, emu::Dir::DtoD, dst, src, bytes, nullptr);
}

CU_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
    return emu::copy(__func__, emu::Dir::HtoD, dst, (uint64_t)src, bytes, s);
}

CU_API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
    return emu::copy(__func__, emu::Dir::DtoH, (uint64_t)dst, src, bytes, s);
}

CU_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
    return emu::copy(__func__, emu::Dir::DtoD, dst, src, bytes, s);
}

CU_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    return emu::memset8(__func__, dst, v, n);
}

CU_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
    Lock lock(api);
    if (CUresult e = enter(__func__, true)) return e;
    if (!emu::stream_ok(s)) return CUDA_ERROR_INVALID_HANDLE;
    return emu::memset8(__func__, dst, v, n);
}
