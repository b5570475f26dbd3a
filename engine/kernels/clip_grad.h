// engine/kernels/clip_grad.h: the two passes of gradient-norm clipping (optim/clip_grad.cpp),
// for both backends. GradNormChunk reduces one chunk of kGradChunk elements of a gradient, in
// double: the sum of |g|^p, or max |g| for the infinity norm (a NaN wins). The chunks' results
// are then combined on the CPU in chunk order, so the norm has the same bits on either device
// and for any thread count. (The clipping itself is kernels::Scale, engine/kernels/elementwise.h.)
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

constexpr std::int64_t kGradChunk = 16384;

template <class T>
struct GradNormChunk {
    const T* g;
    std::int64_t n;
    double p;  // INFINITY for the max norm
    double* partial;
    RETORT_HD void operator()(std::int64_t c) const {
        const bool is_max = p == INFINITY;
        const std::int64_t end = (c + 1) * kGradChunk < n ? (c + 1) * kGradChunk : n;
        double acc = 0;
        for (std::int64_t i = c * kGradChunk; i < end; ++i) {
            const double a = std::abs(static_cast<double>(g[i]));
            if (is_max) acc = a != a || a > acc ? a : acc;
            else acc += p == 1 ? a : (p == 2 ? a * a : std::pow(a, p));
        }
        partial[c] = acc;
    }
};

}  // namespace retort::kernels
