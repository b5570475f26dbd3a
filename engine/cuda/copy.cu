// engine/cuda/copy.cu: the GPU instantiations of the copy kernels of engine/kernels/copy.h.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/copy.h"

namespace retort::cuda {

#define RETORT_LAUNCH_COPY(T)                                                       \
    template void launch(Device, std::int64_t, const kernels::PermuteCopy<T>&);    \
    template void launch(Device, std::int64_t, const kernels::SliceCopy<T>&);
RETORT_LAUNCH_COPY(float)
RETORT_LAUNCH_COPY(double)
RETORT_LAUNCH_COPY(std::int32_t)
RETORT_LAUNCH_COPY(std::int64_t)

}  // namespace retort::cuda
