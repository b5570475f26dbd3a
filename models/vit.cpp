// models/vit.cpp: Vision Transformers (Dosovitskiy et al., 2021) and DeiT with a distillation
// token (Touvron et al., 2021), as timm's VisionTransformer and VisionTransformerDistilled.
//
// Shapes: B batch, C channels (embed_dim), P patch size, Np = (img_size / P)^2 patch tokens,
// T prefix tokens (1: class; DeiT 2: class, distillation), N = T + Np tokens, H heads, K classes.
//
//   x (B, in_chans, img, img) -> patch_embed (B, Np, C) -> [cls_token, (dist_token), patches]
//   + pos_embed (1, N, C) -> blocks.0 .. blocks.{depth-1} -> norm (LayerNorm, eps 1e-6)
//   ViT:  logits = head(token 0)                                       (global_pool = "token")
//   DeiT: cls = head(token 0), dist = head_dist(token 1);
//         eval:  logits = (cls + dist) / 2                          (timm's inference output)
//         train: logits = cls; the distillation head is read from the dist_logits tap, which a
//                DeiT objective (hard or soft distillation through the dist token) trains.
//                A plain CE run that ignores dist_logits leaves head_dist untrained while eval
//                still averages it in: request dist_logits and give it a loss.
//         eval_head = cskd: eval logits = (cls + dist + mean over the patches of
//                dense_dist_logits) / 3, the inference rule of CSKD (Zhao et al., ICCV 2023; its
//                vision_transformer.py), for a student trained with the cskd objective. The
//                training output is unchanged.
// Parameter names are timm's: cls_token, pos_embed, (dist_token), patch_embed.proj.*,
// blocks.L.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.*, norm.*, head.*,
// (head_dist.*), registered in timm's state_dict order.
//
// Taps (L counts from 0):
//   tokens.L           output of block L, every token (class and dist included)    (B, N, C)
//   attn.L             attention probabilities of block L                          (B, H, N, N)
//   patch_tokens       patch tokens of the last block AFTER the final norm          (B, Np, C)
//   pre_logits         the pooled feature the head sees: the class token after the norm;
//                      DeiT: (class + dist token) / 2, as timm's forward_head(pre_logits=True)
//                                                                                  (B, C)
//   cls_logits         head(class token); equals the logits for a plain ViT        (B, K)
//   dist_logits        DeiT: head_dist(distillation token)                         (B, K)
//   dense_dist_logits  DeiT: head_dist on every patch token after the norm,
//                      computed only when requested                                (B, Np, K)
// Attention probabilities are kept only when an attn.L tap asks for them.
//
// Initialization as timm's init_weights (mode ""): Linear weights trunc_normal(std .02) with
// zero bias, pos_embed and dist_token trunc_normal(std .02), cls_token normal(std 1e-6),
// patch_embed.proj PyTorch's Conv2d default, LayerNorm 1 and 0.
// Stochastic depth: block L drops its branches with p = drop_path_rate * L / (depth - 1).
#include <memory>

#include "engine/ops.h"
#include "layers/init.h"
#include "layers/sequential.h"
#include "layers/vit_blocks.h"
#include "models/registry.h"

namespace retort {

namespace {

struct VitConfig {
    std::int64_t img_size = 224, patch_size = 16, in_chans = 3, num_classes = 1000;
    std::int64_t embed_dim = 768, depth = 12, num_heads = 12;
    double mlp_ratio = 4.0, drop_path_rate = 0.0;
    bool distilled = false;
    bool cskd_eval_head = false;  // DeiT: eval output averages the dense distillation head too
};

// timm's init_weights_vit_timm, applied to every Linear in the tree.
void init_linears(Module& m) {
    for (auto& [_, child] : m.named_children()) {
        if (auto* lin = dynamic_cast<Linear*>(child.get())) {
            init::trunc_normal(lin->weight, 0.0, 0.02, -2.0, 2.0);
            if (lin->bias.defined()) init::constant(lin->bias, 0.0);
        }
        init_linears(*child);
    }
}

class VisionTransformer : public Model {
public:
    VisionTransformer(const std::string& name, const VitConfig& c)
        : Model(c.distilled ? "VisionTransformerDistilled" : "VisionTransformer",
                ModelInfo{name, c.num_classes, c.in_chans, c.img_size}),
          cfg_(c), prefix_tokens_(c.distilled ? 2 : 1) {
        const std::int64_t C = c.embed_dim;
        num_patches_ = (c.img_size / c.patch_size) * (c.img_size / c.patch_size);
        // Parameters first, in timm's order (the state dict lists them before the children).
        cls_token_ = register_parameter("cls_token", zeros({1, 1, C}));
        pos_embed_ = register_parameter("pos_embed", zeros({1, num_patches_ + prefix_tokens_, C}));
        if (c.distilled) dist_token_ = register_parameter("dist_token", zeros({1, 1, C}));

        patch_embed_ = register_module(
            "patch_embed", std::make_shared<PatchEmbed>(c.img_size, c.patch_size, c.in_chans, C));
        auto blocks = register_module("blocks", std::make_shared<Sequential>());
        for (std::int64_t l = 0; l < c.depth; ++l) {
            BlockOptions o;
            o.dim = C;
            o.num_heads = c.num_heads;
            o.mlp_ratio = c.mlp_ratio;
            o.drop_path = c.depth > 1 ? c.drop_path_rate * static_cast<double>(l) /
                                            static_cast<double>(c.depth - 1)
                                      : 0.0;
            blocks_.push_back(blocks->push_back(std::make_shared<Block>(o)));
        }
        norm_ = register_module("norm", std::make_shared<LayerNorm>(C, 1e-6));
        head_ = register_module("head", std::make_shared<Linear>(C, c.num_classes));
        if (c.distilled)
            head_dist_ = register_module("head_dist", std::make_shared<Linear>(C, c.num_classes));

        init::trunc_normal(pos_embed_, 0.0, 0.02, -2.0, 2.0);
        init::normal(cls_token_, 0.0, 1e-6);
        if (c.distilled) init::trunc_normal(dist_token_, 0.0, 0.02, -2.0, 2.0);
        init_linears(*this);
    }

    Tensor forward(const Tensor& x, Taps* taps) override {
        check_input(x);
        require(x.size(2) == cfg_.img_size && x.size(3) == cfg_.img_size, info().name,
                ": input is ", x.size(2), "x", x.size(3), " but the model was built for ",
                cfg_.img_size, "x", cfg_.img_size, " (set img_size in the model spec)");
        if (taps) check_taps(taps->requested());
        auto wants = [&](const std::string& tap) { return taps && taps->wants(tap); };
        auto put = [&](const std::string& tap, const Tensor& t) {
            if (taps) taps->put(tap, t);
        };

        const std::int64_t B = x.size(0), C = cfg_.embed_dim;
        Tensor t = embed(x);
        for (std::size_t l = 0; l < blocks_.size(); ++l) {
            const std::string index = std::to_string(l);
            Tensor probs;
            t = blocks_[l]->forward(t, wants("attn." + index) ? &probs : nullptr);
            put("tokens." + index, t);
            put("attn." + index, probs);
        }
        t = (*norm_)(t);

        Tensor cls = narrow(t, 1, 0, 1).reshape({B, C});
        Tensor cls_logits = (*head_)(cls);
        put("cls_logits", cls_logits);
        const bool cskd_output = cfg_.cskd_eval_head && !is_training();
        Tensor patches;
        if (wants("patch_tokens") || wants("dense_dist_logits") || cskd_output) {
            patches = narrow(t, 1, prefix_tokens_, num_patches_);
            put("patch_tokens", patches);
        }
        if (!cfg_.distilled) {
            put("pre_logits", cls);
            return cls_logits;
        }

        Tensor dist = narrow(t, 1, 1, 1).reshape({B, C});
        Tensor dist_logits = (*head_dist_)(dist);
        put("dist_logits", dist_logits);
        if (wants("pre_logits")) put("pre_logits", (cls + dist) * 0.5);
        Tensor dense_dist_logits;
        if (wants("dense_dist_logits") || cskd_output) dense_dist_logits = (*head_dist_)(patches);
        put("dense_dist_logits", dense_dist_logits);
        if (cskd_output) return (cls_logits + dist_logits + mean(dense_dist_logits, {1})) / 3.0;
        return is_training() ? cls_logits : (cls_logits + dist_logits) * 0.5;
    }

    std::vector<std::string> tap_names() const override {
        std::vector<std::string> names;
        for (std::int64_t l = 0; l < cfg_.depth; ++l) names.push_back("tokens." + std::to_string(l));
        for (std::int64_t l = 0; l < cfg_.depth; ++l) names.push_back("attn." + std::to_string(l));
        for (const char* n : {"patch_tokens", "pre_logits", "cls_logits"}) names.push_back(n);
        if (cfg_.distilled)
            for (const char* n : {"dist_logits", "dense_dist_logits"}) names.push_back(n);
        return names;
    }

private:
    // Patch tokens with the prefix token(s) in front and the position embedding added: (B, N, C).
    Tensor embed(const Tensor& x) {
        Tensor patches = (*patch_embed_)(x);
        const std::int64_t B = patches.size(0), C = cfg_.embed_dim;
        std::vector<Tensor> parts{broadcast_to(cls_token_, {B, 1, C})};
        if (cfg_.distilled) parts.push_back(broadcast_to(dist_token_, {B, 1, C}));
        parts.push_back(patches);
        return concat(parts, 1) + pos_embed_;
    }

    VitConfig cfg_;
    std::int64_t prefix_tokens_, num_patches_ = 0;
    Tensor cls_token_, pos_embed_, dist_token_;
    std::shared_ptr<PatchEmbed> patch_embed_;
    std::vector<std::shared_ptr<Block>> blocks_;
    std::shared_ptr<LayerNorm> norm_;
    std::shared_ptr<Linear> head_, head_dist_;
};

// Reads and cross-checks the keys of a spec.
VitConfig read_config(const ModelConfig& m, bool distilled) {
    VitConfig c;
    c.distilled = distilled;
    c.num_classes = m.get_int("num_classes", 1, 100000);
    c.in_chans = m.get_int("in_chans", 1, 64);
    c.img_size = m.get_int("img_size", 1, 4096);
    c.patch_size = m.get_int("patch_size", 1, 4096);
    c.embed_dim = m.get_int("embed_dim", 1, 16384);
    c.depth = m.get_int("depth", 1, 256);
    c.num_heads = m.get_int("num_heads", 1, 1024);
    c.mlp_ratio = m.get_double("mlp_ratio", 0.0, 64.0);
    c.drop_path_rate = m.get_double("drop_path_rate", 0.0, 0.99);
    if (distilled) c.cskd_eval_head = m.get_choice("eval_head", {"default", "cskd"}) == "cskd";
    require(c.img_size % c.patch_size == 0, m.model(), ": img_size (", c.img_size,
            ") must be divisible by patch_size (", c.patch_size, ")");
    require(c.embed_dim % c.num_heads == 0, m.model(), ": embed_dim (", c.embed_dim,
            ") must be divisible by num_heads (", c.num_heads, ")");
    require(static_cast<std::int64_t>(static_cast<double>(c.embed_dim) * c.mlp_ratio) >= 1,
            m.model(), ": mlp_ratio (", c.mlp_ratio, ") times embed_dim (", c.embed_dim,
            ") must give an MLP hidden size of at least 1");
    return c;
}

ModelEntry vit_entry(const std::string& name, const std::string& summary, std::int64_t embed_dim,
                     std::int64_t num_heads, bool distilled) {
    std::vector<ModelKey> keys{
        {"num_classes", "1000", "number of classes of the head(s)"},
        {"in_chans", "3", "input channels"},
        {"img_size", "224", "input height and width; a multiple of patch_size"},
        {"patch_size", "16", "side of the square patches"},
        {"embed_dim", std::to_string(embed_dim), "token width C; a multiple of num_heads"},
        {"depth", "12", "number of transformer blocks"},
        {"num_heads", std::to_string(num_heads), "attention heads per block"},
        {"mlp_ratio", "4.0", "MLP hidden size = int(embed_dim * mlp_ratio)"},
        {"drop_path_rate", "0.0", "stochastic depth of the last block (0 for the first)"},
    };
    if (distilled)
        keys.push_back({"eval_head", "default",
                        "eval output: default (cls + dist) / 2, or cskd (cls + dist + mean of "
                        "dense_dist_logits) / 3"});
    return ModelEntry{name, summary, keys, [name, distilled](const ModelConfig& m) {
                          return std::shared_ptr<Model>(
                              std::make_shared<VisionTransformer>(name, read_config(m, distilled)));
                      }};
}

}  // namespace

std::vector<ModelEntry> vit_family() {
    return {
        vit_entry("vit_tiny_patch16_224", "ViT-Ti/16 (timm), 5.7M parameters", 192, 3, false),
        vit_entry("vit_small_patch16_224", "ViT-S/16 (timm), 22.1M parameters", 384, 6, false),
        vit_entry("vit_base_patch16_224", "ViT-B/16 (timm), 86.6M parameters", 768, 12, false),
        vit_entry("deit_tiny_distilled_patch16_224",
                  "DeiT-Ti with distillation token (timm), 5.9M parameters", 192, 3, true),
        vit_entry("deit_small_distilled_patch16_224",
                  "DeiT-S with distillation token (timm), 22.4M parameters", 384, 6, true),
    };
}

}  // namespace retort
