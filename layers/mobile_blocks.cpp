// layers/mobile_blocks.cpp: ConvNormAct, SqueezeExcitation and the inverted-residual blocks of
// MobileNetV2 / V3.
// Shapes: B batch, C channels, H x W spatial size; every block maps (B, C, H, W) to
// (B, C', ceil(H / stride), ceil(W / stride)).
// Matches torchvision 0.14: ops.Conv2dNormActivation, ops.SqueezeExcitation (ReLU, Hardsigmoid as
// MobileNetV3 configures it), models.mobilenetv2.InvertedResidual and
// models.mobilenetv3.InvertedResidual, child for child.
// Backward: these blocks only compose engine ops (conv2d, batch_norm, activations, mean, mul,
// add), so each op saves what its own backward needs and nothing else is kept here.
#include "layers/mobile_blocks.h"

#include <algorithm>

#include "engine/ops.h"
#include "layers/fold.h"
#include "layers/activation.h"

namespace retort {

std::int64_t make_divisible(double v, std::int64_t divisor) {
    // int(v + divisor / 2) // divisor * divisor, as Python computes it for positive v
    std::int64_t rounded = static_cast<std::int64_t>(v + static_cast<double>(divisor) / 2.0);
    std::int64_t out = std::max(divisor, rounded / divisor * divisor);
    if (static_cast<double>(out) < 0.9 * v) out += divisor;
    return out;
}

ConvNormAct::ConvNormAct(const ConvNormActSpec& s) {
    Conv2dSpec c;
    c.in_channels = s.in_channels;
    c.out_channels = s.out_channels;
    c.kernel = s.kernel;
    c.stride = s.stride;
    c.padding = (s.kernel - 1) / 2;
    c.groups = s.groups;
    c.bias = false;  // the BatchNorm's shift makes a bias redundant
    conv = push_back(std::make_shared<Conv2d>(c));
    bn = push_back(std::make_shared<BatchNorm2d>(s.out_channels, s.norm.eps, s.norm.momentum));
    if (!s.activation.empty()) push_back(std::make_shared<Activation>(s.activation));
    activation_ = s.activation;
}

Tensor ConvNormAct::forward(const Tensor& x) {
    if (bn->folded && !bn->is_training()) {
        if (activation_ == "relu") return conv_norm_act(*conv, *bn, x, ConvEpilogue::relu);
        if (activation_ == "relu6") return conv_norm_act(*conv, *bn, x, ConvEpilogue::relu6);
        if (activation_.empty()) return conv_norm_act(*conv, *bn, x, ConvEpilogue::none);
    }
    return Sequential::forward(x);
}

SqueezeExcitation::SqueezeExcitation(std::int64_t channels, std::int64_t squeeze_channels)
    : UnaryModule("SqueezeExcitation") {
    fc1 = register_module("fc1", std::make_shared<Conv2d>(
                                     Conv2dSpec{channels, squeeze_channels, 1, 1, 0, 1, 1, true}));
    fc2 = register_module("fc2", std::make_shared<Conv2d>(
                                     Conv2dSpec{squeeze_channels, channels, 1, 1, 0, 1, 1, true}));
}

Tensor SqueezeExcitation::forward(const Tensor& x) {
    Tensor scale = mean(x, {2, 3}, /*keepdim=*/true);  // (B, C, 1, 1): adaptive_avg_pool2d(x, 1)
    scale = hardsigmoid(fc2->forward(relu(fc1->forward(scale))));
    return scale * x;
}

InvertedResidualV2::InvertedResidualV2(std::int64_t in, std::int64_t out, std::int64_t stride,
                                       std::int64_t expand_ratio, const NormSettings& norm)
    : UnaryModule("InvertedResidual") {
    require(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got ", stride);
    require(expand_ratio >= 1, "InvertedResidual: expand_ratio must be >= 1, got ", expand_ratio);
    const std::int64_t hidden = in * expand_ratio;
    use_residual = stride == 1 && in == out;
    conv = register_module("conv", std::make_shared<Sequential>());
    if (expand_ratio != 1)
        conv->push_back(std::make_shared<ConvNormAct>(
            ConvNormActSpec{in, hidden, 1, 1, 1, "relu6", norm}));
    conv->push_back(std::make_shared<ConvNormAct>(
        ConvNormActSpec{hidden, hidden, 3, stride, hidden, "relu6", norm}));
    conv->push_back(std::make_shared<Conv2d>(Conv2dSpec{hidden, out, 1, 1, 0, 1, 1, false}));
    conv->push_back(std::make_shared<BatchNorm2d>(out, norm.eps, norm.momentum));
}

Tensor InvertedResidualV2::forward(const Tensor& x) {
    Tensor y = conv->forward(x);
    return use_residual ? x + y : y;
}

InvertedResidualV3::InvertedResidualV3(const InvertedResidualV3Spec& s, const NormSettings& norm)
    : UnaryModule("InvertedResidual") {
    require(s.stride == 1 || s.stride == 2, "InvertedResidual: stride must be 1 or 2, got ",
            s.stride);
    require(s.activation == "relu" || s.activation == "hardswish",
            "InvertedResidual: activation must be relu or hardswish, got '", s.activation, "'");
    use_residual = s.stride == 1 && s.in_channels == s.out_channels;
    const std::int64_t exp = s.expanded_channels;
    block = register_module("block", std::make_shared<Sequential>());
    if (exp != s.in_channels)
        block->push_back(std::make_shared<ConvNormAct>(
            ConvNormActSpec{s.in_channels, exp, 1, 1, 1, s.activation, norm}));
    block->push_back(std::make_shared<ConvNormAct>(
        ConvNormActSpec{exp, exp, s.kernel, s.stride, exp, s.activation, norm}));
    if (s.use_se)
        block->push_back(std::make_shared<SqueezeExcitation>(exp, make_divisible(exp / 4)));
    block->push_back(std::make_shared<ConvNormAct>(
        ConvNormActSpec{exp, s.out_channels, 1, 1, 1, "", norm}));
}

Tensor InvertedResidualV3::forward(const Tensor& x) {
    Tensor y = block->forward(x);
    return use_residual ? y + x : y;
}

}  // namespace retort
