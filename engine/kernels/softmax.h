// engine/kernels/softmax.h: softmax and log_softmax, one line of K values per call, the tensor
// viewed as [outer][K][inner] (line = o * inner + i). The formulas of ops/softmax.cpp: the max is
// subtracted before exp; the backward reads only the saved output y:
//   softmax:     dx = y * (dy - sum_k(dy * y))
//   log_softmax: dx = dy - exp(y) * sum_k(dy)
// One thread per line is plenty for classifier logits and attention rows (K up to a few
// thousand); the sums run in index order, so the result does not depend on the launch.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"
#include "engine/shape.h"

namespace retort::kernels {

template <class T>
struct SoftmaxLine {
    const T* x;
    T* y;
    DimSplit split;
    bool log;
    RETORT_HD void operator()(std::int64_t line) const {
        const std::int64_t o = line / split.inner, i = line % split.inner, step = split.inner;
        const T* xs = x + o * split.size * split.inner + i;
        T* ys = y + o * split.size * split.inner + i;
        T shift = -INFINITY;  // std::max's rule, as the CPU loop: a NaN input does not move it
        for (std::int64_t k = 0; k < split.size; ++k)
            shift = shift < xs[k * step] ? xs[k * step] : shift;
        T total = T(0);
        for (std::int64_t k = 0; k < split.size; ++k) total += std::exp(xs[k * step] - shift);
        if (log) {
            const T offset = shift + std::log(total);
            for (std::int64_t k = 0; k < split.size; ++k) ys[k * step] = xs[k * step] - offset;
        } else {
            const T inverse = T(1) / total;
            for (std::int64_t k = 0; k < split.size; ++k)
                ys[k * step] = std::exp(xs[k * step] - shift) * inverse;
        }
    }
};

template <class T>
struct SoftmaxBackwardLine {
    const T* y;
    const T* dy;
    T* dx;
    DimSplit split;
    bool log;
    RETORT_HD void operator()(std::int64_t line) const {
        const std::int64_t o = line / split.inner, i = line % split.inner, step = split.inner;
        const std::int64_t base = o * split.size * split.inner + i;
        T total = T(0);
        for (std::int64_t k = 0; k < split.size; ++k)
            total += log ? dy[base + k * step] : dy[base + k * step] * y[base + k * step];
        for (std::int64_t k = 0; k < split.size; ++k) {
            const std::int64_t at = base + k * step;
            dx[at] = log ? dy[at] - std::exp(y[at]) * total : y[at] * (dy[at] - total);
        }
    }
};

}  // namespace retort::kernels
