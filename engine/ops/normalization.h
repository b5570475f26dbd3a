// engine/ops/normalization.h: batch norm and layer norm.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace retort {

// As torch.nn.functional.batch_norm on x (B, C, ...): normalizes each channel.
// training: uses the batch's mean and biased variance, and, if running_mean/running_var are
//   defined, updates them in place: r = (1 - momentum) r + momentum * stat, with the unbiased
//   variance for running_var (as PyTorch).
// eval: uses running_mean / running_var.
// weight, bias (C) may be undefined (no affine transform).
Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// As torch.nn.functional.layer_norm: normalizes over the last normalized_shape.size() dims,
// which must equal normalized_shape; weight and bias have that shape (or are undefined).
Tensor layer_norm(const Tensor& x, const std::vector<std::int64_t>& normalized_shape,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

}  // namespace retort
