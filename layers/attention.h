// layers/attention.h: multi-head self-attention, as timm's Attention (vision_transformer.py).
// Shapes: x (B, N, C) -> (B, N, C); H heads of D = C / H channels each; the attention
// probabilities are (B, H, N, N). Parameters: qkv.weight (3C, C), qkv.bias (3C),
// proj.weight (C, C), proj.bias (C) -- timm's names, so timm checkpoints load unchanged.
#pragma once

#include <memory>

#include "layers/dropout.h"
#include "layers/linear.h"

namespace retort {

class Attention : public UnaryModule {
public:
    Attention(std::int64_t dim, std::int64_t num_heads, bool qkv_bias = true,
              double attn_drop = 0.0, double proj_drop = 0.0);

    Tensor forward(const Tensor& x) override { return forward(x, nullptr); }
    // When `probs` is given it receives the attention probabilities (B, H, N, N): softmax output,
    // before attention dropout. Otherwise they are freed as soon as they are used (in eval mode;
    // when training, backward needs them anyway).
    Tensor forward(const Tensor& x, Tensor* probs);

    std::shared_ptr<Linear> qkv, proj;
    std::shared_ptr<Dropout> attn_drop, proj_drop;
    std::int64_t dim, num_heads, head_dim;
    double scale;  // head_dim^-0.5
};

}  // namespace retort
