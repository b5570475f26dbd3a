// engine/cpu/wide_unary.h: the float loops of the transcendental activations (GELU, sigmoid,
// SiLU), compiled for AVX-512 and AVX2 as well as the baseline ISA, the widest one this CPU runs
// chosen at run time (as the GEMM's micro-kernels are).
//
// Why: a default x86-64 build vectorizes elementwise loops with 4-float SSE vectors. That is
// plenty for memory-bound ops (add, relu), but GELU does ~40 flops per element (the polynomial
// CDF of engine/math/fast_float.h) and took a quarter of a ViT training step at SSE width.
// The arithmetic is the same functor the generic loop and the CUDA kernels call, so every
// variant computes the same formula (vector widths only change the rounding of fused
// multiply-adds, within the accuracy that engine/math/fast_float.h documents).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/math/unary.h"

namespace retort::cpu {

// Whether F has wide loops (the ops use the generic loop otherwise).
template <class F>
inline constexpr bool has_wide_unary = false;
template <>
inline constexpr bool has_wide_unary<math::GeluErf> = true;
template <>
inline constexpr bool has_wide_unary<math::Sigmoid> = true;
template <>
inline constexpr bool has_wide_unary<math::Silu> = true;

// y[i] = F().forward(x[i]) for i < n, threaded.
template <class F>
void wide_forward(const float* x, float* y, std::int64_t n);
// dx[i] = F().backward(x[i], y[i], dy[i]); x or y may be null when F does not read it.
template <class F>
void wide_backward(const float* x, const float* y, const float* dy, float* dx, std::int64_t n);

// The instruction sets this CPU can run the wide loops with, widest first: some of "avx512f",
// "avx2+fma", "portable"; the one in use (by default the widest); and a switch so tests can run
// every variant on one machine (an Error for a name not in wide_unary_isas()).
std::vector<std::string> wide_unary_isas();
const char* wide_unary_isa();
void set_wide_unary_isa(const std::string& name);

}  // namespace retort::cpu
