// engine/ops/activation.h: activation functions, elementwise. Shapes: any -> same.
// Each matches the torch.nn.functional function of the same name; the arithmetic is in
// engine/math/unary.h.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace retort {

Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// approximate = "none" (exact, erf) or "tanh", as torch.nn.functional.gelu
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor hardsigmoid(const Tensor& x);

}  // namespace retort
