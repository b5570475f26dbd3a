// engine/kernels/broadcast_index.h: where element i of a broadcast result reads each input.
//
// The CPU loops walk a broadcast in rows (engine/cpu/broadcast.h); a GPU thread instead starts
// from its flat output index i and needs each input's offset directly. BroadcastIndex holds the
// merged plan of cpu::plan_broadcast (adjacent dims that step alike are fused, so a bias added to
// a (B, C, H, W) map has rank 2 or 3 here, whatever the tensor's rank) as fixed-size arrays that
// can be copied into a kernel's arguments.
#pragma once

#include <array>
#include <cstdint>

#include "engine/cpu/broadcast.h"
#include "engine/error.h"
#include "engine/math/hd.h"
#include "engine/shape.h"

namespace retort::kernels {

// The most dims a kernel argument can describe after merging. Ten dims that all broadcast
// differently would be needed to exceed it; make_broadcast_index says so if it ever happens.
constexpr int kMaxKernelDims = 8;

template <int N>
struct BroadcastIndex {
    int rank = 0;
    std::int64_t sizes[kMaxKernelDims] = {};
    std::int64_t strides[N][kMaxKernelDims] = {};  // per input, in its elements (0 = repeated)

    // offsets[k] = where input k holds the value for output element i.
    RETORT_HD void offsets(std::int64_t i, std::int64_t* offsets) const {
        for (int k = 0; k < N; ++k) offsets[k] = 0;
        for (int d = rank - 1; d >= 0; --d) {
            const std::int64_t at = i % sizes[d];
            i /= sizes[d];
            for (int k = 0; k < N; ++k) offsets[k] += at * strides[k][d];
        }
    }
};

template <int N>
BroadcastIndex<N> make_broadcast_index(const Shape& out, const std::array<const Shape*, N>& inputs) {
    const cpu::BroadcastPlan<N> plan = cpu::plan_broadcast<N>(out, inputs);
    const int rank = static_cast<int>(plan.sizes.size());
    require(rank <= kMaxKernelDims, "broadcast of ", rank, " independent dims (output shape ",
            shape_str(out), "): GPU kernels take at most ", kMaxKernelDims);
    BroadcastIndex<N> index;
    index.rank = rank;
    for (int d = 0; d < rank; ++d) {
        index.sizes[d] = plan.sizes[d];
        for (int k = 0; k < N; ++k) index.strides[k][d] = plan.strides[k][d];
    }
    return index;
}

}  // namespace retort::kernels
