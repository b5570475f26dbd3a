// engine/ops/dropout.cpp: dropout (Srivastava et al., 2014), "inverted" as in PyTorch.
// Shapes: x (...) -> y of the same shape. Matches torch.nn.functional.dropout:
//   training and 0 < p < 1:  y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) per element
//   p == 0 or not training:   y = x (the same tensor; no random numbers are drawn)
//   p == 1:                   y = x * 0
// The mask comes from the generator's Philox stream (engine/random.h): element i's coin depends
// only on (seed, offset, i), so the mask is identical for any thread count, and a GPU draws the
// same mask from the same generator state (engine/kernels/random.h).
// Backward: dx = dy * mask / (1 - p). Saved: the scaled mask only (not x).
#include "engine/ops/dropout.h"

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/random.h"
#include "engine/ops/elementwise.h"

namespace retort {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
    require(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
    require(x.is_floating_point(), "dropout: expected a floating-point tensor, got ",
            dtype_name(x.dtype()));
    if (p == 0.0 || !training) return x;
    if (p == 1.0) return x * 0.0;
    Tensor scaled_mask;
    if (x.device().is_cuda()) {
        // the same draws as bernoulli() on the CPU: engine/kernels/random.h
        Generator& g = gen != nullptr ? *gen : default_generator();
        const std::uint64_t blocks = static_cast<std::uint64_t>((x.numel() + 3) / 4);
        const std::uint64_t seed = g.seed(), offset = g.reserve(blocks * 4);
        scaled_mask = Tensor::empty(x.shape(), x.dtype(), x.device());
        visit_floating(x.dtype(), "dropout", [&]<class T>(Type<T>) {
            const T scale = T(1) * static_cast<T>(1.0 / (1.0 - p));
            cuda::launch(x.device(), x.numel(),
                         kernels::BernoulliScaled<T>{scaled_mask.device_data<T>(), seed, offset,
                                                     static_cast<float>(1.0 - p), scale});
        });
    } else {
        scaled_mask = bernoulli(x.shape(), 1.0 - p, x.dtype(), gen) * (1.0 / (1.0 - p));
    }
    Tensor y = x.detach() * scaled_mask;
    record(y, "dropout", {x}, [scaled_mask](const Tensor& dy) {
        return std::vector<Tensor>{dy * scaled_mask};
    });
    return y;
}

}  // namespace retort
