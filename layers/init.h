// layers/init.h: parameter initialization as PyTorch's torch.nn.init does it, drawing from
// retort's seeded generator (engine/random.h). Each function fills an existing tensor in place
// and returns it, so a constructor can write: init::kaiming_uniform(weight, fan_in).
#pragma once

#include <cstdint>

#include "engine/random.h"
#include "engine/tensor.h"

namespace retort::init {

// While one is alive (on this thread), the functions below leave tensors as they are. Tools that
// only need a model's structure (parameter counts, tap names) build it under this guard and skip
// drawing millions of random numbers.
class SkipInitGuard {
public:
    SkipInitGuard();
    ~SkipInitGuard();
    SkipInitGuard(const SkipInitGuard&) = delete;
    SkipInitGuard& operator=(const SkipInitGuard&) = delete;

private:
    bool previous_;
};
bool skipping();

// Fan-in and fan-out of a weight: (out, in) for Linear, (out, in/groups, kh, kw) for Conv2d.
std::int64_t fan_in(const Tensor& weight);
std::int64_t fan_out(const Tensor& weight);

Tensor& constant(Tensor& t, double value);
Tensor& uniform(Tensor& t, double low, double high, Generator* gen = nullptr);
Tensor& normal(Tensor& t, double mean, double stddev, Generator* gen = nullptr);
// Normal(mean, std) restricted to [low, high] (timm's trunc_normal_ with absolute bounds), by
// inverse-CDF sampling, as torch.nn.init.trunc_normal_.
Tensor& trunc_normal(Tensor& t, double mean, double stddev, double low, double high,
                     Generator* gen = nullptr);
// torch.nn.init.kaiming_uniform_(w, a): bound = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2)).
// nn.Linear and nn.Conv2d use a = sqrt(5) with fan_in, i.e. bound = 1 / sqrt(fan_in).
Tensor& kaiming_uniform(Tensor& t, double a, bool use_fan_out = false, Generator* gen = nullptr);
// torch.nn.init.kaiming_normal_(w, mode, nonlinearity="relu"): std = sqrt(2 / fan).
// torchvision's ResNet and MobileNet use mode="fan_out".
Tensor& kaiming_normal_relu(Tensor& t, bool use_fan_out, Generator* gen = nullptr);

}  // namespace retort::init
