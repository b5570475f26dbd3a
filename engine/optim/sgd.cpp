// engine/optim/sgd.cpp: the SGD update (formula in sgd.h).
// Shapes: any; a parameter, its gradient and its buffers all share one shape. Not differentiable:
// the update runs under the NoGradGuard of Optimizer::step().
// Matches torch.optim.SGD (single-tensor path, maximize=False) in the order of its operations, with
// the coefficients rounded to the parameter's dtype before use, as PyTorch's scalar arguments are.
// PyTorch's vectorized CPU kernels fuse some multiply-adds, so the two agree to within about one
// unit in the last place per step, not bit for bit.
// Each element is updated independently, so the threads never change the result.
#include "engine/optim/sgd.h"

#include "engine/cuda/launch.h"
#include "engine/kernels/optim.h"

namespace retort {

SGD::SGD(const std::vector<Tensor>& params, const SgdOptions& options)
    : SGD(std::vector<ParamGroupSpec>{{params, {}, {}}}, options) {}

SGD::SGD(std::vector<ParamGroupSpec> groups, const SgdOptions& options)
    : Optimizer("sgd", std::move(groups), options.lr, options.weight_decay), options_(options) {
    require_non_negative(options.momentum, "momentum");
    require(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
            "sgd: nesterov momentum requires momentum > 0 and dampening = 0 (got momentum ",
            options.momentum, ", dampening ", options.dampening, ")");
}

std::vector<std::string> SGD::buffer_names() const {
    if (options_.momentum == 0) return {};
    return {"momentum_buffer"};
}

void SGD::update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) {
    const bool use_momentum = options_.momentum != 0;
    const bool first = use_momentum && state.buffers.count("momentum_buffer") == 0;
    if (first) state.buffers["momentum_buffer"] = empty_like(param);
    const bool decay = group.weight_decay != 0;
    const bool nesterov = options_.nesterov;

    visit_floating(param.dtype(), "sgd", [&]<class T>(Type<T>) {
        kernels::SgdStep<T> step{
            param.device_data<T>(),
            grad.device_data<T>(),
            use_momentum ? state.buffers["momentum_buffer"].device_data<T>() : nullptr,
            T(group.weight_decay), T(options_.momentum), T(1 - options_.dampening), T(-group.lr),
            decay, use_momentum, first, nesterov};
        run(param.device(), param.numel(), step);
    });
}

}  // namespace retort
