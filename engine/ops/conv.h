// engine/ops/conv.h: 2-D convolution.
#pragma once

#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace retort {

// An activation applied to the output in the same pass, while it is still in cache. Inference
// only (a frozen teacher with its BatchNorms folded in): conv2d refuses it when it would record a
// graph, since the backward of the pair is not implemented as one op.
enum class ConvEpilogue { none, relu, relu6 };

struct Conv2dOptions {
    std::array<std::int64_t, 2> stride{1, 1};
    std::array<std::int64_t, 2> padding{0, 0};
    std::array<std::int64_t, 2> dilation{1, 1};
    std::int64_t groups = 1;
    ConvEpilogue epilogue = ConvEpilogue::none;
};

// As torch.nn.functional.conv2d: x (B, C, H, W), weight (O, C/groups, kh, kw), bias (O) or
// undefined -> (B, O, OH, OW) with OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& options = {});

}  // namespace retort
