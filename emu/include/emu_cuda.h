// The part of the CUDA driver API that the emulated GPU implements (libcuda.so.1), with the ABI of
// CUDA 13's cuda.h: handles are pointers, enums are ints with the driver's values.
#pragma once
#include <cstddef>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct EmuCtx* CUcontext;
typedef struct EmuModule* CUmodule;
namespace emu {
struct Kernel;
}
typedef const emu::Kernel* CUfunction;
typedef struct EmuStream* CUstream;
typedef struct EmuEvent* CUevent;
typedef struct EmuPool* CUmemoryPool;
typedef struct EmuUuid {
    char bytes[16];
} CUuuid;

enum : CUresult {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_NOT_SUPPORTED = 801,
};

// The CUdevice_attribute values the emulator answers (others are CUDA_ERROR_INVALID_VALUE).
enum {
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
};

// CUmemPool_attribute values.
enum {
    CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4,
};

#define CU_API extern "C" __attribute__((visibility("default")))

CU_API CUresult cuInit(unsigned flags);
CU_API CUresult cuDriverGetVersion(int* version);
CU_API CUresult cuGetErrorName(CUresult e, const char** s);
CU_API CUresult cuGetErrorString(CUresult e, const char** s);

CU_API CUresult cuDeviceGet(CUdevice* d, int ordinal);
CU_API CUresult cuDeviceGetCount(int* n);
CU_API CUresult cuDeviceGetName(char* name, int len, CUdevice d);
CU_API CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice d);
CU_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d);
CU_API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d);
CU_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice d);
CU_API CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice d);
CU_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d);

CU_API CUresult cuCtxGetCurrent(CUcontext* ctx);
CU_API CUresult cuCtxSetCurrent(CUcontext ctx);
CU_API CUresult cuCtxSynchronize();

CU_API CUresult cuStreamCreate(CUstream* s, unsigned flags);
CU_API CUresult cuStreamDestroy_v2(CUstream s);
CU_API CUresult cuStreamSynchronize(CUstream s);
CU_API CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned flags);

CU_API CUresult cuEventCreate(CUevent* e, unsigned flags);
CU_API CUresult cuEventRecord(CUevent e, CUstream s);
CU_API CUresult cuEventSynchronize(CUevent e);
CU_API CUresult cuEventQuery(CUevent e);
CU_API CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end);
CU_API CUresult cuEventDestroy_v2(CUevent e);

CU_API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes);
CU_API CUresult cuMemFree_v2(CUdeviceptr p);
CU_API CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, CUstream s);
CU_API CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s);
CU_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, int attr, void* value);
CU_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, int attr, void* value);
CU_API CUresult cuMemGetInfo_v2(size_t* free, size_t* total);
CU_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes);
CU_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes);
CU_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
CU_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream s);
CU_API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream s);
CU_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
CU_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n);
CU_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s);

CU_API CUresult cuModuleLoadData(CUmodule* m, const void* image);
CU_API CUresult cuModuleLoadDataEx(CUmodule* m, const void* image, unsigned n_options, int* options, void** values);
CU_API CUresult cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name);
CU_API CUresult cuModuleUnload(CUmodule m);
CU_API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shared_bytes, CUstream s, void** params, void** extra);

// For the cuBLAS and cuDNN stand-ins: 1 if [ptr, ptr + bytes) lies inside one live allocation.
CU_API int emu_check_range(unsigned long long ptr, size_t bytes);
