// engine/cuda/indexing.cu: the GPU instantiations of the indexing kernels of
// engine/kernels/indexing.h (index_select and its backward, gather, scatter_add, pad).
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/indexing.h"

namespace retort::cuda {

#define RETORT_LAUNCH_INDEXED(T, I)                                                   \
    template void launch(Device, std::int64_t, const kernels::IndexSelect<T, I>&);   \
    template void launch(Device, std::int64_t, const kernels::IndexAdd<T, I>&);      \
    template void launch(Device, std::int64_t, const kernels::Gather<T, I>&);        \
    template void launch(Device, std::int64_t, const kernels::ScatterAdd<T, I>&);
#define RETORT_LAUNCH_INDEXING(T)                                                     \
    RETORT_LAUNCH_INDEXED(T, std::int32_t)                                           \
    RETORT_LAUNCH_INDEXED(T, std::int64_t)                                           \
    template void launch(Device, std::int64_t, const kernels::Pad<T>&);                \
    template void launch(Device, std::int64_t, const kernels::PadBackward<T>&);
RETORT_LAUNCH_INDEXING(float)
RETORT_LAUNCH_INDEXING(double)
RETORT_LAUNCH_INDEXING(std::int32_t)
RETORT_LAUNCH_INDEXING(std::int64_t)

}  // namespace retort::cuda
