// engine/cuda/elementwise.cu: the GPU instantiations of the elementwise kernels of
// engine/kernels/elementwise.h (binary ops, where, unary ops forward and backward, fill, cast)
// and of dropout's mask (engine/kernels/random.h).
// Nothing here computes anything: the arithmetic is in the kernel structs, which the CPU tests run.
#include <cstdint>

#include "engine/cuda/launch.cuh"
#include "engine/kernels/elementwise.h"
#include "engine/kernels/random.h"
#include "engine/math/binary.h"
#include "engine/math/unary.h"

namespace retort::cuda {

using std::int32_t;
using std::int64_t;

// X(T) for every dtype, and X(A, T) for every dtype with a fixed first argument.
#define RETORT_DTYPES(X) X(float) X(double) X(int32_t) X(int64_t)
#define RETORT_DTYPES_WITH(X, A) X(A, float) X(A, double) X(A, int32_t) X(A, int64_t)

#define RETORT_LAUNCH_BINARY(Op, T) \
    template void launch(Device, int64_t, const kernels::Binary<math::Op, T>&);
#define RETORT_BINARY_ALL_DTYPES(Op) RETORT_DTYPES_WITH(RETORT_LAUNCH_BINARY, Op)
RETORT_BINARY_ALL_DTYPES(Add)
RETORT_BINARY_ALL_DTYPES(Sub)
RETORT_BINARY_ALL_DTYPES(Mul)
RETORT_BINARY_ALL_DTYPES(Div)
RETORT_BINARY_ALL_DTYPES(Pow)
RETORT_BINARY_ALL_DTYPES(Minimum)
RETORT_BINARY_ALL_DTYPES(Maximum)
RETORT_BINARY_ALL_DTYPES(Eq)
RETORT_BINARY_ALL_DTYPES(Ne)
RETORT_BINARY_ALL_DTYPES(Lt)
RETORT_BINARY_ALL_DTYPES(Le)
RETORT_BINARY_ALL_DTYPES(Gt)
RETORT_BINARY_ALL_DTYPES(Ge)

#define RETORT_LAUNCH_WHERE(C, T) \
    template void launch(Device, int64_t, const kernels::Where<C, T>&);
#define RETORT_WHERE_ALL_DTYPES(C) RETORT_DTYPES_WITH(RETORT_LAUNCH_WHERE, C)
RETORT_DTYPES(RETORT_WHERE_ALL_DTYPES)

#define RETORT_LAUNCH_CAST(S, D) template void launch(Device, int64_t, const kernels::Cast<S, D>&);
#define RETORT_CAST_ALL_DTYPES(S) RETORT_DTYPES_WITH(RETORT_LAUNCH_CAST, S)
RETORT_DTYPES(RETORT_CAST_ALL_DTYPES)

#define RETORT_LAUNCH_FILL(T)                                           \
    template void launch(Device, int64_t, const kernels::Fill<T>&);     \
    template void launch(Device, int64_t, const kernels::BroadcastCopy<T>&);
RETORT_DTYPES(RETORT_LAUNCH_FILL)

template void launch(Device, int64_t, const kernels::Scale<float>&);
template void launch(Device, int64_t, const kernels::Scale<double>&);
template void launch(Device, int64_t, const kernels::BernoulliScaled<float>&);
template void launch(Device, int64_t, const kernels::BernoulliScaled<double>&);

// unary functors act on floating-point tensors only
#define RETORT_LAUNCH_UNARY(F)                                                                    \
    template void launch(Device, int64_t, const kernels::UnaryForward<math::F, float>&);         \
    template void launch(Device, int64_t, const kernels::UnaryForward<math::F, double>&);        \
    template void launch(Device, int64_t, const kernels::UnaryBackward<math::F, float>&);        \
    template void launch(Device, int64_t, const kernels::UnaryBackward<math::F, double>&);
RETORT_FOR_EACH_UNARY(RETORT_LAUNCH_UNARY)

}  // namespace retort::cuda
