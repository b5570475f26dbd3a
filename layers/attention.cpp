// layers/attention.cpp: multi-head self-attention (Vaswani et al., 2017) as timm's Attention.
//
// Shapes: B batch, N tokens, C channels, H heads, D = C / H channels per head.
//   qkv  = x W_qkv^T + b_qkv                       (B, N, 3C), viewed as (B, N, 3, H, D)
//   q, k, v                                        (B, H, N, D) each, by one permute
//   attn = softmax(q * D^-0.5 @ k^T, over keys)    (B, H, N, N)
//   out  = (attn @ v), heads joined back: (B, N, H, D) -> (B, N, C), then proj.
// Matches timm.models.vision_transformer.Attention with qk_norm off (its fused
// scaled_dot_product_attention path computes the same thing). The scale multiplies q before the
// product, as timm does, so rounding follows the same order.
// Backward: composed of engine ops (linear, permute, matmul, softmax), each saving its own inputs;
// softmax keeps the probabilities, which the attn @ v product needs too. With the fused kernel
// chosen (set_attention_kernel, run.attention = fused) and neither the probabilities asked for nor
// attention dropout on, the middle three steps are one op that never stores the probabilities
// (engine/ops/attention.h).
#include "layers/attention.h"

#include <cmath>

#include "engine/ops.h"

namespace retort {

Attention::Attention(std::int64_t dim_, std::int64_t num_heads_, bool qkv_bias, double attn_p,
                     double proj_p)
    : UnaryModule("Attention"), dim(dim_), num_heads(num_heads_) {
    require(dim > 0 && num_heads > 0, "Attention: dim and num_heads must be positive, got dim=",
            dim, " num_heads=", num_heads);
    require(dim % num_heads == 0, "Attention: dim (", dim, ") must be divisible by num_heads (",
            num_heads, ")");
    head_dim = dim / num_heads;
    scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    qkv = register_module("qkv", std::make_shared<Linear>(dim, 3 * dim, qkv_bias));
    attn_drop = register_module("attn_drop", std::make_shared<Dropout>(attn_p));
    proj = register_module("proj", std::make_shared<Linear>(dim, dim));
    proj_drop = register_module("proj_drop", std::make_shared<Dropout>(proj_p));
}

Tensor Attention::forward(const Tensor& x, Tensor* probs) {
    require(x.dim() == 3 && x.size(2) == dim, "Attention: expected input (B, N, ", dim,
            "), got ", shape_str(x.shape()));
    const std::int64_t B = x.size(0), N = x.size(1);

    // (B, N, 3C) -> (3, B, H, N, D): q, k and v become three contiguous (B, H, N, D) blocks.
    Tensor qkv_heads = permute((*qkv)(x).reshape({B, N, 3, num_heads, head_dim}), {2, 0, 3, 1, 4});
    std::vector<Tensor> parts = split(qkv_heads, 1, 0);
    const Shape head_shape{B, num_heads, N, head_dim};
    Tensor q = parts[0].reshape(head_shape) * scale;
    Tensor k = parts[1].reshape(head_shape);
    Tensor v = parts[2].reshape(head_shape);

    Tensor heads;  // (B, H, N, D)
    const bool dropping = is_training() && attn_drop->p > 0;
    if (attention_kernel() == AttentionKernel::fused && !probs && !dropping) {
        // one fused op (scale already in q): the probabilities are never stored
        heads = scaled_dot_product_attention(q, k, v, 1.0);
    } else {
        Tensor attn = softmax(matmul(q, transpose(k, -2, -1)), -1);
        if (probs) *probs = attn;
        heads = matmul((*attn_drop)(attn), v);
    }
    Tensor joined = transpose(heads, 1, 2).reshape({B, N, dim});
    return (*proj_drop)((*proj)(joined));
}

}  // namespace retort
