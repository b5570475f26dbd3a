// engine/math/vector_norm.h: the two elementwise steps of the backward of ||x||_p along a dim
// (ops/loss.cpp), written out because the generic formula sign(x) |x|^(p-1) / ||x||^(p-1) is 0/0
// at a zero vector, where PyTorch defines the gradient as 0:
//   NormScale: s = g / ||x||^(p-1) per line (0 where the norm is 0)
//   NormGrad:  dx_i = sign(x_i) |x_i|^(p-1) * s (0 where x_i is 0)
#pragma once

#include <cmath>

#include "engine/math/hd.h"

namespace retort::math {

struct NormScale {
    double p;
    template <class T> RETORT_HD T apply(T g, T norm) const {
        return norm == T(0) ? T(0) : g / std::pow(norm, static_cast<T>(p - 1));
    }
};

struct NormGrad {
    double p;
    template <class T> RETORT_HD T apply(T v, T scale) const {
        if (v == T(0)) return T(0);
        if (p == 2.0) return v * scale;
        const T magnitude = std::pow(std::abs(v), static_cast<T>(p - 1));
        return (v > T(0) ? magnitude : -magnitude) * scale;
    }
};

}  // namespace retort::math
