// engine/cuda/attention.cu: the GPU instantiations of the fused attention kernels
// (engine/kernels/attention.h).
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/attention.h"

namespace retort::cuda {

#define RETORT_LAUNCH_ATTENTION(T)                                                             \
    template void launch(Device, std::int64_t, const kernels::AttentionForwardRow<T>&);       \
    template void launch(Device, std::int64_t, const kernels::AttentionBackwardQueryRow<T>&); \
    template void launch(Device, std::int64_t, const kernels::AttentionBackwardKeyRow<T>&);
RETORT_LAUNCH_ATTENTION(float)
RETORT_LAUNCH_ATTENTION(double)

}  // namespace retort::cuda
