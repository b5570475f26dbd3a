// engine/cuda/pool.cu: the GPU instantiations of the pooling kernels of engine/kernels/pool.h.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/pool.h"

namespace retort::cuda {

#define RETORT_LAUNCH_POOL(T)                                                          \
    template void launch(Device, std::int64_t, const kernels::MaxPoolForward<T>&);    \
    template void launch(Device, std::int64_t, const kernels::MaxPoolBackward<T>&);   \
    template void launch(Device, std::int64_t, const kernels::AvgPoolForward<T>&);    \
    template void launch(Device, std::int64_t, const kernels::AvgPoolBackward<T>&);
RETORT_LAUNCH_POOL(float)
RETORT_LAUNCH_POOL(double)

}  // namespace retort::cuda
