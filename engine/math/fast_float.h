// engine/math/fast_float.h: exp and the normal CDF for float, written so loops vectorize.
//
// A call to the C library's expf or erff inside a loop stops the compiler from vectorizing it:
// in a ViT training step, GELU's erf alone took about a sixth of the time. These versions are
// plain arithmetic and selects (no branches, no calls), so a loop of them becomes AVX-512 code.
// Double keeps the library functions: f64 is what gradient checks use, and they need every bit.
//
// Accuracy, checked by tests/test_fast_float.cpp against double-precision std::exp / std::erfc:
//   exp_f32: within 2 ulp for results in the normal range; 0 below e^-87.3 (no denormals); inf
//            above e^88.7; NaN stays NaN.
//   normal_cdf_f32, Phi(x) = 0.5 erfc(-x / sqrt 2): relative error below 2e-6 for x > -5, and
//            below 2e-5 further out while Phi is a normal float (x > -13); 0 below. Out there
//            Phi < 3e-7, so GELU's absolute error stays below 1e-11. Most of it is the rounding
//            of x / sqrt 2 to float, which any float implementation pays.
// How the constants were found: exp uses Cody & Waite's range reduction x = n ln2 + r with
// |r| <= ln2 / 2 and the degree-7 Taylor polynomial of e^r (truncation error below 1e-9).
// For erf, least-squares fits in double on Chebyshev nodes (weights 1 / f, so the error is
// relative): erf(z) = z P(z^2) on |z| < 1 (P of degree 5, fit error 4e-8), and
// erfc(z) = e^(-z^2) Q(1/z) on 1 <= z <= 10 (Q of degree 9, fit error 1.7e-7).
#pragma once

#include <cstdint>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "engine/math/hd.h"

namespace retort::math {

RETORT_HD inline float float_from_bits(std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

RETORT_HD inline float exp_f32(float x) {
    const float kLog2e = 1.44269504088896341f;
    const float kLn2Hi = 0.693359375f;           // ln 2 split in two, so n * kLn2Hi is exact
    const float kLn2Lo = -2.12194440e-4f;
    float clamped = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    clamped = x != x ? 0.0f : clamped;  // converting NaN to int below would be undefined
    float n = clamped * kLog2e;
    n = static_cast<float>(static_cast<int>(n + (n >= 0 ? 0.5f : -0.5f)));  // round to nearest
    float r = clamped - n * kLn2Hi;
    r = r - n * kLn2Lo;
    // e^r, Horner form of the Taylor series to r^7
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // times 2^n = 2^half * 2^(n - half): n is in [-126, 128] after the clamp, and 2^128 itself
    // is not a float, so the power is built from two halves, each a valid biased exponent.
    const int whole = static_cast<int>(n), half = whole / 2;
    const float scale_a = float_from_bits(static_cast<std::uint32_t>(half + 127) << 23);
    const float scale_b = float_from_bits(static_cast<std::uint32_t>(whole - half + 127) << 23);
    // The edge cases as factors and a term rather than selects of the result: GCC turns a
    // select between the computed value and a constant into a branch around the computation,
    // and then cannot vectorize the loop for AVX-512.
    const float underflow = x < -87.3f ? 0.0f : 1.0f;
    const float overflow = x > 88.7f ? float_from_bits(0x7f800000u) : 1.0f;  // +inf
    const float nan = x != x ? x : 0.0f;                                     // NaN in, NaN out
    return p * scale_a * scale_b * underflow * overflow + nan;
}

// Phi(x) = P(N(0,1) <= x) = 0.5 erfc(-x / sqrt 2)
RETORT_HD inline float normal_cdf_f32(float x) {
    const float z = x * 0.70710678118654752f;
    const float a = z < 0 ? -z : z;
    // |z| < 1: erf(z) = z P(z^2)
    const float s = z * z;
    float p = -5.667795198e-04f;
    p = p * s + 4.927371855e-03f;
    p = p * s - 2.672085269e-02f;
    p = p * s + 1.128057740e-01f;
    p = p * s - 3.761239047e-01f;
    p = p * s + 1.128379147e+00f;
    const float near_zero = 0.5f + 0.5f * z * p;
    // |z| >= 1: erfc(|z|) = e^(-z^2) Q(1 / |z|)
    const float u = 1.0f / (a < 1.0f ? 1.0f : a);
    float q = 7.275352467e-02f;
    q = q * u - 4.039331655e-01f;
    q = q * u + 9.548374803e-01f;
    q = q * u - 1.210323772e+00f;
    q = q * u + 7.844610796e-01f;
    q = q * u - 5.488739355e-02f;
    q = q * u - 2.800035798e-01f;
    q = q * u + 5.671094752e-04f;
    q = q * u + 5.641091782e-01f;
    q = q * u + 3.178070419e-06f;
    const float half_erfc = 0.5f * exp_f32(-s) * q;  // 0.5 erfc(|z|)
    const float tail = z > 0 ? 1.0f - half_erfc : half_erfc;
    return a < 1.0f ? near_zero : tail;
}

// The same for any floating type: the fast versions for float, the C library's for double.
template <class T>
RETORT_HD T fast_exp(T x) {
    if constexpr (std::is_same_v<T, float>) return exp_f32(x);
    else return std::exp(x);
}
template <class T>
RETORT_HD T normal_cdf(T x) {
    if constexpr (std::is_same_v<T, float>) return normal_cdf_f32(x);
    else return T(0.5) * std::erfc(-x * T(0.70710678118654752440));
}

}  // namespace retort::math
