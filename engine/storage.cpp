// engine/storage.cpp: allocation of CPU buffers (64-byte aligned, through the block cache of
// engine/cpu_allocator.h). Device memory is not allocated here yet: a CUDA storage is refused
// with a clear error until the CUDA backend provides it.
#include "engine/storage.h"

#include "engine/cpu_allocator.h"
#include "engine/error.h"

namespace retort {

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
    require(device.is_cpu(), "cannot allocate on ", device.str(),
            ": this build has no CUDA allocator yet");
    data_ = cpu_allocate(bytes);
    if (!data_) fail("out of memory: could not allocate ", bytes, " bytes on the CPU");
}

Storage::~Storage() { cpu_free(data_, bytes_); }

}  // namespace retort
