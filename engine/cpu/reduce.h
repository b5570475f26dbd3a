// engine/cpu/reduce.h: summation along one dim, with a result that never depends on the threads.
//
// The tensor is viewed as [outer][size][inner] (see split_at_dim). Each output element is
//     sum over chunks c in order of ( sum over r in chunk c, sequentially, of x[o][r][i] )
// with chunks of kReduceChunk elements along the reduced dim. Threads split the work by outputs,
// or, for one long reduction, by chunks whose partial sums are then added in chunk order; either
// way each output is computed by the same sequence of additions.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/parallel.h"
#include "engine/shape.h"

namespace retort::cpu {

constexpr std::int64_t kReduceChunk = 1024;

template <class T>
void sum_along(const T* x, T* out, DimSplit s) {
    const std::int64_t chunks = (s.size + kReduceChunk - 1) / kReduceChunk;
    auto chunk_sum = [&](std::int64_t o, std::int64_t i, std::int64_t c) {
        const T* p = x + o * s.size * s.inner + i;
        std::int64_t r0 = c * kReduceChunk, r1 = std::min(s.size, r0 + kReduceChunk);
        T partial = T(0);
        for (std::int64_t r = r0; r < r1; ++r) partial += p[r * s.inner];
        return partial;
    };
    const std::int64_t outputs = s.outer * s.inner;
    if (outputs == 1 && chunks > 1) {  // one long reduction: chunks in parallel, then in order
        std::vector<T> partials(chunks);
        parallel_for(0, chunks, 1, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t c = b; c < e; ++c) partials[c] = chunk_sum(0, 0, c);
        });
        T total = T(0);
        for (T p : partials) total += p;
        out[0] = total;
        return;
    }
    if (s.inner == 1) {
        parallel_for(0, s.outer, grain_for(s.size), [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t o = b; o < e; ++o) {
                T total = T(0);
                for (std::int64_t c = 0; c < chunks; ++c) total += chunk_sum(o, 0, c);
                out[o] = total;
            }
        });
        return;
    }
    // inner > 1: walk r in the outer loop so the inner loop reads contiguous memory
    parallel_for(0, s.outer, grain_for(s.size * s.inner), [&](std::int64_t b, std::int64_t e) {
        std::vector<T> partial(s.inner);
        for (std::int64_t o = b; o < e; ++o) {
            T* total = out + o * s.inner;
            for (std::int64_t i = 0; i < s.inner; ++i) total[i] = T(0);
            for (std::int64_t c = 0; c < chunks; ++c) {
                std::fill(partial.begin(), partial.end(), T(0));
                std::int64_t r0 = c * kReduceChunk, r1 = std::min(s.size, r0 + kReduceChunk);
                for (std::int64_t r = r0; r < r1; ++r) {
                    const T* row = x + (o * s.size + r) * s.inner;
                    for (std::int64_t i = 0; i < s.inner; ++i) partial[i] += row[i];
                }
                for (std::int64_t i = 0; i < s.inner; ++i) total[i] += partial[i];
            }
        }
    });
}

}  // namespace retort::cpu
