// layers/activation.cpp: the Activation module.
#include "layers/activation.h"

#include "engine/ops.h"

namespace retort {

namespace {
const char* const kKinds =
    "relu, relu6, gelu, gelu_tanh, silu, sigmoid, tanh, hardswish, hardsigmoid, identity";
}

Tensor activate(const Tensor& x, const std::string& kind) {
    if (kind == "relu") return relu(x);
    if (kind == "relu6") return relu6(x);
    if (kind == "gelu") return gelu(x);
    if (kind == "gelu_tanh") return gelu(x, "tanh");
    if (kind == "silu") return silu(x);
    if (kind == "sigmoid") return sigmoid(x);
    if (kind == "tanh") return tanh(x);
    if (kind == "hardswish") return hardswish(x);
    if (kind == "hardsigmoid") return hardsigmoid(x);
    if (kind == "identity") return x;
    fail("unknown activation '", kind, "'; valid: ", kKinds);
}

Activation::Activation(const std::string& kind) : UnaryModule("Activation"), kind_(kind) {
    activate(zeros({1}), kind);  // validates the name now, not at the first forward pass
}

Tensor Activation::forward(const Tensor& x) { return activate(x, kind_); }

}  // namespace retort
