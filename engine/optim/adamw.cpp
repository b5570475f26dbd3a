// engine/optim/adamw.cpp: the AdamW update (formula in adamw.h).
// Shapes: any; a parameter, its gradient and its buffers all share one shape. Not differentiable:
// the update runs under the NoGradGuard of Optimizer::step().
// Matches torch.optim.AdamW (single-tensor path, maximize=False, capturable=False) in the order of
// its operations: the bias corrections and step size are computed in double, rounded to the
// parameter's dtype, and applied as PyTorch applies them (decay, moments, denominator, then
// p += -step_size * m / denom). PyTorch's vectorized CPU kernels fuse some multiply-adds, so the
// two agree to within about one unit in the last place per step, not bit for bit.
// Each element is updated independently, so the threads never change the result.
#include "engine/optim/adamw.h"

#include <cmath>

#include "engine/cuda/launch.h"
#include "engine/kernels/optim.h"

namespace retort {

AdamW::AdamW(const std::vector<Tensor>& params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroupSpec>{{params, {}, {}}}, options) {}

AdamW::AdamW(std::vector<ParamGroupSpec> groups, const AdamWOptions& options)
    : Optimizer("adamw", std::move(groups), options.lr, options.weight_decay), options_(options) {
    require(options.beta1 >= 0 && options.beta1 < 1, "adamw: beta1 must be in [0, 1), got ",
            options.beta1);
    require(options.beta2 >= 0 && options.beta2 < 1, "adamw: beta2 must be in [0, 1), got ",
            options.beta2);
    require_non_negative(options.eps, "eps");
}

std::vector<std::string> AdamW::buffer_names() const {
    if (options_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
}

void AdamW::update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) {
    for (const std::string& name : buffer_names())
        if (state.buffers.count(name) == 0) state.buffers[name] = zeros_like(param);

    const double t = static_cast<double>(state.step);
    const double bias_correction1 = 1 - std::pow(options_.beta1, t);
    const double bias_correction2 = 1 - std::pow(options_.beta2, t);
    const double step_size = group.lr / bias_correction1;
    const bool amsgrad = options_.amsgrad;
    visit_floating(param.dtype(), "adamw", [&]<class T>(Type<T>) {
        kernels::AdamWStep<T> step{
            param.device_data<T>(),
            grad.device_data<T>(),
            state.buffers["exp_avg"].device_data<T>(),
            state.buffers["exp_avg_sq"].device_data<T>(),
            amsgrad ? state.buffers["max_exp_avg_sq"].device_data<T>() : nullptr,
            T(1 - group.lr * group.weight_decay),
            T(options_.beta1), T(1 - options_.beta1),
            T(options_.beta2), T(1 - options_.beta2),
            T(std::sqrt(bias_correction2)), T(options_.eps), T(-step_size)};
        run(param.device(), param.numel(), step);
    });
}

}  // namespace retort
