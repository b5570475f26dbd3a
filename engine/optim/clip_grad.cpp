// engine/optim/clip_grad.cpp: gradient-norm clipping (contract in clip_grad.h).
// Shapes: any; each parameter's gradient has the parameter's shape.
// Matches torch.nn.utils.clip_grad_norm_ (error_if_nonfinite=False): same norm, same clip
// coefficient max_norm / (total + 1e-6), applied only when it is below 1.
// PyTorch sums a float32 gradient in float32; here every sum runs in double, so float32 norms agree
// with PyTorch to float32 rounding, not bit for bit.
#include "engine/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/parallel.h"

namespace retort {

namespace {

constexpr std::int64_t kChunk = 16384;

// |x|^p for the norms that have a cheaper, exact form.
double power(double x, double p) {
    double a = std::abs(x);
    if (p == 1) return a;
    if (p == 2) return a * a;
    return std::pow(a, p);
}

// Per-chunk partial results of one gradient, combined in chunk order: sum of |g|^p, or max |g|.
template <class T>
double reduce_gradient(const T* g, std::int64_t n, double p) {
    const bool is_max = std::isinf(p);
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
    parallel_for(0, chunks, 1, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t c = begin; c < end; ++c) {
            double acc = 0;
            for (std::int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
                double x = static_cast<double>(g[i]);
                if (is_max)
                    acc = std::isnan(x) || std::abs(x) > acc ? std::abs(x) : acc;
                else
                    acc += power(x, p);
            }
            partial[static_cast<std::size_t>(c)] = acc;
        }
    });
    double total = 0;
    for (double v : partial)
        total = is_max ? (std::isnan(v) || v > total ? v : total) : total + v;
    return total;
}

template <class T>
void scale_gradient(T* g, std::int64_t n, double coefficient) {
    const T c = T(coefficient);
    parallel_for(0, n, kChunk, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) g[i] = g[i] * c;
    });
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type) {
    require(norm_type > 0, "clip_grad_norm: norm_type must be > 0 (or infinity), got ", norm_type);
    require(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
    std::vector<Tensor> grads;
    for (std::size_t i = 0; i < params.size(); ++i) {
        require(params[i].defined(), "clip_grad_norm: parameter ", i, " is an undefined tensor");
        Tensor g = params[i].grad();
        if (!g.defined()) continue;
        require(g.device().is_cpu(), "clip_grad_norm: the gradient of parameter ", i, " is on ",
                g.device().str(), "; only CPU gradients are supported");
        grads.push_back(g);
    }
    if (grads.empty()) return 0;

    const bool is_max = std::isinf(norm_type);
    double reduced = 0;
    for (const Tensor& g : grads) {
        double r = visit_floating(g.dtype(), "clip_grad_norm", [&]<class T>(Type<T>) {
            return reduce_gradient(g.data<T>(), g.numel(), norm_type);
        });
        reduced = is_max ? (std::isnan(r) || r > reduced ? r : reduced) : reduced + r;
    }
    double total = is_max ? reduced
                   : norm_type == 1 ? reduced
                   : norm_type == 2 ? std::sqrt(reduced)
                                    : std::pow(reduced, 1.0 / norm_type);

    const double coefficient = max_norm / (total + 1e-6);
    if (coefficient < 1 || std::isnan(coefficient)) {
        NoGradGuard no_grad;
        for (Tensor& g : grads)
            visit_floating(g.dtype(), "clip_grad_norm", [&]<class T>(Type<T>) {
                scale_gradient(g.data<T>(), g.numel(), coefficient);
            });
    }
    return total;
}

}  // namespace retort
