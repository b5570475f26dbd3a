// layers/conv2d.h: 2-D convolution layer, as torch.nn.Conv2d.
// Shapes: x (B, in, H, W) -> (B, out, OH, OW). Parameters: weight (out, in/groups, kh, kw), bias.
// Initialization: PyTorch's default, kaiming_uniform(a=sqrt(5)) and U(+-1/sqrt(fan_in)) for bias;
// model constructors re-initialize as torchvision does where it differs.
#pragma once

#include "engine/ops/conv.h"
#include "layers/module.h"

namespace retort {

struct Conv2dSpec {
    std::int64_t in_channels, out_channels;
    std::int64_t kernel = 3;
    std::int64_t stride = 1;
    std::int64_t padding = 0;
    std::int64_t dilation = 1;
    std::int64_t groups = 1;
    bool bias = true;
};

class Conv2d : public UnaryModule {
public:
    explicit Conv2d(const Conv2dSpec& spec);
    Tensor forward(const Tensor& x) override;

    Tensor weight, bias;
    Conv2dSpec spec;
};

}  // namespace retort
