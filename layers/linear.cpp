// layers/linear.cpp: nn.Linear.
#include "layers/linear.h"

#include <cmath>

#include "engine/ops.h"
#include "layers/init.h"

namespace retort {

Linear::Linear(std::int64_t in, std::int64_t out, bool with_bias)
    : UnaryModule("Linear"), in_features(in), out_features(out) {
    require(in > 0 && out > 0, "Linear: features must be positive, got in=", in, " out=", out);
    weight = register_parameter("weight", Tensor::empty({out, in}));
    init::kaiming_uniform(weight, std::sqrt(5.0));
    if (with_bias) {
        bias = register_parameter("bias", Tensor::empty({out}));
        const double bound = 1.0 / std::sqrt(static_cast<double>(in));
        init::uniform(bias, -bound, bound);
    }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

}  // namespace retort
