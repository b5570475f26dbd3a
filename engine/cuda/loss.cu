// engine/cuda/loss.cu: the GPU instantiations of the kernels the losses and norms add to the
// elementwise ones: the class-weight matrix (engine/kernels/loss.h) and the two steps of the
// vector norm's backward (engine/math/vector_norm.h).
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/elementwise.h"
#include "engine/kernels/loss.h"
#include "engine/math/vector_norm.h"

namespace retort::cuda {

#define RETORT_LAUNCH_LOSS(T)                                                                  \
    template void launch(Device, std::int64_t, const kernels::ClassWeights<T, std::int32_t>&); \
    template void launch(Device, std::int64_t, const kernels::ClassWeights<T, std::int64_t>&); \
    template void launch(Device, std::int64_t, const kernels::Binary<math::NormScale, T>&);   \
    template void launch(Device, std::int64_t, const kernels::Binary<math::NormGrad, T>&);
RETORT_LAUNCH_LOSS(float)
RETORT_LAUNCH_LOSS(double)

}  // namespace retort::cuda
