// engine/kernels/normalization.h: batch norm and layer norm as GPU kernels (formulas in
// ops/normalization.cpp). Statistics are kept in double, per channel or per row, and every sum
// runs in one thread in the CPU's order (batch norm: over b, each row of S values by lane_sum;
// layer norm: along the row by lane_sum; parameter gradients: down the rows), so the results
// agree with the CPU backend to rounding (nvcc fuses some multiply-adds, which the CPU build
// without -march=native does not).
//
// Batch norm, x viewed as [B][C][S]:
//   ChannelMoments       per channel: mean and biased variance (two passes)
//   BatchNormChannel     per channel: invstd, the folded scale and shift, the running update
//   ChannelAffine        per element: y = x * scale[c] + shift[c]
//   ChannelGradSums      per channel: sum(dy) and sum(dy * xhat)
//   BatchNormInputGrad   per element: dx
// Layer norm, x viewed as [M][N]:
//   RowMoments           per row: mean and invstd
//   LayerNormApply       per element: y = xhat * w + b
//   LayerNormInputGrad   per row: dx
//   LayerNormParamGrad   per column: sum(dy * xhat) and sum(dy) down the rows
// The per-channel batch-norm kernels give one GPU thread a whole channel: simple and correct,
// not fast; cuDNN's batch norm replaces them where it is available.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"
#include "engine/math/lane_sum.h"

namespace retort::kernels {

struct ChannelShape {
    std::int64_t B, C, S;
};

template <class T>
struct ChannelMoments {
    const T* x;
    ChannelShape shape;
    double* mean;
    double* var;
    RETORT_HD void operator()(std::int64_t c) const {
        const double n = static_cast<double>(shape.B * shape.S);
        double sum = 0;
        for (std::int64_t b = 0; b < shape.B; ++b) {
            const T* row = x + (b * shape.C + c) * shape.S;
            sum += lane_sum(shape.S, [&](std::int64_t s) { return double(row[s]); });
        }
        const double m = sum / n;
        double sq = 0;
        for (std::int64_t b = 0; b < shape.B; ++b) {
            const T* row = x + (b * shape.C + c) * shape.S;
            sq += lane_sum(shape.S, [&](std::int64_t s) {
                const double d = double(row[s]) - m;
                return d * d;
            });
        }
        mean[c] = m;
        var[c] = sq / n;
    }
};

// From the statistics (the batch's in training, the running ones in eval): invstd, and the
// affine transform folded into y = x * scale + shift; in training also the running statistics'
// update, r = (1 - momentum) r + momentum * stat (the variance unbiased), as PyTorch.
template <class T>
struct BatchNormChannel {
    double* mean;  // the batch's (training) or filled here from running_mean (eval)
    double* var;
    const T* weight;  // may be null (1)
    const T* bias;    // may be null (0)
    T* running_mean;  // may be null
    T* running_var;
    double momentum, eps, count;
    bool training;
    double* invstd;
    double* scale;
    double* shift;
    RETORT_HD void operator()(std::int64_t c) const {
        if (!training) {
            mean[c] = double(running_mean[c]);
            var[c] = double(running_var[c]);
        } else if (running_mean != nullptr) {
            running_mean[c] = static_cast<T>((1 - momentum) * double(running_mean[c]) +
                                             momentum * mean[c]);
            running_var[c] = static_cast<T>((1 - momentum) * double(running_var[c]) +
                                            momentum * var[c] * (count / (count - 1)));
        }
        invstd[c] = 1.0 / std::sqrt(var[c] + eps);
        const double w = weight != nullptr ? double(weight[c]) : 1.0;
        const double b = bias != nullptr ? double(bias[c]) : 0.0;
        scale[c] = w * invstd[c];
        shift[c] = b - mean[c] * scale[c];
    }
};

template <class T>
struct ChannelAffine {
    const T* x;
    T* y;
    ChannelShape shape;
    const double* scale;
    const double* shift;
    RETORT_HD void operator()(std::int64_t i) const {
        const std::int64_t c = i / shape.S % shape.C;
        y[i] = x[i] * static_cast<T>(scale[c]) + static_cast<T>(shift[c]);
    }
};

template <class T>
struct ChannelGradSums {
    const T* x;
    const T* g;
    ChannelShape shape;
    const double* mean;
    const double* invstd;
    double* sum_dy;
    double* sum_dy_xhat;
    RETORT_HD void operator()(std::int64_t c) const {
        SumPair sums;  // sum(dy), sum(dy * xhat)
        for (std::int64_t n = 0; n < shape.B; ++n) {
            const std::int64_t base = (n * shape.C + c) * shape.S;
            sums += lane_sum_pair(shape.S, [&](std::int64_t s) {
                const double dy = double(g[base + s]);
                return SumPair{dy, dy * (double(x[base + s]) - mean[c]) * invstd[c]};
            });
        }
        sum_dy[c] = sums.a;
        sum_dy_xhat[c] = sums.b;
    }
};

// Batch norm's input gradient for one channel, as coefficients in the element type T:
//     dx = k * ((dy - mean_dy) - (x - mean) * c)
// with k = w * invstd; in training mean_dy = sum(dy) / n and c = invstd * sum(dy * xhat) / n
// (the batch statistics depend on x), in eval both 0. The coefficients come from the double
// statistics; the per-element arithmetic is in T, as in PyTorch's CPU kernel, so that float
// tensors take float vector instructions (this pass ran at half the speed in double).
template <class T>
struct BatchNormGradCoefficients {
    T k, mean_dy, mean, c;
    RETORT_HD BatchNormGradCoefficients(double w, double mean_x, double invstd, double sum_dy,
                                        double sum_dy_xhat, double n, bool training)
        : k(static_cast<T>(w * invstd)),
          mean_dy(static_cast<T>(training ? sum_dy / n : 0.0)),
          mean(static_cast<T>(mean_x)),
          c(static_cast<T>(training ? invstd * (sum_dy_xhat / n) : 0.0)) {}
    RETORT_HD T operator()(T dy, T x) const { return k * ((dy - mean_dy) - (x - mean) * c); }
};

template <class T>
struct BatchNormInputGrad {
    const T* x;
    const T* g;
    const T* weight;  // may be null
    ChannelShape shape;
    const double* mean;
    const double* invstd;
    const double* sum_dy;
    const double* sum_dy_xhat;
    bool training;
    T* dx;
    RETORT_HD void operator()(std::int64_t i) const {
        const std::int64_t c = i / shape.S % shape.C;
        const BatchNormGradCoefficients<T> grad(weight != nullptr ? double(weight[c]) : 1.0,
                                                mean[c], invstd[c], sum_dy[c], sum_dy_xhat[c],
                                                static_cast<double>(shape.B * shape.S), training);
        dx[i] = grad(g[i], x[i]);
    }
};

template <class T>
struct RowMoments {
    const T* x;
    std::int64_t N;
    double eps;
    double* mean;
    double* invstd;
    RETORT_HD void operator()(std::int64_t r) const {
        const T* row = x + r * N;
        const double m = lane_sum(N, [&](std::int64_t j) { return double(row[j]); }) /
                         static_cast<double>(N);
        const double sq = lane_sum(N, [&](std::int64_t j) {
            const double d = double(row[j]) - m;
            return d * d;
        });
        mean[r] = m;
        invstd[r] = 1.0 / std::sqrt(sq / static_cast<double>(N) + eps);
    }
};

template <class T>
struct LayerNormApply {
    const T* x;
    T* y;
    std::int64_t N;
    const T* weight;  // may be null
    const T* bias;    // may be null
    const double* mean;
    const double* invstd;
    RETORT_HD void operator()(std::int64_t i) const {
        const std::int64_t r = i / N, j = i % N;
        const double xhat = (double(x[i]) - mean[r]) * invstd[r];
        const double w = weight != nullptr ? double(weight[j]) : 1.0;
        const double b = bias != nullptr ? double(bias[j]) : 0.0;
        y[i] = static_cast<T>(xhat * w + b);
    }
};

template <class T>
struct LayerNormInputGrad {
    const T* x;
    const T* g;
    const T* weight;  // may be null
    std::int64_t N;
    const double* mean;
    const double* invstd;
    T* dx;
    RETORT_HD void operator()(std::int64_t r) const {
        // over the row: sum(dxhat) and sum(dxhat * xhat), dxhat = dy * w
        const SumPair sums = lane_sum_pair(N, [&](std::int64_t j) {
            const double dxhat = double(g[r * N + j]) * (weight != nullptr ? double(weight[j]) : 1.0);
            return SumPair{dxhat, dxhat * ((double(x[r * N + j]) - mean[r]) * invstd[r])};
        });
        const double mean_g = sums.a / N, mean_g_xhat = sums.b / N;
        for (std::int64_t j = 0; j < N; ++j) {
            const double dxhat = double(g[r * N + j]) * (weight != nullptr ? double(weight[j]) : 1.0);
            const double xhat = (double(x[r * N + j]) - mean[r]) * invstd[r];
            dx[r * N + j] = static_cast<T>(invstd[r] * (dxhat - mean_g - xhat * mean_g_xhat));
        }
    }
};

template <class T>
struct LayerNormParamGrad {
    const T* x;
    const T* g;
    std::int64_t M, N;
    const double* mean;
    const double* invstd;
    T* dw;  // may be null
    T* db;  // may be null
    RETORT_HD void operator()(std::int64_t j) const {
        double sum_dy = 0, sum_dy_xhat = 0;
        for (std::int64_t r = 0; r < M; ++r) {
            sum_dy += g[r * N + j];
            sum_dy_xhat += double(g[r * N + j]) * (double(x[r * N + j]) - mean[r]) * invstd[r];
        }
        if (dw != nullptr) dw[j] = static_cast<T>(sum_dy_xhat);
        if (db != nullptr) db[j] = static_cast<T>(sum_dy);
    }
};

}  // namespace retort::kernels
