// engine/ops/interpolate.h: resizing (B, C, H, W) maps.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/tensor.h"

namespace retort {

struct InterpolateOptions {
    std::optional<std::array<std::int64_t, 2>> size;    // give size ...
    std::optional<std::array<double, 2>> scale_factor;  // ... or scale_factor
    std::string mode = "nearest";                        // "nearest" or "bilinear"
    bool align_corners = false;                          // bilinear only
};

// As torch.nn.functional.interpolate (with recompute_scale_factor unset: when scale_factor is
// given, source coordinates use 1/scale_factor, as PyTorch does).
Tensor interpolate(const Tensor& x, const InterpolateOptions& options);

}  // namespace retort
