// models/cifar_resnet.cpp: the CIFAR networks of RepDistiller (github.com/HobbitLong/RepDistiller,
// models/resnet.py and models/wrn.py), the students and teachers of the CRD benchmark and of most
// CIFAR-100 distillation papers since, with RepDistiller's state-dict names.
//
// Shapes: x (B, in_chans, H, W) -> logits (B, num_classes); built for 32 x 32 images.
//
// CIFAR ResNets (resnet8 ... resnet110: depth 6n+2, widths 16-16-32-64; resnet8x4 and resnet32x4:
// widths 32-64-128-256):
//   conv1 3x3 stride 1, bn1, ReLU -> layer1, layer2, layer3 (n BasicBlocks each; layer2 and
//   layer3 start with stride 2; a downsample shortcut wherever the shape changes) -> pool -> fc.
// Wide ResNets wrn_D_W (depth D = 6n+4, widths 16, 16W, 32W, 64W):
//   conv1 3x3 -> block1, block2, block3 (NetworkBlocks of n pre-activation WideBasicBlocks, with
//   dropout drop_rate between their convs when > 0) -> bn1, ReLU -> pool -> fc.
//
// Pooling: RepDistiller uses AvgPool2d(8), which on 32 x 32 inputs (an 8 x 8 final map) is the
// global average. Here the pool is always global, so other sizes give a proper image-level
// feature instead of an error or a corner average; at 32 x 32 the two are the same.
//
// Keys: num_classes (100), in_chans (3; RepDistiller fixes 3), img_size (32, informational),
// and for wide ResNets drop_rate (0, RepDistiller's dropRate).
//
// Taps (B batch, C channels, h x w the spatial size):
//   stem          after conv1, bn1, ReLU (WRN: after conv1 alone)           (B, C_0, h, w)
//   layer1..3     the stage outputs (RepDistiller's features f1..f3 with preact=False); for the
//                 ResNets after the last block's ReLU. WRN stages are named block1..block3 in the
//                 state dict but their taps are layer1..layer3 like every other CNN here; being
//                 pre-activation networks they have no ReLU at a stage's end, so layerN is the
//                 plain residual sum.
//   layer1..3.pre what RepDistiller returns with preact=True (the inputs of OFD): for the ResNets
//                 the last block's sum before its final ReLU; for WRNs the stage output after the
//                 next BatchNorm, before the next ReLU (block(N+1).layer.0.bn1, or the final bn1
//                 for layer3). Read from the forward pass itself, so train mode does not apply a
//                 BatchNorm twice (RepDistiller recomputes it, updating its statistics again).
//   feature_map   the map the classifier pools: = layer3 for the ResNets, relu(bn1(layer3)) for
//                 WRNs
//   pre_logits    the pooled features                                       (B, C)
//   dense_logits  fc applied at every position of feature_map; its mean over h, w equals the
//                 logits. Computed only on request                           (B, num_classes, h, w)
//
// Initialization as RepDistiller: convs kaiming_normal(fan_out, relu) (wrn.py writes it as
// normal(0, sqrt(2 / (k k out))), the same thing), BatchNorm weight 1 bias 0, fc nn.Linear's
// default, with the bias zeroed for WRNs.
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

std::shared_ptr<Conv2d> stem_conv(std::int64_t in, std::int64_t out) {
    Conv2dSpec spec{in, out};
    spec.kernel = 3;
    spec.padding = 1;
    spec.bias = false;
    return std::make_shared<Conv2d>(spec);
}

// The head both networks share: pool globally, then fc; dense_logits on request.
Tensor classify(const Tensor& feature_map, Linear& fc, Taps* taps) {
    if (taps) taps->put("feature_map", feature_map);
    if (taps && taps->wants("dense_logits")) {
        Tensor w = fc.weight.reshape({fc.out_features, fc.in_features, 1, 1});
        taps->put("dense_logits", conv2d(feature_map, w, fc.bias));
    }
    Tensor pooled = mean(feature_map, {2, 3});
    if (taps) taps->put("pre_logits", pooled);
    return fc.forward(pooled);
}

std::vector<std::string> three_stage_taps() {
    return {"stem",       "layer1",     "layer2",      "layer3",     "layer1.pre",
            "layer2.pre", "layer3.pre", "feature_map", "pre_logits", "dense_logits"};
}

void init_convs_fan_out(const Module& model) {
    for (auto& [name, p] : model.named_parameters())
        if (p.dim() == 4) init::kaiming_normal_relu(p, /*use_fan_out=*/true);
}

// RepDistiller's models/resnet.py ResNet with BasicBlocks.
class CifarResNet : public Model {
public:
    CifarResNet(const ModelInfo& info, std::int64_t depth, const std::vector<std::int64_t>& widths)
        : Model("CifarResNet", info) {
        internal_check((depth - 2) % 6 == 0 && widths.size() == 4, "CIFAR ResNet depth is 6n+2");
        const std::int64_t n = (depth - 2) / 6;
        conv1_ = register_module("conv1", stem_conv(info.in_chans, widths[0]));
        bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(widths[0]));
        std::int64_t channels = widths[0];
        for (std::size_t s = 0; s < 3; ++s) {
            auto stage = std::make_shared<ResidualStage>();
            for (std::int64_t b = 0; b < n; ++b) {
                const std::int64_t stride = (s > 0 && b == 0) ? 2 : 1;
                stage->add(std::make_shared<BasicBlock>(channels, widths[s + 1], stride));
                channels = widths[s + 1];
            }
            stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
        }
        fc_ = register_module("fc", std::make_shared<Linear>(channels, info.num_classes));
        init_convs_fan_out(*this);
    }

    Tensor forward(const Tensor& x, Taps* taps) override {
        check_input(x);
        if (taps) check_taps(taps->requested());
        Tensor h = conv_norm_act(*conv1_, *bn1_, x, ConvEpilogue::relu);
        if (taps) taps->put("stem", h);
        for (std::size_t s = 0; s < stages_.size(); ++s) {
            BlockOutput r = stages_[s]->forward_with_preact(h);
            if (taps) {
                taps->put("layer" + std::to_string(s + 1), r.out);
                taps->put("layer" + std::to_string(s + 1) + ".pre", r.preact);
            }
            h = r.out;
        }
        return classify(h, *fc_, taps);
    }

    std::vector<std::string> tap_names() const override { return three_stage_taps(); }

private:
    std::shared_ptr<Conv2d> conv1_;
    std::shared_ptr<BatchNorm2d> bn1_;
    std::vector<std::shared_ptr<ResidualStage>> stages_;
    std::shared_ptr<Linear> fc_;
};

// RepDistiller's models/wrn.py WideResNet.
class WideResNet : public Model {
public:
    WideResNet(const ModelInfo& info, std::int64_t depth, std::int64_t widen, double drop_rate)
        : Model("WideResNet", info) {
        internal_check((depth - 4) % 6 == 0, "WRN depth is 6n+4");
        const std::int64_t n = (depth - 4) / 6;
        const std::int64_t widths[4] = {16, 16 * widen, 32 * widen, 64 * widen};
        conv1_ = register_module("conv1", stem_conv(info.in_chans, widths[0]));
        for (std::size_t s = 0; s < 3; ++s)
            stages_.push_back(register_module(
                "block" + std::to_string(s + 1),
                std::make_shared<WideStage>(n, widths[s], widths[s + 1], s == 0 ? 1 : 2, drop_rate)));
        bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(widths[3]));
        fc_ = register_module("fc", std::make_shared<Linear>(widths[3], info.num_classes));
        init_convs_fan_out(*this);
        init::constant(fc_->bias, 0.0);
    }

    Tensor forward(const Tensor& x, Taps* taps) override {
        check_input(x);
        if (taps) check_taps(taps->requested());
        Tensor h = conv1_->forward(x);
        if (taps) taps->put("stem", h);
        for (std::size_t s = 0; s < stages_.size(); ++s) {
            BlockOutput r = stages_[s]->forward_with_preact(h);
            // the BatchNorm that opens this stage is the previous stage's ".pre" view
            if (taps && s > 0) taps->put("layer" + std::to_string(s) + ".pre", r.preact);
            if (taps) taps->put("layer" + std::to_string(s + 1), r.out);
            h = r.out;
        }
        Tensor normalized = bn1_->forward(h);
        if (taps) taps->put("layer3.pre", normalized);
        return classify(relu(normalized), *fc_, taps);
    }

    std::vector<std::string> tap_names() const override { return three_stage_taps(); }

private:
    std::shared_ptr<Conv2d> conv1_;
    std::vector<std::shared_ptr<WideStage>> stages_;
    std::shared_ptr<BatchNorm2d> bn1_;
    std::shared_ptr<Linear> fc_;
};

std::vector<ModelKey> common_keys() {
    return {
        {"num_classes", "100", "number of classes"},
        {"in_chans", "3", "input channels"},
        {"img_size", "32", "image size tools feed (the network takes any size)"},
    };
}

ModelInfo read_info(const std::string& name, const ModelConfig& cfg) {
    ModelInfo info;
    info.name = name;
    info.num_classes = cfg.get_int("num_classes", 1, 100000);
    info.in_chans = cfg.get_int("in_chans", 1, 64);
    info.img_size = cfg.get_int("img_size", 8, 4096);
    return info;
}

ModelEntry cifar_resnet_entry(const std::string& name, std::int64_t depth,
                              std::vector<std::int64_t> widths) {
    ModelEntry e;
    e.name = name;
    e.summary = cat("RepDistiller CIFAR ResNet-", depth, ", widths ", widths[1], "-", widths[2],
                    "-", widths[3]);
    e.keys = common_keys();
    e.make = [name, depth, widths](const ModelConfig& cfg) -> std::shared_ptr<Model> {
        return std::make_shared<CifarResNet>(read_info(name, cfg), depth, widths);
    };
    return e;
}

ModelEntry wrn_entry(std::int64_t depth, std::int64_t widen) {
    ModelEntry e;
    e.name = cat("wrn_", depth, "_", widen);
    e.summary = cat("RepDistiller wide ResNet, depth ", depth, ", widen factor ", widen);
    e.keys = common_keys();
    e.keys.push_back({"drop_rate", "0", "dropout between a block's two convs (training only)"});
    e.make = [name = e.name, depth, widen](const ModelConfig& cfg) -> std::shared_ptr<Model> {
        const double drop_rate = cfg.get_double("drop_rate", 0.0, 0.9);
        return std::make_shared<WideResNet>(read_info(name, cfg), depth, widen, drop_rate);
    };
    return e;
}

}  // namespace

std::vector<ModelEntry> cifar_resnet_family() {
    const std::vector<std::int64_t> narrow{16, 16, 32, 64}, x4{32, 64, 128, 256};
    return {
        cifar_resnet_entry("resnet8", 8, narrow),     cifar_resnet_entry("resnet14", 14, narrow),
        cifar_resnet_entry("resnet20", 20, narrow),   cifar_resnet_entry("resnet32", 32, narrow),
        cifar_resnet_entry("resnet44", 44, narrow),   cifar_resnet_entry("resnet56", 56, narrow),
        cifar_resnet_entry("resnet110", 110, narrow), cifar_resnet_entry("resnet8x4", 8, x4),
        cifar_resnet_entry("resnet32x4", 32, x4),     wrn_entry(16, 1),
        wrn_entry(16, 2),                             wrn_entry(40, 1),
        wrn_entry(40, 2),
    };
}

}  // namespace retort
