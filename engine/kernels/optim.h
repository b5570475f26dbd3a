// engine/kernels/optim.h: the per-element updates of SGD and AdamW (formulas in optim/sgd.h and
// optim/adamw.h). The CPU optimizers run these structs through for_each_cpu and the CUDA backend
// launches them, so one update rule serves both, fused into a single pass over the parameter.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

template <class T>
struct SgdStep {
    T* p;
    const T* g;
    T* buf;  // null without momentum
    T weight_decay, momentum, keep, neg_lr;  // keep = 1 - dampening
    bool decay, use_momentum, first, nesterov;
    RETORT_HD void operator()(std::int64_t i) const {
        T d = g[i];
        if (decay) d = d + weight_decay * p[i];
        if (use_momentum) {
            buf[i] = first ? d : buf[i] * momentum + keep * d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        p[i] = p[i] + neg_lr * d;
    }
};

// In PyTorch's order of operations (decay, moments, denominator, step); the bias corrections and
// the step size arrive precomputed in double and rounded to T, as PyTorch does.
template <class T>
struct AdamWStep {
    T* p;
    const T* g;
    T* m;
    T* v;
    T* vmax;  // null unless amsgrad
    T decay, beta1, one_minus_beta1, beta2, one_minus_beta2, correction2_sqrt, eps, neg_step_size;
    RETORT_HD void operator()(std::int64_t i) const {
        p[i] = p[i] * decay;
        m[i] = m[i] * beta1 + one_minus_beta1 * g[i];
        v[i] = v[i] * beta2 + one_minus_beta2 * g[i] * g[i];
        T second = v[i];
        if (vmax != nullptr) {
            vmax[i] = vmax[i] != vmax[i] || vmax[i] > v[i] ? vmax[i] : v[i];
            second = vmax[i];
        }
        const T denom = std::sqrt(second) / correction2_sqrt + eps;
        p[i] = p[i] + neg_step_size * m[i] / denom;
    }
};

}  // namespace retort::kernels
