// layers/resnet_blocks.cpp: BasicBlock, Bottleneck and their stage; the wide ResNet block and its
// stage. Shapes: x (B, in, H, W) -> (B, out, H / stride, W / stride).
// Matches torchvision.models.resnet.BasicBlock / Bottleneck and RepDistiller's models/resnet.py
// and models/wrn.py blocks, member for member (see layers/resnet_blocks.h).
// Backward: every step is an engine op (conv2d, batch_norm, relu, add, dropout) that records its
// own node; the blocks keep nothing themselves.
#include "layers/resnet_blocks.h"

#include "engine/ops.h"
#include "layers/fold.h"

namespace retort {

namespace {

Conv2dSpec conv_spec(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride) {
    Conv2dSpec s{in, out};
    s.kernel = kernel;
    s.stride = stride;
    s.padding = kernel / 2;  // 3x3 -> 1, 1x1 -> 0: "same" size at stride 1
    s.bias = false;
    return s;
}

std::shared_ptr<Conv2d> make_conv(std::int64_t in, std::int64_t out, std::int64_t kernel,
                                  std::int64_t stride = 1) {
    return std::make_shared<Conv2d>(conv_spec(in, out, kernel, stride));
}

// torchvision's and RepDistiller's projection shortcut: 1x1 conv with the stride, then BN.
// Only built when the identity would not fit.
std::shared_ptr<Sequential> make_downsample(std::int64_t in, std::int64_t out, std::int64_t stride) {
    if (stride == 1 && in == out) return nullptr;
    auto seq = std::make_shared<Sequential>();
    seq->push_back(make_conv(in, out, 1, stride));
    seq->push_back(std::make_shared<BatchNorm2d>(out));
    return seq;
}

void check_block_sizes(const char* block, std::int64_t in, std::int64_t planes, std::int64_t stride) {
    require(in > 0 && planes > 0 && stride > 0, block, ": in_channels (", in, "), planes (",
            planes, ") and stride (", stride, ") must be positive");
}

}  // namespace

// ---- BasicBlock ----

BasicBlock::BasicBlock(std::int64_t in, std::int64_t planes, std::int64_t stride)
    : ResidualBlock("BasicBlock") {
    check_block_sizes("BasicBlock", in, planes, stride);
    conv1 = register_module("conv1", make_conv(in, planes, 3, stride));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    conv2 = register_module("conv2", make_conv(planes, planes, 3));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    downsample = make_downsample(in, planes * expansion, stride);
    if (downsample) register_module("downsample", downsample);
}

BlockOutput BasicBlock::forward_with_preact(const Tensor& x) {
    Tensor h = conv_norm_act(*conv1, *bn1, x, ConvEpilogue::relu);
    h = conv_norm_act(*conv2, *bn2, h, ConvEpilogue::none);
    Tensor preact = h + (downsample ? downsample->forward(x) : x);
    return {relu(preact), preact};
}

// ---- Bottleneck ----

Bottleneck::Bottleneck(std::int64_t in, std::int64_t planes, std::int64_t stride)
    : ResidualBlock("Bottleneck") {
    check_block_sizes("Bottleneck", in, planes, stride);
    conv1 = register_module("conv1", make_conv(in, planes, 1));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    conv2 = register_module("conv2", make_conv(planes, planes, 3, stride));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    conv3 = register_module("conv3", make_conv(planes, planes * expansion, 1));
    bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * expansion));
    downsample = make_downsample(in, planes * expansion, stride);
    if (downsample) register_module("downsample", downsample);
}

BlockOutput Bottleneck::forward_with_preact(const Tensor& x) {
    Tensor h = conv_norm_act(*conv1, *bn1, x, ConvEpilogue::relu);
    h = conv_norm_act(*conv2, *bn2, h, ConvEpilogue::relu);
    h = conv_norm_act(*conv3, *bn3, h, ConvEpilogue::none);
    Tensor preact = h + (downsample ? downsample->forward(x) : x);
    return {relu(preact), preact};
}

// ---- ResidualStage ----

void ResidualStage::add(std::shared_ptr<ResidualBlock> block) {
    push_back(block);
    blocks_.push_back(std::move(block));
}

BlockOutput ResidualStage::forward_with_preact(const Tensor& x) {
    require(!blocks_.empty(), "ResidualStage: the stage has no blocks");
    BlockOutput r{x, Tensor()};
    for (auto& block : blocks_) r = block->forward_with_preact(r.out);
    return r;
}

// ---- WideBasicBlock ----

WideBasicBlock::WideBasicBlock(std::int64_t in, std::int64_t out, std::int64_t stride, double p)
    : UnaryModule("WideBasicBlock"), drop_rate(p) {
    check_block_sizes("WideBasicBlock", in, out, stride);
    require(p >= 0 && p < 1, "WideBasicBlock: drop_rate must be in [0, 1), got ", p);
    // RepDistiller's registration order, which is also its state_dict order
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(in));
    conv1 = register_module("conv1", make_conv(in, out, 3, stride));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(out));
    conv2 = register_module("conv2", make_conv(out, out, 3));
    // RepDistiller adds a projection whenever the width changes; a stride alone never happens in
    // its networks (the width doubles wherever the stride is 2), and the identity would not fit it
    require(in != out || stride == 1, "WideBasicBlock: a strided block must change the width (",
            in, " -> ", out, ", stride ", stride, ")");
    if (in != out) convShortcut = register_module("convShortcut", make_conv(in, out, 1, stride));
}

BlockOutput WideBasicBlock::forward_with_preact(const Tensor& x) {
    Tensor entry = bn1->forward(x);
    Tensor h = relu(entry);
    Tensor branch = relu(bn2->forward(conv1->forward(h)));
    if (drop_rate > 0) branch = dropout(branch, drop_rate, is_training());
    branch = conv2->forward(branch);
    // the projection sees the activated input, the identity the raw one (as RepDistiller)
    Tensor shortcut = convShortcut ? convShortcut->forward(h) : x;
    return {shortcut + branch, entry};
}

// ---- WideStage ----

WideStage::WideStage(std::int64_t num_blocks, std::int64_t in, std::int64_t out, std::int64_t stride,
                     double drop_rate)
    : UnaryModule("NetworkBlock") {
    require(num_blocks > 0, "WideStage: num_blocks must be positive, got ", num_blocks);
    auto layer = register_module("layer", std::make_shared<Sequential>());
    for (std::int64_t i = 0; i < num_blocks; ++i) {
        auto block = std::make_shared<WideBasicBlock>(i == 0 ? in : out, out, i == 0 ? stride : 1,
                                                      drop_rate);
        layer->push_back(block);
        blocks_.push_back(block);
    }
}

BlockOutput WideStage::forward_with_preact(const Tensor& x) {
    BlockOutput first = blocks_.front()->forward_with_preact(x);
    Tensor h = first.out;
    for (std::size_t i = 1; i < blocks_.size(); ++i) h = blocks_[i]->forward(h);
    return {h, first.preact};
}

}  // namespace retort
