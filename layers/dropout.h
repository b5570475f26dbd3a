// layers/dropout.h: Dropout (elementwise) and DropPath (stochastic depth: drops a whole sample's
// residual branch), as torch.nn.Dropout and timm's DropPath. Both are the identity in eval mode.
// Shapes: any -> same (DropPath: the first dim is the batch).
#pragma once

#include "layers/module.h"

namespace retort {

class Dropout : public UnaryModule {
public:
    explicit Dropout(double p = 0.5);
    Tensor forward(const Tensor& x) override;
    double p;
};

// y = x * mask_b / (1 - p) with mask_b ~ Bernoulli(1 - p) per sample b (timm, scale_by_keep).
class DropPath : public UnaryModule {
public:
    explicit DropPath(double p = 0.0);
    Tensor forward(const Tensor& x) override;
    double p;
};

}  // namespace retort
