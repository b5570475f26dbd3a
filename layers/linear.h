// layers/linear.h: fully connected layer, as torch.nn.Linear.
// Shapes: x (..., in_features) -> (..., out_features). Parameters: weight (out, in), bias (out).
// Initialization: weight and bias U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default).
#pragma once

#include "layers/module.h"

namespace retort {

class Linear : public UnaryModule {
public:
    Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
    Tensor forward(const Tensor& x) override;

    Tensor weight, bias;  // bias is undefined when built without one
    std::int64_t in_features, out_features;
};

}  // namespace retort
