// engine/storage.h: a block of memory that one or more tensors look into.
//
// Storage is shared (std::shared_ptr) between a tensor and its reshaped views; it is freed when the
// last one goes. CPU buffers are 64-byte aligned so that AVX-512 loads of a row start are aligned.
#pragma once

#include <cstddef>

#include "engine/device.h"

namespace retort {

class Storage {
public:
    // pinned: CPU memory page-locked for fast copies to a GPU (the data loader's batches when
    // training on one); it comes from cuda::pinned_host_allocator(), so it needs a GPU.
    Storage(std::size_t bytes, Device device, bool pinned = false);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() { return data_; }
    const void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    Device device() const { return device_; }
    bool pinned() const { return pinned_; }

private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    Device device_;
    bool pinned_ = false;
};

}  // namespace retort
