// engine/math/half.h: float <-> bfloat16 and float16, the storage formats of mixed precision
// (engine/precision.h). RETORT_HD: the GPU kernels that convert GEMM operands for cuBLAS and the
// CPU's emulation of those GEMMs run this very code.
//
//   bfloat16  1 sign, 8 exponent, 7 mantissa bits: float's range, 3 significant digits
//   float16   1 sign, 5 exponent, 10 mantissa bits: largest finite 65504, subnormals below 2^-14
// Both round to nearest, ties to even, as the hardware conversions do; NaN stays NaN (quiet),
// and a float16 overflow becomes infinity (what loss scaling watches for).
#pragma once

#include <cstdint>
#include <cstring>

#include "engine/math/hd.h"

namespace retort::math {

RETORT_HD inline std::uint32_t float_bits(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

RETORT_HD inline float bits_float(std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

RETORT_HD inline std::uint16_t float_to_bf16(float x) {
    const std::uint32_t u = float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40);  // NaN
    const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // ties to even
    return static_cast<std::uint16_t>((u + rounding) >> 16);
}

RETORT_HD inline float bf16_to_float(std::uint16_t h) { return bits_float(std::uint32_t(h) << 16); }

RETORT_HD inline std::uint16_t float_to_f16(float x) {
    const std::uint32_t u = float_bits(x);
    const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t magnitude = u & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return sign | 0x7e00u;  // NaN
    if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: infinity
    if (magnitude >= 0x38800000u) {                       // normal in float16 (>= 2^-14)
        const std::uint32_t rounding = 0xfffu + ((magnitude >> 13) & 1u);
        return sign | static_cast<std::uint16_t>((magnitude - 0x38000000u + rounding) >> 13);
    }
    if (magnitude < 0x33000000u) return sign;  // below half the smallest subnormal: zero
    // subnormal: the implicit leading 1 made explicit, shifted into place, rounded to even
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;  // 14 .. 24
    const std::uint32_t half_ulp = 1u << (shift - 1);
    std::uint32_t value = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1);
    if (rest > half_ulp || (rest == half_ulp && (value & 1u))) ++value;
    return sign | static_cast<std::uint16_t>(value);
}

RETORT_HD inline float f16_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 31) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
        const float value = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
        return sign ? -value : value;
    }
    return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// x rounded to the nearest bfloat16 / float16 value, kept as a float.
RETORT_HD inline float round_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }
RETORT_HD inline float round_f16(float x) { return f16_to_float(float_to_f16(x)); }

}  // namespace retort::math
