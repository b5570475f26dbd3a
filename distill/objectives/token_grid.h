// distill/objectives/token_grid.h: a ViT's tokens as a feature map, so objectives written for maps
// (fourier, tat, cakd) also read a ViT teacher or student.
//
// Shapes: B batch, N tokens, C channels, h x w the patch grid (N - prefix = h * w, h = w).
//
// A ViT's token sequence starts with its prefix tokens (the class token; DeiT adds a distillation
// token), then the patch tokens in row-major grid order (timm's PatchEmbed flattens the conv's
// output (B, C, h, w) to (B, h*w, C)). Dropping the prefix and undoing that flatten gives the map.
#pragma once

#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace retort {

// The number of prefix tokens of a sequence of n tokens: 0 when n is a square, else 1 when n - 1
// is, else 2 when n - 2 is. An Error naming `what` when none is a square.
std::int64_t infer_prefix_tokens(std::int64_t n, const std::string& what);

// tokens (B, N, C) -> (B, C, h, w) without the first `prefix` tokens; prefix < 0 infers it. An
// Error naming `what` when N - prefix is not a square or prefix is out of range.
Tensor tokens_to_map(const Tensor& tokens, std::int64_t prefix, const std::string& what);

// A feature as a map: (B, C, H, W) unchanged, (B, N, C) through tokens_to_map. An Error for any
// other rank.
Tensor as_feature_map(const Tensor& feature, std::int64_t prefix, const std::string& what);

// The shape as_feature_map gives a feature of `shape`: for building connectors from a setup.
Shape feature_map_shape(const Shape& shape, std::int64_t prefix, const std::string& what);

}  // namespace retort
