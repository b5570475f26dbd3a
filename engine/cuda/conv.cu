// engine/cuda/conv.cu: the GPU instantiations of the convolution kernels of engine/kernels/conv.h.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/conv.h"

namespace retort::cuda {

#define RETORT_LAUNCH_CONV(T)                                                             \
    template void launch(Device, std::int64_t, const kernels::Im2Col<T>&);               \
    template void launch(Device, std::int64_t, const kernels::Col2Im<T>&);               \
    template void launch(Device, std::int64_t, const kernels::DepthwiseForward<T>&);     \
    template void launch(Device, std::int64_t, const kernels::DepthwiseGradInput<T>&);   \
    template void launch(Device, std::int64_t, const kernels::DepthwiseGradWeight<T>&);
RETORT_LAUNCH_CONV(float)
RETORT_LAUNCH_CONV(double)

}  // namespace retort::cuda
