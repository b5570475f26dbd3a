// engine/ops/dropout.cpp: dropout (Srivastava et al., 2014), "inverted" as in PyTorch.
// Shapes: x (...) -> y of the same shape. Matches torch.nn.functional.dropout:
//   training and 0 < p < 1:  y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) per element
//   p == 0 or not training:   y = x (the same tensor; no random numbers are drawn)
//   p == 1:                   y = x * 0
// The mask comes from the generator's Philox stream (engine/random.h): element i's coin depends
// only on (seed, offset, i), so the mask is identical for any thread count.
// Backward: dx = dy * mask / (1 - p). Saved: the scaled mask only (not x).
#include "engine/ops/dropout.h"

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"

namespace retort {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
    require(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
    require(x.is_floating_point(), "dropout: expected a floating-point tensor, got ",
            dtype_name(x.dtype()));
    if (p == 0.0 || !training) return x;
    if (p == 1.0) return x * 0.0;
    const Tensor scaled_mask = bernoulli(x.shape(), 1.0 - p, x.dtype(), gen) * (1.0 / (1.0 - p));
    Tensor y = x.detach() * scaled_mask;
    record(y, "dropout", {x}, [scaled_mask](const Tensor& dy) {
        return std::vector<Tensor>{dy * scaled_mask};
    });
    return y;
}

}  // namespace retort
