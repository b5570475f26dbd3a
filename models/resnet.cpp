// models/resnet.cpp: torchvision's ResNet-18, -34 and -50 (torchvision.models.resnet, v1.5:
// the stride of a Bottleneck sits on its 3x3 conv), with torchvision's state-dict names, so a
// checkpoint saved from torchvision loads strictly and gives the same logits.
//
// Shapes: x (B, in_chans, H, W) -> logits (B, num_classes). Any H, W >= 1 works: the head pools
// globally (as torchvision's AdaptiveAvgPool2d((1, 1))).
//
// Network: stem -> layer1 .. layer4 (stages of BasicBlocks or Bottlenecks; layer2..4 halve the
// size) -> global average pool -> fc.
//   stem=imagenet  conv1 7x7 stride 2 padding 3, bn1, ReLU, max-pool 3x3 stride 2 padding 1
//   stem=cifar     conv1 3x3 stride 1 padding 1, bn1, ReLU, no max-pool (the usual CIFAR
//                  adaptation: torchvision's model with conv1 replaced and maxpool = Identity;
//                  the state-dict names do not change, only conv1.weight's shape)
//
// Keys: num_classes (1000), in_chans (3), stem (imagenet | cifar), img_size (auto = 224 for the
// ImageNet stem, 32 for the CIFAR stem; informational: it is the size tools feed the model, the
// network itself takes any size).
//
// Taps (B batch, C channels, h x w the spatial size):
//   stem          after conv1, bn1, ReLU (and the max-pool)              (B, 64, h, w)
//   layerN        stage N's output, after its last block's final ReLU    (B, C_N, h_N, w_N)
//   layerN.pre    the same, before that ReLU (RepDistiller's preact
//                 features, what OFD distils)
//   feature_map   = layer4
//   pre_logits    the pooled features                                   (B, C)
//   dense_logits  fc applied at every position of feature_map; its mean
//                 over h, w equals the logits. Computed only on request  (B, num_classes, h, w)
//
// Initialization as torchvision: convs kaiming_normal(fan_out, relu), BatchNorm weight 1 bias 0,
// fc nn.Linear's default.
#include <memory>
#include <vector>

#include "engine/ops.h"
#include "layers/fold.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/resnet_blocks.h"
#include "models/registry.h"

namespace retort {

namespace {

struct ResNetArch {
    bool bottleneck;
    std::vector<std::int64_t> blocks_per_stage;  // four stages
};

class ResNet : public Model {
public:
    ResNet(const ModelInfo& info, const ResNetArch& arch, bool cifar_stem)
        : Model("ResNet", info), max_pool_(!cifar_stem) {
        Conv2dSpec stem{info.in_chans, 64};
        stem.kernel = cifar_stem ? 3 : 7;
        stem.stride = cifar_stem ? 1 : 2;
        stem.padding = cifar_stem ? 1 : 3;
        stem.bias = false;
        conv1_ = register_module("conv1", std::make_shared<Conv2d>(stem));
        bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));

        const std::int64_t expansion = arch.bottleneck ? Bottleneck::expansion : BasicBlock::expansion;
        std::int64_t channels = 64;
        for (std::size_t s = 0; s < arch.blocks_per_stage.size(); ++s) {
            const std::int64_t planes = 64 << s;
            auto stage = std::make_shared<ResidualStage>();
            for (std::int64_t b = 0; b < arch.blocks_per_stage[s]; ++b) {
                const std::int64_t stride = (s > 0 && b == 0) ? 2 : 1;
                if (arch.bottleneck)
                    stage->add(std::make_shared<Bottleneck>(channels, planes, stride));
                else
                    stage->add(std::make_shared<BasicBlock>(channels, planes, stride));
                channels = planes * expansion;
            }
            stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
        }
        fc_ = register_module("fc", std::make_shared<Linear>(channels, info.num_classes));

        for (auto& [name, p] : named_parameters())
            if (p.dim() == 4) init::kaiming_normal_relu(p, /*use_fan_out=*/true);
    }

    Tensor forward(const Tensor& x, Taps* taps) override {
        check_input(x);
        if (taps) check_taps(taps->requested());
        auto put = [&](const std::string& name, const Tensor& t) {
            if (taps) taps->put(name, t);
        };
        Tensor h = conv_norm_act(*conv1_, *bn1_, x, ConvEpilogue::relu);
        if (max_pool_) {
            Pool2dOptions pool;
            pool.kernel = {3, 3};
            pool.stride = {2, 2};
            pool.padding = {1, 1};
            h = max_pool2d(h, pool);
        }
        put("stem", h);
        for (std::size_t s = 0; s < stages_.size(); ++s) {
            BlockOutput r = stages_[s]->forward_with_preact(h);
            const std::string name = "layer" + std::to_string(s + 1);
            put(name, r.out);
            put(name + ".pre", r.preact);
            h = r.out;
        }
        put("feature_map", h);
        if (taps && taps->wants("dense_logits")) {
            Tensor w = fc_->weight.reshape({fc_->out_features, fc_->in_features, 1, 1});
            put("dense_logits", conv2d(h, w, fc_->bias));
        }
        Tensor pooled = mean(h, {2, 3});
        put("pre_logits", pooled);
        return fc_->forward(pooled);
    }

    std::vector<std::string> tap_names() const override {
        std::vector<std::string> names{"stem"};
        for (std::size_t s = 1; s <= stages_.size(); ++s) names.push_back("layer" + std::to_string(s));
        for (std::size_t s = 1; s <= stages_.size(); ++s)
            names.push_back("layer" + std::to_string(s) + ".pre");
        for (const char* n : {"feature_map", "pre_logits", "dense_logits"}) names.push_back(n);
        return names;
    }

private:
    bool max_pool_;
    std::shared_ptr<Conv2d> conv1_;
    std::shared_ptr<BatchNorm2d> bn1_;
    std::vector<std::shared_ptr<ResidualStage>> stages_;
    std::shared_ptr<Linear> fc_;
};

// img_size is "auto" (the stem's usual size) or a number.
std::int64_t image_size(const ModelConfig& cfg, bool cifar_stem) {
    try {
        cfg.get_choice("img_size", {"auto"});
        return cifar_stem ? 32 : 224;
    } catch (const Error&) {
        // not "auto": then it must be a number in range
    }
    try {
        return cfg.get_int("img_size", 8, 4096);
    } catch (const Error& e) {
        fail(e.what(), "; 'auto' is also accepted");
    }
}

ModelEntry resnet_entry(const std::string& name, const std::string& summary, ResNetArch arch) {
    ModelEntry e;
    e.name = name;
    e.summary = summary;
    e.keys = {
        {"num_classes", "1000", "number of classes"},
        {"in_chans", "3", "input channels"},
        {"stem", "imagenet", "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no pool)"},
        {"img_size", "auto", "image size tools feed (auto: 224 imagenet stem, 32 cifar stem)"},
    };
    e.make = [name, arch](const ModelConfig& cfg) -> std::shared_ptr<Model> {
        const bool cifar_stem = cfg.get_choice("stem", {"imagenet", "cifar"}) == "cifar";
        ModelInfo info;
        info.name = name;
        info.num_classes = cfg.get_int("num_classes", 1, 100000);
        info.in_chans = cfg.get_int("in_chans", 1, 64);
        info.img_size = image_size(cfg, cifar_stem);
        return std::make_shared<ResNet>(info, arch, cifar_stem);
    };
    return e;
}

}  // namespace

std::vector<ModelEntry> resnet_family() {
    return {
        resnet_entry("resnet18", "torchvision ResNet-18 (BasicBlock, 2-2-2-2)", {false, {2, 2, 2, 2}}),
        resnet_entry("resnet34", "torchvision ResNet-34 (BasicBlock, 3-4-6-3)", {false, {3, 4, 6, 3}}),
        resnet_entry("resnet50", "torchvision ResNet-50 (Bottleneck, 3-4-6-3)", {true, {3, 4, 6, 3}}),
    };
}

}  // namespace retort
