// layers/conv2d.cpp: nn.Conv2d.
#include "layers/conv2d.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "layers/init.h"
#include "layers/norm.h"

namespace retort {

Conv2d::Conv2d(const Conv2dSpec& s) : UnaryModule("Conv2d"), spec(s) {
    require(s.in_channels > 0 && s.out_channels > 0 && s.kernel > 0 && s.stride > 0 &&
                s.dilation > 0 && s.padding >= 0 && s.groups > 0,
            "Conv2d: channels, kernel, stride, dilation and groups must be positive, padding >= 0");
    require(s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0, "Conv2d: groups (",
            s.groups, ") must divide in_channels (", s.in_channels, ") and out_channels (",
            s.out_channels, ")");
    weight = register_parameter(
        "weight", Tensor::empty({s.out_channels, s.in_channels / s.groups, s.kernel, s.kernel}));
    init::kaiming_uniform(weight, std::sqrt(5.0));
    if (s.bias) {
        bias = register_parameter("bias", Tensor::empty({s.out_channels}));
        const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
        init::uniform(bias, -bound, bound);
    }
}

Conv2dOptions Conv2d::options(ConvEpilogue epilogue) const {
    Conv2dOptions o;
    o.stride = {spec.stride, spec.stride};
    o.padding = {spec.padding, spec.padding};
    o.dilation = {spec.dilation, spec.dilation};
    o.groups = spec.groups;
    o.epilogue = epilogue;
    return o;
}

Tensor Conv2d::forward(const Tensor& x) {
    if (has_folded_norm() && !is_training())
        return conv2d(x, folded_weight_, folded_bias_, options(ConvEpilogue::none));
    return conv2d(x, weight, bias, options(ConvEpilogue::none));
}

Tensor Conv2d::forward_fused(const Tensor& x, ConvEpilogue epilogue) {
    if (has_folded_norm() && !is_training() && !needs_grad({x}))
        return conv2d(x, folded_weight_, folded_bias_, options(epilogue));
    const Tensor y = forward(x);  // a graph is recorded: the activation as its own op
    switch (epilogue) {
        case ConvEpilogue::relu: return relu(y);
        case ConvEpilogue::relu6: return relu6(y);
        case ConvEpilogue::none: break;
    }
    return y;
}

void Conv2d::fold(BatchNorm2d& norm) {
    require(norm.weight.size(0) == spec.out_channels, "Conv2d::fold: a BatchNorm2d of ",
            norm.weight.size(0), " channels cannot follow a convolution with ", spec.out_channels,
            " outputs");
    NoGradGuard no_grad;
    const Tensor scale = norm.weight * rsqrt(norm.running_var + norm.eps);  // (O)
    folded_weight_ = weight * scale.reshape({spec.out_channels, 1, 1, 1});
    const Tensor b = bias.defined() ? bias : zeros({spec.out_channels}, weight.dtype(), weight.device());
    folded_bias_ = (b - norm.running_mean) * scale + norm.bias;
    norm.folded = true;
}

}  // namespace retort
