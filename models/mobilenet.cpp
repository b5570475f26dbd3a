// models/mobilenet.cpp: MobileNetV2 and MobileNetV3 (small, large), exactly as torchvision 0.14
// defines them (state-dict names, layouts, parameter counts, initialization), built from a spec
// such as "mobilenet_v2:num_classes=100,width_mult=0.5,stem=cifar".
// Shapes: x (B, in_chans, H, W) -> logits (B, num_classes); a map (B, C, h, w).
//
//   features    Sequential: 0 the stem ConvNormAct (3x3, stride 2), then one inverted-residual
//               block per index, then a 1x1 ConvNormAct (the "last conv")
//   pooling     the spatial mean (adaptive_avg_pool2d(x, 1)) and flatten
//   classifier  V2: Sequential(0 Dropout(0.2), 1 Linear(last_channel, K)),
//                   last_channel = make_divisible(1280 * max(1, width_mult))
//               V3: Sequential(0 Linear(6 * C_last, last_channel), 1 Hardswish, 2 Dropout(0.2),
//                   3 Linear(last_channel, K)), last_channel = make_divisible(1280 * width_mult)
//                   (large) or make_divisible(1024 * width_mult) (small)
// Channels are multiplied by width_mult and rounded by make_divisible (multiples of 8).
// Parameters with 1000 classes (torchvision): mobilenet_v2 3,504,872; mobilenet_v3_small
// 2,542,856; mobilenet_v3_large 5,483,032.
//
// Keys: num_classes, in_chans (the stem conv's input channels), width_mult in (0, 4], stem,
// img_size (informational: the models take any input size). stem=imagenet is torchvision's
// network (total stride 32). stem=cifar keeps every tensor name and shape but sets two strides
// to 1: the stem conv (features.0.0) and the first stride-2 block (V2: features.2, the first
// 24-channel block; V3-small: features.1; V3-large: features.2), so the total stride is 8 and a
// 32x32 image ends in a 4x4 map. A block built with stride 1 follows torchvision's residual rule
// (stride 1 and in == out), so V3-small's features.1 (16 -> 16 channels) gains a skip connection.
// (RepDistiller's CIFAR MobileNetV2 changes only the 24-channel stage and keeps a stride-2 first
// conv, leaving a 2x2 map at 32px; its layer names differ from torchvision's anyway.)
//
// Taps (feature indices are those of `features`; strides are for stem=imagenet):
//   stem         output of features.0                               stride 2
//   layer1..4    the last block of each resolution stage            stride 4, 8, 16, 32
//                  mobilenet_v2:        features.3, 6, 13, 17       (24, 32, 96, 320 channels x w)
//                  mobilenet_v3_small:  features.1, 3, 8, 11        (16, 24, 48, 96)
//                  mobilenet_v3_large:  features.3, 6, 12, 15       (24, 40, 112, 160)
//   feature_map  output of the last conv (the last feature), before pooling: (B, C, h, w)
//   pre_logits   pooled and flattened feature_map: (B, C)
//   dense_logits the classifier applied at every position of feature_map, as in eval mode
//                (Dropout skipped): (B, K, h, w); computed only when requested. For V2 the
//                classifier is linear, so its spatial mean equals the logits (in eval mode).
//                For V3 the hidden Linear -> Hardswish is applied per position too, so the
//                spatial mean of dense_logits is NOT the logits (Hardswish does not commute
//                with the mean).
// Backward: the model only composes layers; nothing beyond what each op saves is kept.
#include <algorithm>
#include <iterator>
#include <limits>

#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/mobile_blocks.h"
#include "models/registry.h"

namespace retort {

namespace {

// The feature indices whose outputs are the stem, layer1..layer4 and feature_map taps.
struct StageTaps {
    std::size_t stem, layer1, layer2, layer3, layer4, feature_map;
};

class MobileNet final : public Model {
public:
    MobileNet(const std::string& type_name, ModelInfo info, std::shared_ptr<Sequential> features,
              std::shared_ptr<Sequential> classifier, StageTaps stage_taps)
        : Model(type_name, std::move(info)), stage_taps_(stage_taps) {
        features_ = register_module("features", std::move(features));
        classifier_ = register_module("classifier", std::move(classifier));
        initialize();
    }

    Tensor forward(const Tensor& x, Taps* taps) override {
        check_input(x);
        Taps none;
        Taps& out = taps ? *taps : none;
        check_taps(out.requested());
        Tensor h = x;
        for (std::size_t i = 0; i < features_->size(); ++i) {
            h = (*features_)[i]->forward(h);
            put_stage_taps(i, h, out);
        }
        Tensor pooled = mean(h, {2, 3});  // (B, C)
        out.put("pre_logits", pooled);
        if (out.wants("dense_logits")) out.put("dense_logits", dense_logits(h));
        return classifier_->forward(pooled);
    }

    std::vector<std::string> tap_names() const override {
        return {"stem",        "layer1",     "layer2",      "layer3",
                "layer4",      "feature_map", "pre_logits", "dense_logits"};
    }

private:
    void put_stage_taps(std::size_t i, const Tensor& h, Taps& out) const {
        const StageTaps& s = stage_taps_;
        if (i == s.stem) out.put("stem", h);
        if (i == s.layer1) out.put("layer1", h);
        if (i == s.layer2) out.put("layer2", h);
        if (i == s.layer3) out.put("layer3", h);
        if (i == s.layer4) out.put("layer4", h);
        if (i == s.feature_map) out.put("feature_map", h);
    }

    // The classifier at each position: (B, C, h, w) -> (B, h, w, C) -> layers -> (B, K, h, w).
    Tensor dense_logits(const Tensor& map) const {
        Tensor d = permute(map, {0, 2, 3, 1});
        for (std::size_t i = 0; i < classifier_->size(); ++i) {
            UnaryModule* layer = (*classifier_)[i].get();
            if (dynamic_cast<Dropout*>(layer)) continue;  // eval-mode semantics
            d = layer->forward(d);
        }
        return permute(d, {0, 3, 1, 2});
    }

    // torchvision: conv weights kaiming_normal(fan_out, relu) and zero biases; BatchNorm 1 and 0
    // (the layer's own defaults); Linear weights normal(0, 0.01) and zero biases.
    void initialize() { initialize_tree(*this); }
    static void initialize_tree(Module& m) {
        if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
            init::kaiming_normal_relu(conv->weight, /*use_fan_out=*/true);
            if (conv->bias.defined()) init::constant(conv->bias, 0.0);
        } else if (auto* fc = dynamic_cast<Linear*>(&m)) {
            init::normal(fc->weight, 0.0, 0.01);
            if (fc->bias.defined()) init::constant(fc->bias, 0.0);
        }
        for (auto& [_, child] : m.named_children()) initialize_tree(*child);
    }

    std::shared_ptr<Sequential> features_, classifier_;
    StageTaps stage_taps_;
};

// The keys every MobileNet shares, read and checked.
struct CommonKeys {
    ModelInfo info;
    double width_mult;
    bool cifar;
};

CommonKeys read_common_keys(const ModelConfig& cfg) {
    CommonKeys k;
    k.info.name = cfg.model();
    k.info.num_classes = cfg.get_int("num_classes", 1, 100000);
    k.info.in_chans = cfg.get_int("in_chans", 1, 64);
    k.info.img_size = cfg.get_int("img_size", 8, 8192);
    const double any = std::numeric_limits<double>::max();
    k.width_mult = cfg.get_double("width_mult", -any, any);
    require(k.width_mult > 0 && k.width_mult <= 4, cfg.model(),
            ": key 'width_mult' must be in (0, 4], got ", k.width_mult);
    k.cifar = cfg.get_choice("stem", {"imagenet", "cifar"}) == "cifar";
    return k;
}

std::vector<ModelKey> mobilenet_keys() {
    return {
        {"num_classes", "1000", "number of classes, [1, 100000]"},
        {"in_chans", "3", "input image channels, [1, 64]"},
        {"width_mult", "1.0",
         "channel multiplier, (0, 4]; channels are rounded to multiples of 8"},
        {"stem", "imagenet",
         "imagenet (torchvision, total stride 32) or cifar (stem conv and first stride-2 block "
         "at stride 1: total stride 8, a 4x4 final map at 32x32)"},
        {"img_size", "224", "input size the model is meant for, [8, 8192] (informational)"},
    };
}

// ---- MobileNetV2 (Sandler et al., 2018) ----

std::shared_ptr<Model> make_mobilenet_v2(const ModelConfig& cfg) {
    const CommonKeys k = read_common_keys(cfg);
    const double w = k.width_mult;
    struct Stage { std::int64_t expand, channels, blocks, stride; };
    const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                            {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    const std::size_t first_stride2_stage = 1;  // the 24-channel stage, features.2

    auto features = std::make_shared<Sequential>();
    std::int64_t channels = make_divisible(32 * w);
    features->push_back(std::make_shared<ConvNormAct>(
        ConvNormActSpec{k.info.in_chans, channels, 3, k.cifar ? 1 : 2, 1, "relu6", {}}));
    for (std::size_t s = 0; s < std::size(stages); ++s) {
        const Stage& st = stages[s];
        const std::int64_t out = make_divisible(static_cast<double>(st.channels) * w);
        const std::int64_t stride = (k.cifar && s == first_stride2_stage) ? 1 : st.stride;
        for (std::int64_t b = 0; b < st.blocks; ++b) {
            features->push_back(std::make_shared<InvertedResidualV2>(
                channels, out, b == 0 ? stride : 1, st.expand));
            channels = out;
        }
    }
    const std::int64_t last_channel = make_divisible(1280 * std::max(1.0, w));
    features->push_back(std::make_shared<ConvNormAct>(
        ConvNormActSpec{channels, last_channel, 1, 1, 1, "relu6", {}}));

    auto classifier = std::make_shared<Sequential>();
    classifier->push_back(std::make_shared<Dropout>(0.2));
    classifier->push_back(std::make_shared<Linear>(last_channel, k.info.num_classes));
    return std::make_shared<MobileNet>("MobileNetV2", k.info, features, classifier,
                                       StageTaps{0, 3, 6, 13, 17, 18});
}

// ---- MobileNetV3 (Howard et al., 2019) ----

// A row of the paper's Tables 1 and 2 (channels before width_mult), as torchvision lists them.
struct V3Row {
    std::int64_t in, kernel, expanded, out;
    bool se;
    const char* activation;
    std::int64_t stride;
};

const std::vector<V3Row>& v3_large_rows() {
    static const std::vector<V3Row> rows = {
        {16, 3, 16, 16, false, "relu", 1},       {16, 3, 64, 24, false, "relu", 2},
        {24, 3, 72, 24, false, "relu", 1},       {24, 5, 72, 40, true, "relu", 2},
        {40, 5, 120, 40, true, "relu", 1},       {40, 5, 120, 40, true, "relu", 1},
        {40, 3, 240, 80, false, "hardswish", 2}, {80, 3, 200, 80, false, "hardswish", 1},
        {80, 3, 184, 80, false, "hardswish", 1}, {80, 3, 184, 80, false, "hardswish", 1},
        {80, 3, 480, 112, true, "hardswish", 1}, {112, 3, 672, 112, true, "hardswish", 1},
        {112, 5, 672, 160, true, "hardswish", 2}, {160, 5, 960, 160, true, "hardswish", 1},
        {160, 5, 960, 160, true, "hardswish", 1},
    };
    return rows;
}

const std::vector<V3Row>& v3_small_rows() {
    static const std::vector<V3Row> rows = {
        {16, 3, 16, 16, true, "relu", 2},        {16, 3, 72, 24, false, "relu", 2},
        {24, 3, 88, 24, false, "relu", 1},       {24, 5, 96, 40, true, "hardswish", 2},
        {40, 5, 240, 40, true, "hardswish", 1},  {40, 5, 240, 40, true, "hardswish", 1},
        {40, 5, 120, 48, true, "hardswish", 1},  {48, 5, 144, 48, true, "hardswish", 1},
        {48, 5, 288, 96, true, "hardswish", 2},  {96, 5, 576, 96, true, "hardswish", 1},
        {96, 5, 576, 96, true, "hardswish", 1},
    };
    return rows;
}

// rows: the block table; first_stride2_row: the row stem=cifar builds with stride 1;
// head_channels: last_channel before width_mult (1280 large, 1024 small).
std::shared_ptr<Model> make_mobilenet_v3(const ModelConfig& cfg, const std::vector<V3Row>& rows,
                                         std::size_t first_stride2_row,
                                         std::int64_t head_channels, StageTaps stage_taps) {
    const CommonKeys k = read_common_keys(cfg);
    auto scaled = [&](std::int64_t c) { return make_divisible(static_cast<double>(c) * k.width_mult); };
    const NormSettings norm{0.001, 0.01};

    auto features = std::make_shared<Sequential>();
    features->push_back(std::make_shared<ConvNormAct>(ConvNormActSpec{
        k.info.in_chans, scaled(rows.front().in), 3, k.cifar ? 1 : 2, 1, "hardswish", norm}));
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const V3Row& row = rows[r];
        const std::int64_t stride = (k.cifar && r == first_stride2_row) ? 1 : row.stride;
        features->push_back(std::make_shared<InvertedResidualV3>(
            InvertedResidualV3Spec{scaled(row.in), row.kernel, scaled(row.expanded),
                                   scaled(row.out), row.se, row.activation, stride},
            norm));
    }
    const std::int64_t last_in = scaled(rows.back().out), last_out = 6 * last_in;
    features->push_back(std::make_shared<ConvNormAct>(
        ConvNormActSpec{last_in, last_out, 1, 1, 1, "hardswish", norm}));

    const std::int64_t last_channel = scaled(head_channels);
    auto classifier = std::make_shared<Sequential>();
    classifier->push_back(std::make_shared<Linear>(last_out, last_channel));
    classifier->push_back(std::make_shared<Activation>("hardswish"));
    classifier->push_back(std::make_shared<Dropout>(0.2));
    classifier->push_back(std::make_shared<Linear>(last_channel, k.info.num_classes));
    return std::make_shared<MobileNet>("MobileNetV3", k.info, features, classifier, stage_taps);
}

}  // namespace

std::vector<ModelEntry> mobilenet_family() {
    return {
        {"mobilenet_v2", "MobileNetV2 (torchvision), 3.5M parameters at 1000 classes",
         mobilenet_keys(), make_mobilenet_v2},
        {"mobilenet_v3_small", "MobileNetV3-Small (torchvision), 2.5M parameters at 1000 classes",
         mobilenet_keys(),
         [](const ModelConfig& cfg) {
             return make_mobilenet_v3(cfg, v3_small_rows(), 0, 1024, StageTaps{0, 1, 3, 8, 11, 12});
         }},
        {"mobilenet_v3_large", "MobileNetV3-Large (torchvision), 5.5M parameters at 1000 classes",
         mobilenet_keys(),
         [](const ModelConfig& cfg) {
             return make_mobilenet_v3(cfg, v3_large_rows(), 1, 1280, StageTaps{0, 3, 6, 12, 15, 16});
         }},
    };
}

}  // namespace retort
