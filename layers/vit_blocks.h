// layers/vit_blocks.h: the pieces of a Vision Transformer besides attention, as timm names them.
//   Mlp         x (..., C) -> fc1 (hidden) -> GELU (exact, erf) -> fc2 (C)         timm's Mlp
//   PatchEmbed  x (B, in_chans, H, W) -> proj Conv2d(kernel = stride = patch) -> (B, Np, C),
//               Np = (H / patch) * (W / patch), patches in row-major order       timm's PatchEmbed
//   Block       x (B, N, C) -> x + drop_path1(attn(norm1(x))) -> x + drop_path2(mlp(norm2(x)))
//               pre-norm transformer block, LayerNorm eps 1e-6 as timm's ViT       timm's Block
// State-dict names follow timm: fc1/fc2, proj, norm1/attn/norm2/mlp. The modules without
// parameters (act, drop1, drop2, drop_path1, drop_path2) are registered too, so train()/eval()
// reach them; timm's LayerScale (ls1, ls2) is the identity in these models and is left out.
#pragma once

#include <memory>
#include <string>

#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace retort {

class Mlp : public UnaryModule {
public:
    Mlp(std::int64_t in_features, std::int64_t hidden_features, const std::string& act = "gelu",
        double drop = 0.0);
    Tensor forward(const Tensor& x) override;

    std::shared_ptr<Linear> fc1, fc2;
    std::shared_ptr<Activation> act;
    std::shared_ptr<Dropout> drop1, drop2;
};

class PatchEmbed : public UnaryModule {
public:
    // The input must be exactly img_size x img_size (timm's strict_img_size), since the position
    // embedding of a ViT has one entry per patch of that grid.
    PatchEmbed(std::int64_t img_size, std::int64_t patch_size, std::int64_t in_chans,
               std::int64_t embed_dim);
    Tensor forward(const Tensor& x) override;

    std::shared_ptr<Conv2d> proj;
    std::int64_t img_size, patch_size, grid_size, num_patches;
};

struct BlockOptions {
    std::int64_t dim = 768, num_heads = 12;
    double mlp_ratio = 4.0;      // hidden = int(dim * mlp_ratio), as timm
    double drop_path = 0.0;      // stochastic depth of both residual branches
    double norm_eps = 1e-6;
    bool qkv_bias = true;
};

class Block : public UnaryModule {
public:
    explicit Block(const BlockOptions& options);
    Tensor forward(const Tensor& x) override { return forward(x, nullptr); }
    // `attn_probs`, when given, receives the attention probabilities (B, H, N, N).
    Tensor forward(const Tensor& x, Tensor* attn_probs);

    std::shared_ptr<LayerNorm> norm1, norm2;
    std::shared_ptr<Attention> attn;
    std::shared_ptr<Mlp> mlp;
    std::shared_ptr<DropPath> drop_path1, drop_path2;
};

}  // namespace retort
