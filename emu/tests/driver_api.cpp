// The driver calls' answers: results and error codes for bad arguments, before and after cuInit.
// Exit status 1 and a message naming each call that answered wrong.
#include <cstring>

#include "harness.h"

static int bad = 0;

static void expect(CUresult got, CUresult want, const char* what) {
    if (got != want) {
        fprintf(stderr, "%s: got %d, want %d\n", what, got, want);
        bad = 1;
    }
}
#define EXPECT(call, want) expect(call, want, #call)

int main() {
    int n = -1;
    EXPECT(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
    int version = 0;
    EXPECT(cuDriverGetVersion(&version), CUDA_SUCCESS);
    expect(version, 13000, "driver version");
    EXPECT(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuInit(0), CUDA_SUCCESS);
    EXPECT(cuDeviceGetCount(&n), CUDA_SUCCESS);
    expect(n, 1, "device count");
    CUdevice d;
    EXPECT(cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
    EXPECT(cuDeviceGet(&d, 0), CUDA_SUCCESS);
    char name[64];
    EXPECT(cuDeviceGetName(name, sizeof name, 0), CUDA_SUCCESS);
    if (!strstr(name, "emulated")) fprintf(stderr, "name %s\n", name), bad = 1;
    int v = 0;
    EXPECT(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0), CUDA_SUCCESS);
    expect(v, 1024, "max threads per block");
    EXPECT(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_SUCCESS);
    expect(v, 132, "SMs");
    EXPECT(cuDeviceGetAttribute(&v, 100000, 0), CUDA_ERROR_INVALID_VALUE);

    // Without a current context, device work is refused.
    CUdeviceptr p;
    EXPECT(cuMemAlloc_v2(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
    CUcontext ctx;
    EXPECT(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    EXPECT(cuCtxSetCurrent(ctx), CUDA_SUCCESS);

    EXPECT(cuMemAlloc_v2(&p, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemAlloc_v2(&p, size_t(1) << 50), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cuMemAllocAsync(&p, 256, nullptr), CUDA_SUCCESS);
    size_t free_bytes = 0, total = 0;
    EXPECT(cuMemGetInfo_v2(&free_bytes, &total), CUDA_SUCCESS);
    expect(total - free_bytes == 256, 1, "used memory is the live allocation");
    expect(emu_check_range(p, 256), 1, "range of the allocation");
    expect(emu_check_range(p + 1, 256), 0, "range one past");
    EXPECT(cuMemsetD8Async(p, 0, 256, nullptr), CUDA_SUCCESS);
    EXPECT(cuMemFreeAsync(p, reinterpret_cast<CUstream>(0x1234)), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuMemFreeAsync(p, nullptr), CUDA_SUCCESS);
    expect(emu_check_range(p, 1), 0, "range after the free");
    EXPECT(cuMemFree_v2(0x1000), CUDA_ERROR_INVALID_VALUE);

    CUmemoryPool pool;
    EXPECT(cuDeviceGetDefaultMemPool(&pool, 0), CUDA_SUCCESS);
    unsigned long long keep = ~0ull, read = 0;
    EXPECT(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep), CUDA_SUCCESS);
    EXPECT(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &read), CUDA_SUCCESS);
    expect(read == keep, 1, "release threshold");

    CUmodule m;
    EXPECT(cuModuleLoadData(&m, ".visible .entry no_such_kernel(\n"), CUDA_ERROR_NOT_FOUND);
    EXPECT(cuModuleLoadData(&m, "\x7f" "ELF...."), CUDA_ERROR_INVALID_IMAGE);
    EXPECT(cuModuleLoadData(&m, "// two kernels\n.visible .entry relu_fwd(\n.visible .entry add_fwd(\n"), CUDA_SUCCESS);
    CUfunction f;
    EXPECT(cuModuleGetFunction(&f, m, "scale"), CUDA_ERROR_NOT_FOUND);
    EXPECT(cuModuleGetFunction(&f, reinterpret_cast<CUmodule>(&n), "relu_fwd"), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuModuleGetFunction(&f, m, "add_fwd"), CUDA_SUCCESS);
    void* params[4] = {};
    EXPECT(cuLaunchKernel(reinterpret_cast<CUfunction>(&n), 1, 1, 1, 32, 1, 1, 0, nullptr, params, nullptr),
           CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuModuleUnload(m), CUDA_SUCCESS);
    EXPECT(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);

    CUevent a, b;
    EXPECT(cuEventCreate(&a, 0), CUDA_SUCCESS);
    EXPECT(cuEventCreate(&b, 2), CUDA_SUCCESS);  // CU_EVENT_DISABLE_TIMING
    float ms;
    EXPECT(cuEventRecord(a, nullptr), CUDA_SUCCESS);
    EXPECT(cuEventRecord(b, nullptr), CUDA_SUCCESS);
    EXPECT(cuEventElapsedTime_v2(&ms, a, b), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuEventElapsedTime_v2(&ms, a, a), CUDA_SUCCESS);
    EXPECT(cuEventQuery(a), CUDA_SUCCESS);
    EXPECT(cuEventDestroy_v2(a), CUDA_SUCCESS);
    EXPECT(cuEventDestroy_v2(a), CUDA_ERROR_INVALID_HANDLE);

    const char* s = nullptr;
    EXPECT(cuGetErrorName(CUDA_ERROR_INVALID_HANDLE, &s), CUDA_SUCCESS);
    if (!s || strcmp(s, "CUDA_ERROR_INVALID_HANDLE") != 0) fprintf(stderr, "error name %s\n", s), bad = 1;
    EXPECT(cuGetErrorString(12345, &s), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuDevicePrimaryCtxRelease_v2(0), CUDA_SUCCESS);
    EXPECT(cuMemAlloc_v2(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
    return bad;
}
