// layers/resnet_blocks.h: the residual blocks of ResNets and wide ResNets.
//
// Shapes: x (B, in, H, W) -> (B, out, H / stride, W / stride).
//
//   BasicBlock      torchvision.models.resnet.BasicBlock (also RepDistiller's CIFAR BasicBlock,
//                   which has the same members): conv1 3x3 (stride), bn1, ReLU, conv2 3x3, bn2,
//                   + shortcut, ReLU. out = planes.
//   Bottleneck      torchvision.models.resnet.Bottleneck (ResNet v1.5: the stride sits on the 3x3
//                   conv): conv1 1x1, bn1, ReLU, conv2 3x3 (stride), bn2, ReLU, conv3 1x1, bn3,
//                   + shortcut, ReLU. out = 4 * planes.
//   The shortcut of both is the identity, or, when the stride or the width changes, "downsample":
//   Sequential(conv 1x1 with the stride, BatchNorm), so its parameters are downsample.0.weight and
//   downsample.1.* as in PyTorch.
//
//   WideBasicBlock  RepDistiller's wrn.py BasicBlock, a pre-activation block: bn1, ReLU, conv1 3x3
//                   (stride), bn2, ReLU, [dropout], conv2 3x3, + shortcut, with no ReLU after the
//                   sum. The shortcut is x itself when in == out, else convShortcut (1x1 conv with
//                   the stride, no BatchNorm) applied to relu(bn1(x)).
//
// Besides the output, each block hands back the tensor that knowledge distillation reads "before
// the activation" (RepDistiller's preact features, OFD): for BasicBlock / Bottleneck the sum
// before the final ReLU; for WideBasicBlock bn1(x), the input after its BatchNorm and before the
// ReLU, since a pre-activation network applies its ReLU at the start of the next block.
//
// No ReLU modules are registered: they hold no state, so the state-dict names are unaffected.
#pragma once

#include <memory>
#include <vector>

#include "layers/conv2d.h"
#include "layers/norm.h"
#include "layers/sequential.h"

namespace retort {

// A block's output and its pre-activation companion (see the header comment).
struct BlockOutput {
    Tensor out, preact;
};

// The common face of BasicBlock and Bottleneck.
class ResidualBlock : public UnaryModule {
public:
    using UnaryModule::UnaryModule;
    virtual BlockOutput forward_with_preact(const Tensor& x) = 0;
    Tensor forward(const Tensor& x) override { return forward_with_preact(x).out; }
};

class BasicBlock : public ResidualBlock {
public:
    static constexpr std::int64_t expansion = 1;
    BasicBlock(std::int64_t in_channels, std::int64_t planes, std::int64_t stride = 1);
    BlockOutput forward_with_preact(const Tensor& x) override;

    std::shared_ptr<Conv2d> conv1, conv2;
    std::shared_ptr<BatchNorm2d> bn1, bn2;
    std::shared_ptr<Sequential> downsample;  // null when the shortcut is the identity
};

class Bottleneck : public ResidualBlock {
public:
    static constexpr std::int64_t expansion = 4;
    Bottleneck(std::int64_t in_channels, std::int64_t planes, std::int64_t stride = 1);
    BlockOutput forward_with_preact(const Tensor& x) override;

    std::shared_ptr<Conv2d> conv1, conv2, conv3;
    std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
    std::shared_ptr<Sequential> downsample;
};

// One stage of a ResNet ("layer1", ...): a Sequential of residual blocks, children "0", "1", ...
// It can also return the last block's pre-activation output.
class ResidualStage : public Sequential {
public:
    void add(std::shared_ptr<ResidualBlock> block);
    BlockOutput forward_with_preact(const Tensor& x);
    Tensor forward(const Tensor& x) override { return forward_with_preact(x).out; }

private:
    std::vector<std::shared_ptr<ResidualBlock>> blocks_;
};

class WideBasicBlock : public UnaryModule {
public:
    WideBasicBlock(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride,
                   double drop_rate = 0.0);
    // out: the block's output; preact: bn1(x).
    BlockOutput forward_with_preact(const Tensor& x);
    Tensor forward(const Tensor& x) override { return forward_with_preact(x).out; }

    std::shared_ptr<BatchNorm2d> bn1, bn2;
    std::shared_ptr<Conv2d> conv1, conv2, convShortcut;  // convShortcut null when in == out
    double drop_rate;
};

// One stage of a wide ResNet, RepDistiller's NetworkBlock: its blocks sit in a Sequential named
// "layer" (so names read block2.layer.0.conv1.weight).
class WideStage : public UnaryModule {
public:
    WideStage(std::int64_t num_blocks, std::int64_t in_channels, std::int64_t out_channels,
              std::int64_t stride, double drop_rate);
    // out: the stage's output; preact: bn1 of the stage's input as the first block computes it.
    BlockOutput forward_with_preact(const Tensor& x);
    Tensor forward(const Tensor& x) override { return forward_with_preact(x).out; }

private:
    std::vector<std::shared_ptr<WideBasicBlock>> blocks_;
};

}  // namespace retort
