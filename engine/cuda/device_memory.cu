// engine/cuda/device_memory.cu: the RawMemory of each GPU and of pinned host memory, under the
// caching allocators of engine/cuda/caching_allocator.h. Only these calls are GPU-only; the
// bookkeeping above them is tested on the CPU.
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <vector>

#include "engine/cuda/device_memory.h"
#include "engine/cuda/runtime.h"
#include "engine/error.h"

namespace retort::cuda {

namespace {

// cudaMalloc on one device. Out of memory is reported as nullptr (and the sticky error cleared),
// so that the cache can empty itself and retry; any other failure is an Error.
class DeviceRawMemory : public RawMemory {
public:
    explicit DeviceRawMemory(int device) : device_(device), name_(cat("GPU ", device, " (", device_name(device), ")")) {}
    void* allocate(std::size_t bytes) override {
        const int previous = current_device();
        set_device(device_);
        void* block = nullptr;
        const cudaError_t status = cudaMalloc(&block, bytes);
        set_device(previous);
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clears the error cudaMalloc left
            return nullptr;
        }
        if (status != cudaSuccess) fail("cudaMalloc of ", bytes, " bytes on ", name_, ": ", cudaGetErrorString(status));
        return block;
    }
    void release(void* block) override {
        const cudaError_t status = cudaFree(block);
        // At exit the driver may already be shutting down; nothing useful can be done then.
        if (status != cudaSuccess && status != cudaErrorCudartUnloading)
            fail("cudaFree on ", name_, ": ", cudaGetErrorString(status));
    }
    std::string name() const override { return name_; }

private:
    static int current_device() {
        int d = 0;
        cudaGetDevice(&d);
        return d;
    }
    static void set_device(int d) {
        const cudaError_t status = cudaSetDevice(d);
        if (status != cudaSuccess) fail("cudaSetDevice(", d, "): ", cudaGetErrorString(status));
    }
    int device_;
    std::string name_;
};

class PinnedRawMemory : public RawMemory {
public:
    void* allocate(std::size_t bytes) override {
        void* block = nullptr;
        const cudaError_t status = cudaHostAlloc(&block, bytes, cudaHostAllocDefault);
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            return nullptr;
        }
        if (status != cudaSuccess) fail("cudaHostAlloc of ", bytes, " bytes: ", cudaGetErrorString(status));
        return block;
    }
    void release(void* block) override {
        const cudaError_t status = cudaFreeHost(block);
        if (status != cudaSuccess && status != cudaErrorCudartUnloading)
            fail("cudaFreeHost: ", cudaGetErrorString(status));
    }
    std::string name() const override { return "pinned host memory"; }
};

}  // namespace

CachingAllocator& device_allocator(int device) {
    static std::mutex mutex;
    static std::vector<std::unique_ptr<CachingAllocator>> allocators;
    std::lock_guard lock(mutex);
    const int count = device_count();
    require(count > 0, "no CUDA device is visible (this machine has no GPU, or no driver)");
    require(device >= 0 && device < count, "cuda:", device, " does not exist: ", count,
            count == 1 ? " GPU is" : " GPUs are", " visible (cuda:0 to cuda:", count - 1, ")");
    if (allocators.empty()) allocators.resize(static_cast<std::size_t>(count));
    auto& slot = allocators[static_cast<std::size_t>(device)];
    if (!slot) slot = std::make_unique<CachingAllocator>(std::make_unique<DeviceRawMemory>(device));
    return *slot;
}

CachingAllocator& pinned_host_allocator() {
    require(device_count() > 0, "pinned host memory needs a CUDA device, and none is visible");
    static CachingAllocator allocator(std::make_unique<PinnedRawMemory>());
    return allocator;
}

}  // namespace retort::cuda
