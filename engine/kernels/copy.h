// engine/kernels/copy.h: kernels that move elements without arithmetic: a permuted copy
// (permute, transpose) and a copy of slices along one dim (concat, narrow, split, stack).
#pragma once

#include <cstdint>

#include "engine/kernels/broadcast_index.h"
#include "engine/math/hd.h"
#include "engine/shape.h"

namespace retort::kernels {

// out[i] = in[offset of i in the input]: the output is contiguous over `sizes` (merged dims, at
// most kMaxKernelDims), and one step along output dim d moves in_strides[d] in the input.
template <class T>
struct PermuteCopy {
    const T* in;
    T* out;
    int rank;
    std::int64_t sizes[kMaxKernelDims];
    std::int64_t in_strides[kMaxKernelDims];
    RETORT_HD void operator()(std::int64_t i) const {
        std::int64_t rest = i, at = 0;
        for (int d = rank - 1; d >= 0; --d) {
            at += rest % sizes[d] * in_strides[d];
            rest /= sizes[d];
        }
        out[i] = in[at];
    }
};

// Slices [src_start, src_start + length) of src along a dim, written to dst at dst_start. Both
// are viewed as [outer][size][inner] around that dim (their outer and inner agree); element j
// runs over the [outer][length][inner] block that moves.
template <class T>
struct SliceCopy {
    const T* src;
    T* dst;
    DimSplit from, to;
    std::int64_t src_start, dst_start, length;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t i = j % from.inner;
        const std::int64_t r = j / from.inner % length;
        const std::int64_t o = j / (from.inner * length);
        dst[(o * to.size + dst_start + r) * to.inner + i] =
            src[(o * from.size + src_start + r) * from.inner + i];
    }
};

}  // namespace retort::kernels
