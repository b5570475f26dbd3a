// engine/storage.cpp: allocation of CPU buffers (64-byte aligned). Device memory is not allocated
// here yet: a CUDA storage is refused with a clear error until the CUDA backend provides it.
#include "engine/storage.h"

#include <cstdlib>
#include <new>

#include "engine/error.h"

namespace retort {

namespace {
constexpr std::size_t kAlignment = 64;
}

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
    require(device.is_cpu(), "cannot allocate on ", device.str(),
            ": this build has no CUDA allocator yet");
    // aligned_alloc wants a size that is a multiple of the alignment (and > 0).
    std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    if (rounded == 0) rounded = kAlignment;
    data_ = std::aligned_alloc(kAlignment, rounded);
    if (!data_) fail("out of memory: could not allocate ", bytes, " bytes on the CPU");
}

Storage::~Storage() { std::free(data_); }

}  // namespace retort
