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

class BatchNorm2d;

class Conv2d : public UnaryModule {
public:
    explicit Conv2d(const Conv2dSpec& spec);
    Tensor forward(const Tensor& x) override;
    // activation(forward(x)): in one pass (the fused epilogue) when this layer holds a folded
    // BatchNorm, is in eval mode and no graph is recorded; as two ops otherwise.
    Tensor forward_fused(const Tensor& x, ConvEpilogue epilogue);

    // Absorbs the BatchNorm that follows this convolution, for inference:
    //     W' = W * g / sqrt(v + eps),   b' = (b - m) * g / sqrt(v + eps) + beta
    // per output channel (g, beta the norm's weight and bias, m, v its running statistics).
    // The folded copies are used in eval mode only; weight and bias (what state_dict saves) are
    // left as they are, and norm.folded is set. Call it again after loading new weights.
    void fold(BatchNorm2d& norm);
    bool has_folded_norm() const { return folded_weight_.defined(); }

    Tensor weight, bias;
    Conv2dSpec spec;

private:
    Conv2dOptions options(ConvEpilogue epilogue) const;
    Tensor folded_weight_, folded_bias_;
};

}  // namespace retort
