// layers/vit_blocks.cpp: Mlp, PatchEmbed and the pre-norm transformer Block of timm's ViT.
//
// Shapes: B batch, N tokens, Np patch tokens, C channels (embed_dim), P patch size,
// H, W image size.
// Matches timm.layers.Mlp, timm.layers.PatchEmbed (flatten=True, no norm) and
// timm.models.vision_transformer.Block with init_values=None (no LayerScale).
// Backward: composed of engine ops; nothing is saved here beyond what each op saves.
#include "layers/vit_blocks.h"

#include "engine/ops.h"

namespace retort {

Mlp::Mlp(std::int64_t in_features, std::int64_t hidden_features, const std::string& act_kind,
         double drop)
    : UnaryModule("Mlp") {
    fc1 = register_module("fc1", std::make_shared<Linear>(in_features, hidden_features));
    act = register_module("act", std::make_shared<Activation>(act_kind));
    drop1 = register_module("drop1", std::make_shared<Dropout>(drop));
    fc2 = register_module("fc2", std::make_shared<Linear>(hidden_features, in_features));
    drop2 = register_module("drop2", std::make_shared<Dropout>(drop));
}

Tensor Mlp::forward(const Tensor& x) {
    return (*drop2)((*fc2)((*drop1)((*act)((*fc1)(x)))));
}

PatchEmbed::PatchEmbed(std::int64_t img_size_, std::int64_t patch_size_, std::int64_t in_chans,
                       std::int64_t embed_dim)
    : UnaryModule("PatchEmbed"), img_size(img_size_), patch_size(patch_size_) {
    require(img_size > 0 && patch_size > 0 && img_size % patch_size == 0, "PatchEmbed: img_size (",
            img_size, ") must be a positive multiple of patch_size (", patch_size, ")");
    grid_size = img_size / patch_size;
    num_patches = grid_size * grid_size;
    Conv2dSpec spec{in_chans, embed_dim};
    spec.kernel = spec.stride = patch_size;
    proj = register_module("proj", std::make_shared<Conv2d>(spec));
}

Tensor PatchEmbed::forward(const Tensor& x) {
    require(x.dim() == 4 && x.size(2) == img_size && x.size(3) == img_size,
            "PatchEmbed: expected input (B, C, ", img_size, ", ", img_size, "), got ",
            shape_str(x.shape()));
    Tensor maps = (*proj)(x);  // (B, C, H/P, W/P)
    // (B, C, Np) -> (B, Np, C): one row of C channels per patch, as timm's flatten(2).transpose(1, 2)
    return transpose(maps.reshape({maps.size(0), maps.size(1), num_patches}), 1, 2);
}

Block::Block(const BlockOptions& o) : UnaryModule("Block") {
    const auto hidden = static_cast<std::int64_t>(static_cast<double>(o.dim) * o.mlp_ratio);
    require(hidden > 0, "Block: the MLP hidden size int(dim * mlp_ratio) = int(", o.dim, " * ",
            o.mlp_ratio, ") must be at least 1");
    norm1 = register_module("norm1", std::make_shared<LayerNorm>(o.dim, o.norm_eps));
    attn = register_module("attn", std::make_shared<Attention>(o.dim, o.num_heads, o.qkv_bias));
    drop_path1 = register_module("drop_path1", std::make_shared<DropPath>(o.drop_path));
    norm2 = register_module("norm2", std::make_shared<LayerNorm>(o.dim, o.norm_eps));
    mlp = register_module("mlp", std::make_shared<Mlp>(o.dim, hidden));
    drop_path2 = register_module("drop_path2", std::make_shared<DropPath>(o.drop_path));
}

Tensor Block::forward(const Tensor& x, Tensor* attn_probs) {
    Tensor h = x + (*drop_path1)(attn->forward((*norm1)(x), attn_probs));
    return h + (*drop_path2)((*mlp)((*norm2)(h)));
}

}  // namespace retort
