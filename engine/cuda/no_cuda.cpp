// engine/cuda/no_cuda.cpp: the CUDA runtime entry points for a build without the CUDA backend.
#ifndef RETORT_HAVE_CUDA

#include <cstring>

#include "engine/cuda/blas.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/cudnn_norm.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/fft.h"
#include "engine/cuda/launch.h"
#include "engine/cuda/runtime.h"
#include "engine/cuda/upload.h"
#include "engine/error.h"

namespace retort::cuda {

void no_backend() {
    fail("this build of retort has no CUDA backend (RETORT_CUDA=OFF or RETORT_MINIMAL=ON, or no "
         "CUDA toolkit when it was configured)");
}

bool built() { return false; }
int device_count() { return 0; }
std::string device_name(int) { no_backend(); }
double self_test() { no_backend(); }
CachingAllocator& device_allocator(int) { no_backend(); }
CachingAllocator& pinned_host_allocator() { no_backend(); }

void gemm(Device, bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
          std::int64_t, const float*, std::int64_t, float, float*, std::int64_t) {
    no_backend();
}
void gemm(Device, bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
          std::int64_t, const double*, std::int64_t, double, double*, std::int64_t) {
    no_backend();
}
void gemm_batched(Device, const cpu::GemmBatch<float>&) { no_backend(); }
void gemm_batched(Device, const cpu::GemmBatch<double>&) { no_backend(); }

void synchronize(Device device) {
    if (device.is_cuda()) no_backend();
}

void fft2_complex(Device, DType, void*, std::int64_t, std::int64_t, std::int64_t, bool) {
    no_backend();
}
void fft2_real_to_half(Device, DType, const void*, void*, std::int64_t, std::int64_t,
                       std::int64_t) {
    no_backend();
}

bool cudnn_built() { return false; }
void set_use_cudnn(bool) {}
bool use_cudnn() { return false; }
void set_cudnn_depthwise(bool) {}
bool cudnn_for(bool) { return false; }
void cudnn_conv_forward(Device, DType, const CudnnConvShape&, const void*, const void*, void*,
                        double) {
    no_backend();
}
void cudnn_conv_backward_data(Device, DType, const CudnnConvShape&, const void*, const void*,
                              void*) {
    no_backend();
}
void cudnn_conv_backward_filter(Device, DType, const CudnnConvShape&, const void*, const void*,
                                void*) {
    no_backend();
}

void cudnn_batch_norm_forward_training(Device, DType, const CudnnBatchNormShape&, const void*,
                                       void*, const void*, const void*, void*, void*, double,
                                       double, void*, void*) {
    no_backend();
}
void cudnn_batch_norm_backward(Device, DType, const CudnnBatchNormShape&, const void*,
                               const void*, const void*, void*, void*, void*, double, const void*,
                               const void*) {
    no_backend();
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
    if (!dst_device.is_cpu() || !src_device.is_cpu()) no_backend();
    if (bytes > 0) std::memcpy(dst, src, bytes);
}

Upload::Upload(const Tensor&, Device) { no_backend(); }
Upload::Upload(Upload&& other) noexcept : event_(other.event_) { other.event_ = nullptr; }
Upload& Upload::operator=(Upload&& other) noexcept {
    event_ = other.event_;
    other.event_ = nullptr;
    return *this;
}
Upload::~Upload() = default;
void Upload::release() {}
Tensor Upload::take() { no_backend(); }

}  // namespace retort::cuda

#endif
