// engine/ops/pool.h: pooling over the last two dims of (B, C, H, W) (or (C, H, W)) tensors.
#pragma once

#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace retort {

struct Pool2dOptions {
    std::array<std::int64_t, 2> kernel{2, 2};
    std::array<std::int64_t, 2> stride{0, 0};   // 0 means "same as kernel", as PyTorch's default
    std::array<std::int64_t, 2> padding{0, 0};
    bool ceil_mode = false;
    bool count_include_pad = true;              // avg_pool2d only
};

// As torch.nn.functional.max_pool2d (padding counts as -inf).
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options);
// As torch.nn.functional.avg_pool2d.
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options);
// As torch.nn.functional.adaptive_avg_pool2d: window i spans [floor(i*H/OH), ceil((i+1)*H/OH)).
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<std::int64_t, 2> output_size);

}  // namespace retort
