// engine/cuda/interpolate.cu: the GPU instantiations of the resizing kernels of
// engine/kernels/interpolate.h.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/interpolate.h"

namespace retort::cuda {

template void launch(Device, std::int64_t, const kernels::ResizeForward<float>&);
template void launch(Device, std::int64_t, const kernels::ResizeForward<double>&);
template void launch(Device, std::int64_t, const kernels::ResizeBackward<float>&);
template void launch(Device, std::int64_t, const kernels::ResizeBackward<double>&);

}  // namespace retort::cuda
