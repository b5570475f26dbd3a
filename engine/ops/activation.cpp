// engine/ops/activation.cpp: relu, relu6, leaky_relu, gelu, silu, sigmoid, tanh, hardswish,
// hardsigmoid. Shapes: any -> same. Matches torch.nn.functional.
// Backward: dx = f'(x) * dy, with f' from engine/math/unary.h. Saved: x and y.
#include "engine/ops/activation.h"

#include "engine/math/unary.h"
#include "engine/ops/unary_op.h"

namespace retort {

Tensor relu(const Tensor& x) { return unary_op(x, "relu", math::Relu{}); }
Tensor relu6(const Tensor& x) { return unary_op(x, "relu6", math::Relu6{}); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
    return unary_op(x, "leaky_relu", math::LeakyRelu{negative_slope});
}
Tensor gelu(const Tensor& x, const std::string& approximate) {
    if (approximate == "none") return unary_op(x, "gelu", math::GeluErf{});
    if (approximate == "tanh") return unary_op(x, "gelu_tanh", math::GeluTanh{});
    fail("gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}
Tensor silu(const Tensor& x) { return unary_op(x, "silu", math::Silu{}); }
Tensor sigmoid(const Tensor& x) { return unary_op(x, "sigmoid", math::Sigmoid{}); }
Tensor tanh(const Tensor& x) { return unary_op(x, "tanh", math::Tanh{}); }
Tensor hardswish(const Tensor& x) { return unary_op(x, "hardswish", math::Hardswish{}); }
Tensor hardsigmoid(const Tensor& x) { return unary_op(x, "hardsigmoid", math::Hardsigmoid{}); }

}  // namespace retort
