// engine/cuda/reduce.cu: the GPU instantiations of the reduction and softmax kernels of
// engine/kernels/reduce.h and engine/kernels/softmax.h.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/reduce.h"
#include "engine/kernels/softmax.h"

namespace retort::cuda {

using std::int32_t;
using std::int64_t;

#define RETORT_LAUNCH_REDUCE(T)                                                       \
    template void launch(Device, int64_t, const kernels::SumChunks<T>&);             \
    template void launch(Device, int64_t, const kernels::SumPartials<T>&);           \
    template void launch(Device, int64_t, const kernels::ExtremeAlong<T>&);          \
    template void launch(Device, int64_t, const kernels::RouteToIndices<T>&);
RETORT_LAUNCH_REDUCE(float)
RETORT_LAUNCH_REDUCE(double)
RETORT_LAUNCH_REDUCE(int32_t)
RETORT_LAUNCH_REDUCE(int64_t)

#define RETORT_LAUNCH_SOFTMAX(T)                                                      \
    template void launch(Device, int64_t, const kernels::SoftmaxLine<T>&);           \
    template void launch(Device, int64_t, const kernels::SoftmaxBackwardLine<T>&);
RETORT_LAUNCH_SOFTMAX(float)
RETORT_LAUNCH_SOFTMAX(double)

}  // namespace retort::cuda
