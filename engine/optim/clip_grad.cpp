// engine/optim/clip_grad.cpp: gradient-norm clipping (contract in clip_grad.h).
// Shapes: any; each parameter's gradient has the parameter's shape.
// Matches torch.nn.utils.clip_grad_norm_ (error_if_nonfinite=False): same norm, same clip
// coefficient max_norm / (total + 1e-6), applied only when it is below 1.
// PyTorch sums a float32 gradient in float32; here every sum runs in double, so float32 norms agree
// with PyTorch to float32 rounding, not bit for bit. Both devices run engine/kernels/clip_grad.h.
#include "engine/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/clip_grad.h"
#include "engine/kernels/elementwise.h"

namespace retort {

namespace {

// Sum of |g|^p (or max |g|) over one gradient: chunk results from the kernel, combined here in
// chunk order.
template <class T>
double reduce_gradient(const Tensor& g, double p) {
    const bool is_max = std::isinf(p);
    const std::int64_t chunks = (g.numel() + kernels::kGradChunk - 1) / kernels::kGradChunk;
    Tensor partial = Tensor::empty({chunks}, DType::f64, g.device());
    run(g.device(), chunks,
        kernels::GradNormChunk<T>{g.device_data<T>(), g.numel(), is_max ? INFINITY : p,
                                  partial.device_data<double>()},
        /*grain=*/1);
    double total = 0;
    for (double v : partial.to_vector<double>())
        total = is_max ? (std::isnan(v) || v > total ? v : total) : total + v;
    return total;
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
        grads.push_back(g);
    }
    if (grads.empty()) return 0;

    const bool is_max = std::isinf(norm_type);
    double reduced = 0;
    for (const Tensor& g : grads) {
        double r = visit_floating(g.dtype(), "clip_grad_norm", [&]<class T>(Type<T>) {
            return reduce_gradient<T>(g, norm_type);
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
                run(g.device(), g.numel(), kernels::Scale<T>{g.device_data<T>(), T(coefficient)});
            });
    }
    return total;
}

}  // namespace retort
