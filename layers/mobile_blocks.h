// layers/mobile_blocks.h: the building blocks of MobileNetV2 and MobileNetV3, with torchvision's
// module names so that state-dict keys line up ("features.3.conv.1.0.weight",
// "features.5.block.2.fc1.bias", ...).
//   ConvNormAct          torchvision.ops.Conv2dNormActivation: Sequential(0 conv, 1 bn, 2 act)
//   SqueezeExcitation    torchvision.ops.SqueezeExcitation: x * hardsigmoid(fc2(relu(fc1(avg(x)))))
//   InvertedResidualV2   torchvision.models.mobilenetv2.InvertedResidual (`conv` Sequential)
//   InvertedResidualV3   torchvision.models.mobilenetv3.InvertedResidual (`block` Sequential)
// Shapes: x (B, C, H, W) -> (B, C', H', W'), H' = H / stride (rounded up).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "layers/conv2d.h"
#include "layers/norm.h"
#include "layers/sequential.h"

namespace retort {

// torchvision's _make_divisible (from the TensorFlow MobileNet code): v rounded to the nearest
// multiple of `divisor`, at least `divisor`, and never more than 10% below v.
std::int64_t make_divisible(double v, std::int64_t divisor = 8);

// BatchNorm settings: PyTorch's defaults for V2; V3 uses eps 0.001 and momentum 0.01.
struct NormSettings {
    double eps = 1e-5;
    double momentum = 0.1;
};

struct ConvNormActSpec {
    std::int64_t in_channels, out_channels;
    std::int64_t kernel = 3;
    std::int64_t stride = 1;
    std::int64_t groups = 1;
    std::string activation = "relu";  // an Activation kind, or "" for none (a linear block)
    NormSettings norm = {};
};

// conv (no bias, padding (kernel - 1) / 2) -> BatchNorm2d -> activation, as one Sequential whose
// children are "0", "1" and, when there is an activation, "2".
class ConvNormAct : public Sequential {
public:
    explicit ConvNormAct(const ConvNormActSpec& spec);
    // With the norm folded (layers/fold.h), a ReLU or ReLU6 runs inside the convolution.
    Tensor forward(const Tensor& x) override;
    std::shared_ptr<Conv2d> conv;
    std::shared_ptr<BatchNorm2d> bn;

private:
    std::string activation_;
};

// Channel attention: a per-channel scale from the globally pooled input.
// fc1 (C -> squeeze) and fc2 (squeeze -> C) are 1x1 convolutions with bias, as in torchvision.
class SqueezeExcitation : public UnaryModule {
public:
    SqueezeExcitation(std::int64_t channels, std::int64_t squeeze_channels);
    Tensor forward(const Tensor& x) override;
    std::shared_ptr<Conv2d> fc1, fc2;
};

// MobileNetV2 block: [1x1 expand (when expand_ratio != 1)] -> 3x3 depthwise -> 1x1 project
// (linear, no activation), ReLU6 after the first two; x + block(x) when stride 1 and in == out.
// `conv` holds: 0 expand ConvNormAct, 1 depthwise ConvNormAct, 2 Conv2d, 3 BatchNorm2d
// (or 0 depthwise, 1 Conv2d, 2 BatchNorm2d without expansion).
class InvertedResidualV2 : public UnaryModule {
public:
    InvertedResidualV2(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride,
                       std::int64_t expand_ratio, const NormSettings& norm = {});
    Tensor forward(const Tensor& x) override;
    std::shared_ptr<Sequential> conv;
    bool use_residual;
};

// One row of MobileNetV3's table (channels already scaled by width_mult).
struct InvertedResidualV3Spec {
    std::int64_t in_channels, kernel, expanded_channels, out_channels;
    bool use_se;
    std::string activation;  // "relu" or "hardswish"
    std::int64_t stride;
};

// MobileNetV3 block: [1x1 expand (when expanded != in)] -> kxk depthwise -> [squeeze-excitation]
// -> 1x1 project (linear); x + block(x) when stride 1 and in == out.
// `block` holds those parts in that order, numbered from 0; the SE squeeze width is
// make_divisible(expanded / 4).
class InvertedResidualV3 : public UnaryModule {
public:
    InvertedResidualV3(const InvertedResidualV3Spec& spec, const NormSettings& norm);
    Tensor forward(const Tensor& x) override;
    std::shared_ptr<Sequential> block;
    bool use_residual;
};

}  // namespace retort
