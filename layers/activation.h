// layers/activation.h: activation functions as modules (for Sequential and model printouts).
// Kinds: relu, relu6, gelu, gelu_tanh, silu, sigmoid, tanh, hardswish, hardsigmoid, identity.
#pragma once

#include <string>

#include "layers/module.h"

namespace retort {

class Activation : public UnaryModule {
public:
    explicit Activation(const std::string& kind);  // an unknown kind is an Error listing them
    Tensor forward(const Tensor& x) override;
    const std::string& kind() const { return kind_; }

private:
    std::string kind_;
};

// Applies the activation `kind` to x (the function behind Activation).
Tensor activate(const Tensor& x, const std::string& kind);

}  // namespace retort
