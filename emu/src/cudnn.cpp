// cuDNN stand-in: the handle, the version, and the tensor, filter and convolution descriptors.
#include <climits>

#include "blas_dnn.h"

namespace {

constexpr size_t CUDNN_VERSION = 92100;   // 9.21.0: the cuDNN release cudarc's bindings follow
constexpr size_t CUDART_VERSION = 13000;  // CUDA 13.0

bool valid_dtype(int t) { return t >= 0 && t <= CUDNN_DATA_TYPE_LAST; }

bool live(const cudnnTensorStruct* d) { return d && d->magic == TENSOR_MAGIC; }
bool live(const cudnnFilterStruct* d) { return d && d->magic == FILTER_MAGIC; }
bool live(const cudnnConvolutionStruct* d) { return d && d->magic == CONV_MAGIC; }

// Checks dims (all positive, at most 2^31-1 elements in all) as cuDNN's setters do.
int check_dims(int nb, const int* dim) {
    long long total = 1;
    for (int i = 0; i < nb; ++i) {
        if (dim[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
        total *= dim[i];
        if (total > INT_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
    }
    return CUDNN_STATUS_SUCCESS;
}

int set_tensor(cudnnTensorStruct* d, int dtype, int nb, const int* dim, const int* stride) {
    if (!live(d) || !valid_dtype(dtype) || nb < 3 || nb > CUDNN_DIM_MAX || !dim || !stride)
        return CUDNN_STATUS_BAD_PARAM;
    if (int st = check_dims(nb, dim)) return st;
    for (int i = 0; i < nb; ++i)
        if (stride[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
    d->dtype = dtype;
    d->nb = nb;
    for (int i = 0; i < nb; ++i) d->dim[i] = dim[i], d->stride[i] = stride[i];
    d->set = true;
    return CUDNN_STATUS_SUCCESS;
}

int set_filter(cudnnFilterStruct* d, int dtype, int format, int nb, const int* dim) {
    if (!live(d) || !valid_dtype(dtype) || nb < 3 || nb > CUDNN_DIM_MAX || !dim) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC && format != CUDNN_TENSOR_NCHW_VECT_C)
        return CUDNN_STATUS_BAD_PARAM;
    if (int st = check_dims(nb, dim)) return st;
    d->dtype = dtype;
    d->format = format;
    d->nb = nb;
    for (int i = 0; i < nb; ++i) d->dim[i] = dim[i];
    d->set = true;
    return CUDNN_STATUS_SUCCESS;
}

int set_conv(cudnnConvolutionStruct* d, int nb, const int* pad, const int* stride, const int* dil, int mode,
             int compute) {
    if (!live(d) || nb < 1 || nb > CUDNN_DIM_MAX - 2 || !pad || !stride || !dil) return CUDNN_STATUS_BAD_PARAM;
    if ((mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) || !valid_dtype(compute))
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < nb; ++i)
        if (pad[i] < 0 || stride[i] <= 0 || dil[i] <= 0) return CUDNN_STATUS_BAD_PARAM;
    d->nb = nb;
    for (int i = 0; i < nb; ++i) d->pad[i] = pad[i], d->stride[i] = stride[i], d->dil[i] = dil[i];
    d->mode = mode;
    d->compute = compute;
    d->set = true;
    return CUDNN_STATUS_SUCCESS;
}

template <class T>
int destroy(T* d, uint32_t magic) {
    if (!d) return CUDNN_STATUS_SUCCESS;
    if (d->magic != magic) return CUDNN_STATUS_BAD_PARAM;
    d->magic = 0;
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

}  // namespace

EMU_API size_t cudnnGetVersion() { return CUDNN_VERSION; }
EMU_API size_t cudnnGetCudartVersion() { return CUDART_VERSION; }

EMU_API int cudnnCreate(cudnnContext** handle) {
    if (!handle) return CUDNN_STATUS_BAD_PARAM;
    *handle = new cudnnContext{CUDNN_MAGIC, nullptr};
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnDestroy(cudnnContext* handle) { return destroy(handle, CUDNN_MAGIC); }

// Work runs synchronously on the calling thread, so the stream is only remembered.
EMU_API int cudnnSetStream(cudnnContext* handle, void* stream) {
    if (!handle || handle->magic != CUDNN_MAGIC) return CUDNN_STATUS_BAD_PARAM;
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnGetStream(cudnnContext* handle, void** stream) {
    if (!handle || handle->magic != CUDNN_MAGIC || !stream) return CUDNN_STATUS_BAD_PARAM;
    *stream = handle->stream;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnCreateTensorDescriptor(cudnnTensorStruct** desc) {
    if (!desc) return CUDNN_STATUS_BAD_PARAM;
    *desc = new cudnnTensorStruct{};
    (*desc)->magic = TENSOR_MAGIC;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnDestroyTensorDescriptor(cudnnTensorStruct* desc) { return destroy(desc, TENSOR_MAGIC); }

EMU_API int cudnnSetTensor4dDescriptor(cudnnTensorStruct* desc, int format, int dtype, int n, int c, int h, int w) {
    // NCHW_VECT_C packs vectors of int8 channels: no float convolution uses it
    if (format == CUDNN_TENSOR_NCHW_VECT_C) return CUDNN_STATUS_NOT_SUPPORTED;
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) return CUDNN_STATUS_BAD_PARAM;
    const int dim[4] = {n, c, h, w};
    if (int st = check_dims(4, dim)) return st;  // before the strides: their products must not overflow
    const int nchw[4] = {c * h * w, h * w, w, 1}, nhwc[4] = {h * w * c, 1, w * c, c};
    return set_tensor(desc, dtype, 4, dim, format == CUDNN_TENSOR_NCHW ? nchw : nhwc);
}

EMU_API int cudnnSetTensor4dDescriptorEx(cudnnTensorStruct* desc, int dtype, int n, int c, int h, int w, int ns,
                                         int cs, int hs, int ws) {
    const int dim[4] = {n, c, h, w}, stride[4] = {ns, cs, hs, ws};
    return set_tensor(desc, dtype, 4, dim, stride);
}

EMU_API int cudnnSetTensorNdDescriptor(cudnnTensorStruct* desc, int dtype, int nb, const int* dim, const int* stride) {
    return set_tensor(desc, dtype, nb, dim, stride);
}

EMU_API int cudnnCreateFilterDescriptor(cudnnFilterStruct** desc) {
    if (!desc) return CUDNN_STATUS_BAD_PARAM;
    *desc = new cudnnFilterStruct{};
    (*desc)->magic = FILTER_MAGIC;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnDestroyFilterDescriptor(cudnnFilterStruct* desc) { return destroy(desc, FILTER_MAGIC); }

EMU_API int cudnnSetFilter4dDescriptor(cudnnFilterStruct* desc, int dtype, int format, int k, int c, int h, int w) {
    const int dim[4] = {k, c, h, w};
    return set_filter(desc, dtype, format, 4, dim);
}

EMU_API int cudnnSetFilterNdDescriptor(cudnnFilterStruct* desc, int dtype, int format, int nb, const int* dim) {
    return set_filter(desc, dtype, format, nb, dim);
}

EMU_API int cudnnCreateConvolutionDescriptor(cudnnConvolutionStruct** desc) {
    if (!desc) return CUDNN_STATUS_BAD_PARAM;
    *desc = new cudnnConvolutionStruct{};
    (*desc)->magic = CONV_MAGIC;
    (*desc)->math = CUDNN_DEFAULT_MATH;
    (*desc)->groups = 1;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnDestroyConvolutionDescriptor(cudnnConvolutionStruct* desc) { return destroy(desc, CONV_MAGIC); }

EMU_API int cudnnSetConvolution2dDescriptor(cudnnConvolutionStruct* desc, int pad_h, int pad_w, int u, int v,
                                            int dilation_h, int dilation_w, int mode, int compute) {
    const int pad[2] = {pad_h, pad_w}, stride[2] = {u, v}, dil[2] = {dilation_h, dilation_w};
    return set_conv(desc, 2, pad, stride, dil, mode, compute);
}

EMU_API int cudnnSetConvolutionNdDescriptor(cudnnConvolutionStruct* desc, int nb, const int* pad, const int* stride,
                                            const int* dil, int mode, int compute) {
    return set_conv(desc, nb, pad, stride, dil, mode, compute);
}

EMU_API int cudnnSetConvolutionGroupCount(cudnnConvolutionStruct* desc, int groups) {
    if (!live(desc) || groups < 1) return CUDNN_STATUS_BAD_PARAM;
    desc->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnGetConvolutionGroupCount(cudnnConvolutionStruct* desc, int* groups) {
    if (!live(desc) || !groups) return CUDNN_STATUS_BAD_PARAM;
    *groups = desc->groups;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnSetConvolutionMathType(cudnnConvolutionStruct* desc, int math) {
    if (!live(desc) || math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH) return CUDNN_STATUS_BAD_PARAM;
    desc->math = math;
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnGetConvolutionMathType(cudnnConvolutionStruct* desc, int* math) {
    if (!live(desc) || !math) return CUDNN_STATUS_BAD_PARAM;
    *math = desc->math;
    return CUDNN_STATUS_SUCCESS;
}

// The output dims of x convolved by w: [N, K, then per spatial dim 1 + (in + 2 pad - span) / stride].
EMU_API int cudnnGetConvolutionNdForwardOutputDim(cudnnConvolutionStruct* conv, cudnnTensorStruct* x,
                                                  cudnnFilterStruct* w, int nb, int* out) {
    if (!live(conv) || !live(x) || !live(w) || !conv->set || !x->set || !w->set || !out) return CUDNN_STATUS_BAD_PARAM;
    if (nb != x->nb || w->nb != x->nb || conv->nb + 2 != x->nb) return CUDNN_STATUS_BAD_PARAM;
    if (x->dim[1] != w->dim[1] * conv->groups || w->dim[0] % conv->groups) return CUDNN_STATUS_BAD_PARAM;
    int dims[CUDNN_DIM_MAX] = {x->dim[0], w->dim[0]};
    for (int i = 0; i < conv->nb; ++i) {
        const int span = (w->dim[2 + i] - 1) * conv->dil[i] + 1, room = x->dim[2 + i] + 2 * conv->pad[i];
        if (span > room) return CUDNN_STATUS_BAD_PARAM;
        dims[2 + i] = 1 + (room - span) / conv->stride[i];
    }
    for (int i = 0; i < nb; ++i) out[i] = dims[i];
    return CUDNN_STATUS_SUCCESS;
}

EMU_API int cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionStruct* conv, cudnnTensorStruct* x,
                                                  cudnnFilterStruct* w, int* n, int* c, int* h, int* wd) {
    if (!n || !c || !h || !wd) return CUDNN_STATUS_BAD_PARAM;
    int out[4];
    if (int st = cudnnGetConvolutionNdForwardOutputDim(conv, x, w, 4, out)) return st;
    *n = out[0], *c = out[1], *h = out[2], *wd = out[3];
    return CUDNN_STATUS_SUCCESS;
}
