// engine/cuda/normalization.cu: the GPU instantiations of the batch norm and layer norm kernels
// of engine/kernels/normalization.h.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/normalization.h"

namespace retort::cuda {

#define RETORT_LAUNCH_NORMALIZATION(T)                                                   \
    template void launch(Device, std::int64_t, const kernels::ChannelMoments<T>&);     \
    template void launch(Device, std::int64_t, const kernels::BatchNormChannel<T>&);   \
    template void launch(Device, std::int64_t, const kernels::ChannelAffine<T>&);      \
    template void launch(Device, std::int64_t, const kernels::ChannelGradSums<T>&);    \
    template void launch(Device, std::int64_t, const kernels::BatchNormInputGrad<T>&); \
    template void launch(Device, std::int64_t, const kernels::RowMoments<T>&);         \
    template void launch(Device, std::int64_t, const kernels::LayerNormApply<T>&);     \
    template void launch(Device, std::int64_t, const kernels::LayerNormInputGrad<T>&); \
    template void launch(Device, std::int64_t, const kernels::LayerNormParamGrad<T>&);
RETORT_LAUNCH_NORMALIZATION(float)
RETORT_LAUNCH_NORMALIZATION(double)

}  // namespace retort::cuda
