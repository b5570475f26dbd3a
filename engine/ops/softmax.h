// engine/ops/softmax.h: softmax and log_softmax along one dim. Shapes: x (...) -> same.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace retort {

Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor log_softmax(const Tensor& x, std::int64_t dim);

}  // namespace retort
