// engine/cuda/runtime.cu: device discovery and a self-test kernel.
// The kernel calls the same RETORT_HD functors (engine/math/unary.h) that the CPU loops call, so
// CPU tests cover its arithmetic; only this launch glue is GPU-only.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <vector>

#include <mutex>

#include "engine/cuda/launch.cuh"
#include "engine/cuda/runtime.h"
#include "engine/error.h"
#include "engine/math/unary.h"

namespace retort::cuda {

namespace {

__global__ void gelu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = math::GeluErf{}.forward(x[i]);
}
}  // namespace

bool built() { return true; }

cudaStream_t stream_for(int device, cudaStream_t (&streams)[kMaxDevices], unsigned flags) {
    static std::mutex mutex;
    require(device >= 0 && device < kMaxDevices, "GPU index ", device, " is out of range");
    std::lock_guard<std::mutex> lock(mutex);
    if (streams[device] == nullptr) {
        DeviceGuard guard(device);
        check(cudaStreamCreateWithFlags(&streams[device], flags), "cudaStreamCreateWithFlags");
    }
    return streams[device];
}

cudaStream_t current_stream(int device) {
    // A blocking stream: copy_bytes's cudaMemcpy on the legacy default stream waits for the
    // kernels queued here, and they for it.
    static cudaStream_t streams[kMaxDevices] = {};
    return stream_for(device, streams, cudaStreamDefault);
}

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;  // no driver or no device: no GPU
    return n;
}

std::string device_name(int index) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
    return prop.name;
}

void synchronize(Device device) {
    if (!device.is_cuda()) return;
    DeviceGuard guard(device.index);
    check(cudaStreamSynchronize(current_stream(device.index)), "cudaStreamSynchronize");
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
    if (bytes == 0) return;
    if (dst_device.is_cpu() && src_device.is_cpu()) {
        std::memcpy(dst, src, bytes);
        return;
    }
    const cudaMemcpyKind kind = dst_device.is_cpu()   ? cudaMemcpyDeviceToHost
                                : src_device.is_cpu() ? cudaMemcpyHostToDevice
                                                      : cudaMemcpyDeviceToDevice;
    // cudaMemcpy waits for the copy (and for earlier work on the default stream): the data is
    // there when it returns, which is what the CPU side expects.
    check(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy");
}

double self_test() {
    require(device_count() > 0, "cuda::self_test: no CUDA device is visible");
    const int n = 1000;
    std::vector<float> x(n), y(n);
    for (int i = 0; i < n; ++i) x[i] = -5.0f + 10.0f * i / n;
    float *dx = nullptr, *dy = nullptr;
    check(cudaMalloc(&dx, n * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&dy, n * sizeof(float)), "cudaMalloc");
    check(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
    gelu_kernel<<<(n + 255) / 256, 256>>>(dx, dy, n);
    check(cudaGetLastError(), "gelu_kernel launch");
    check(cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    cudaFree(dx);
    cudaFree(dy);
    double worst = 0;
    for (int i = 0; i < n; ++i)
        worst = std::fmax(worst, std::fabs(y[i] - math::GeluErf{}.forward(x[i])));
    return worst;
}

}  // namespace retort::cuda
