// layers/conv2d.cpp: nn.Conv2d.
#include "layers/conv2d.h"

#include <cmath>

#include "layers/init.h"

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

Tensor Conv2d::forward(const Tensor& x) {
    Conv2dOptions o;
    o.stride = {spec.stride, spec.stride};
    o.padding = {spec.padding, spec.padding};
    o.dilation = {spec.dilation, spec.dilation};
    o.groups = spec.groups;
    return conv2d(x, weight, bias, o);
}

}  // namespace retort
