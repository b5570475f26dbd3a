// engine/cuda/optim.cu: the GPU instantiations of the fused optimizer updates of
// engine/kernels/optim.h (one pass over a parameter and its buffers per step), and of gradient
// clipping (engine/kernels/clip_grad.h).
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/clip_grad.h"
#include "engine/kernels/optim.h"

namespace retort::cuda {

template void launch(Device, std::int64_t, const kernels::SgdStep<float>&);
template void launch(Device, std::int64_t, const kernels::SgdStep<double>&);
template void launch(Device, std::int64_t, const kernels::AdamWStep<float>&);
template void launch(Device, std::int64_t, const kernels::AdamWStep<double>&);
template void launch(Device, std::int64_t, const kernels::GradNormChunk<float>&);
template void launch(Device, std::int64_t, const kernels::GradNormChunk<double>&);


}  // namespace retort::cuda
