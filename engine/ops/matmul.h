// engine/ops/matmul.h: matrix products.
#pragma once

#include "engine/tensor.h"

namespace retort {

// As torch.matmul: 1-D x 1-D is a dot product; (..., M, K) @ (..., K, N) -> (..., M, N) with the
// batch dims broadcast; a 1-D operand is promoted to a matrix and the added dim removed after.
Tensor matmul(const Tensor& a, const Tensor& b);
// As torch.nn.functional.linear: x (..., in) , weight (out, in), bias (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace retort
