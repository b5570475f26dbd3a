// engine/cuda/launch.cuh: the definition of cuda::launch (declared in launch.h) and the helpers
// every .cu file of the backend shares: error checks that name the failing call, a guard that
// selects a GPU for a scope, and the device's current stream. Included by .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "engine/cuda/launch.h"
#include "engine/error.h"

namespace retort::cuda {

// An Error naming the call and CUDA's code and message, for every CUDA runtime call that fails.
inline void check(cudaError_t status, const char* call) {
    if (status != cudaSuccess)
        fail("CUDA error in ", call, ": ", cudaGetErrorName(status), " (", static_cast<int>(status),
             "): ", cudaGetErrorString(status));
}

// Makes `index` the current GPU for the scope, and restores the previous one after.
class DeviceGuard {
public:
    explicit DeviceGuard(int index) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != index) check(cudaSetDevice(index), "cudaSetDevice");
    }
    ~DeviceGuard() {
        int now = previous_;
        if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = 0;
};

// The stream retort's work on `device` goes to (runtime.cu). It is a blocking stream, so the
// synchronous copies of copy_bytes (on the legacy default stream) wait for its kernels.
cudaStream_t current_stream(int device);

// One stream per GPU for a purpose (`streams` is that purpose's table), made with `flags` on first
// use and kept until exit: destroying streams at exit races with the driver's own shutdown.
constexpr int kMaxDevices = 64;
cudaStream_t stream_for(int device, cudaStream_t (&streams)[kMaxDevices], unsigned flags);

// kernel(i) for every i, grid-stride: a bounded grid covers any n, and each i is one call.
template <class Kernel>
__global__ void index_kernel(std::int64_t n, Kernel kernel) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride)
        kernel(i);
}

template <class Kernel>
void launch(Device device, std::int64_t n, const Kernel& kernel) {
    if (n <= 0) return;
    constexpr int kThreads = 256;
    // enough blocks to fill an H100 many times over; the grid-stride loop does the rest
    const std::int64_t blocks = std::min<std::int64_t>((n + kThreads - 1) / kThreads, 65536);
    DeviceGuard guard(device.index);
    index_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, current_stream(device.index)>>>(
        n, kernel);
    check(cudaGetLastError(), "kernel launch");
}

}  // namespace retort::cuda
