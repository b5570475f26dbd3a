// engine/cuda/device_memory.h: the caching allocators of the CUDA backend: one per GPU, drawing on
// cudaMalloc, and one for pinned host buffers (cudaHostAlloc), which the data loader's batches use
// so that copies to the GPU run asynchronously. Created on first use and kept until exit.
//
// Declared in every build: without the CUDA backend, or without a GPU, each is a clear Error.
#pragma once

#include "engine/cuda/caching_allocator.h"

namespace retort::cuda {

CachingAllocator& device_allocator(int device);
CachingAllocator& pinned_host_allocator();

}  // namespace retort::cuda
