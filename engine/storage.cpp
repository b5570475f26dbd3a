// engine/storage.cpp: allocation of buffers: CPU memory 64-byte aligned through the block cache
// of engine/cpu_allocator.h, GPU memory through the device's caching allocator
// (engine/cuda/device_memory.h), which says clearly when there is no CUDA backend or no GPU.
#include "engine/storage.h"

#include "engine/cpu_allocator.h"
#include "engine/cuda/device_memory.h"
#include "engine/error.h"

namespace retort {

Storage::Storage(std::size_t bytes, Device device, bool pinned)
    : bytes_(bytes), device_(device), pinned_(pinned && device.is_cpu()) {
    if (pinned_) {
        data_ = cuda::pinned_host_allocator().allocate(bytes);
        return;
    }
    if (device.is_cuda()) {
        data_ = cuda::device_allocator(device.index).allocate(bytes);
        return;
    }
    data_ = cpu_allocate(bytes);
    if (!data_) fail("out of memory: could not allocate ", bytes, " bytes on the CPU");
}

Storage::~Storage() {
    if (pinned_) cuda::pinned_host_allocator().free(data_);
    else if (device_.is_cuda()) cuda::device_allocator(device_.index).free(data_);
    else cpu_free(data_, bytes_);
}

}  // namespace retort
