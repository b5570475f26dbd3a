// engine/optim/clip_grad.h: gradient-norm clipping, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <limits>
#include <vector>

#include "engine/tensor.h"

namespace retort {

// The p-norm of all gradients together, as if they were one long vector:
//     total = (sum over every gradient element g of |g|^norm_type)^(1 / norm_type)
// (norm_type = infinity: the largest |g|). If total > max_norm, every gradient is scaled in place
// by max_norm / (total + 1e-6), so their norm becomes just under max_norm; otherwise they are left
// as they are. Parameters without a gradient are skipped; with none at all, the result is 0.
// Returns the norm before clipping. The sum runs in double, in parameter order and in fixed chunks
// within a parameter, so the result does not depend on the thread count. A NaN or infinite norm
// scales the gradients by NaN or 0, as PyTorch does by default; check the result to skip the step.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

constexpr double kInfNorm = std::numeric_limits<double>::infinity();

}  // namespace retort
