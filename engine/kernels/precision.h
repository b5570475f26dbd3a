// engine/kernels/precision.h: the conversions of mixed precision (engine/precision.h).
//   RoundTo     y = x rounded to bfloat16 or float16, kept as float (the operands of a product)
//   ToHalfBits  the 16-bit patterns themselves, what cuBLAS's bf16 / f16 GEMMs read
#pragma once

#include <cstdint>

#include "engine/math/half.h"
#include "engine/math/hd.h"

namespace retort::kernels {

struct RoundTo {
    const float* x;
    float* y;
    bool bf16;  // else float16
    RETORT_HD void operator()(std::int64_t i) const {
        y[i] = bf16 ? math::round_bf16(x[i]) : math::round_f16(x[i]);
    }
};

struct ToHalfBits {
    const float* x;
    std::uint16_t* y;
    bool bf16;
    RETORT_HD void operator()(std::int64_t i) const {
        y[i] = bf16 ? math::float_to_bf16(x[i]) : math::float_to_f16(x[i]);
    }
};

}  // namespace retort::kernels
