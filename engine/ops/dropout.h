// engine/ops/dropout.h: dropout. Shapes: any -> same.
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"

namespace retort {

// Zeroes each element with probability p and scales the rest by 1 / (1 - p) when training;
// the identity otherwise. The mask comes from the Philox stream of `gen` (default generator when
// null), so it is the same for any thread count and on the GPU.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace retort
