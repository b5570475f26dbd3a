// engine/kernels/reduce.h: reductions along one dim, the tensor viewed as [outer][size][inner]
// (DimSplit, engine/shape.h).
//
// Sums are computed in two launches that reproduce cpu::sum_along's order of additions exactly
// (engine/cpu/reduce.h): SumChunks computes, for every output and every chunk of kReduceChunk
// elements along the reduced dim, the chunk's sequential sum; SumPartials adds each output's
// chunk sums in chunk order, starting from 0. So a GPU sum has the CPU's bits, whatever the
// number of threads on either side, and a long reduction still spreads over outputs x chunks.
#pragma once

#include <cstdint>

#include "engine/cpu/reduce.h"
#include "engine/math/hd.h"
#include "engine/shape.h"

namespace retort::kernels {

RETORT_HD inline std::int64_t reduce_chunks(std::int64_t size) {
    return (size + cpu::kReduceChunk - 1) / cpu::kReduceChunk;
}

// partials[out * chunks + c] = sum of x[o][r][i] for r in chunk c, out = o * inner + i.
template <class T>
struct SumChunks {
    const T* x;
    T* partials;
    DimSplit split;
    std::int64_t chunks;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t out = j / chunks, c = j % chunks;
        const std::int64_t o = out / split.inner, i = out % split.inner;
        const T* line = x + o * split.size * split.inner + i;
        const std::int64_t r0 = c * cpu::kReduceChunk;
        const std::int64_t r1 = r0 + cpu::kReduceChunk < split.size ? r0 + cpu::kReduceChunk
                                                                    : split.size;
        T partial = T(0);
        for (std::int64_t r = r0; r < r1; ++r) partial += line[r * split.inner];
        partials[j] = partial;
    }
};

// out[k] = partials[k * chunks + 0] + ... + partials[k * chunks + chunks - 1], in that order.
template <class T>
struct SumPartials {
    const T* partials;
    T* out;
    std::int64_t chunks;
    RETORT_HD void operator()(std::int64_t k) const {
        T total = T(0);
        for (std::int64_t c = 0; c < chunks; ++c) total += partials[k * chunks + c];
        out[k] = total;
    }
};

// Does v replace the current best? The first NaN wins and stays (v != v only for NaN); otherwise
// only a strictly better value replaces, so the first index wins on ties (torch.max(dim)).
template <class T>
RETORT_HD bool replaces(T v, T best, bool want_max) {
    if (best != best) return false;
    if (v != v) return true;
    return want_max ? v > best : v < best;
}

// values[out], indices[out] = the extreme of x[o][:][i] and where it is, out = o * inner + i.
template <class T>
struct ExtremeAlong {
    const T* x;
    T* values;
    std::int64_t* indices;
    DimSplit split;
    bool want_max;
    RETORT_HD void operator()(std::int64_t out) const {
        const std::int64_t o = out / split.inner, i = out % split.inner;
        const T* line = x + o * split.size * split.inner + i;
        T best = line[0];
        std::int64_t at = 0;
        for (std::int64_t r = 1; r < split.size; ++r) {
            if (replaces(line[r * split.inner], best, want_max)) {
                best = line[r * split.inner];
                at = r;
            }
        }
        values[out] = best;
        indices[out] = at;
    }
};

// The backward of max/min along a dim: dx[o][r][i] = g[o][i] where r is the saved index, else 0.
// One call per element of dx, so every element is written once and nothing is accumulated.
template <class T>
struct RouteToIndices {
    const T* g;
    const std::int64_t* indices;
    T* dx;
    DimSplit split;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t i = j % split.inner;
        const std::int64_t r = (j / split.inner) % split.size;
        const std::int64_t o = j / (split.inner * split.size);
        const std::int64_t out = o * split.inner + i;
        dx[j] = indices[out] == r ? g[out] : T(0);
    }
};

}  // namespace retort::kernels
