// engine/cpu/row_sums.h: the double-precision sums that batch norm and layer norm take over
// rows of float values, in lane_sum's order (engine/math/lane_sum.h), with an AVX2 variant.
//
// Why a variant: lane_sum keeps four running sums, term j in sum j mod 4. A baseline x86-64
// build computes them one double at a time, which cost about a fifth of a MobileNet training
// step (batch norm's statistics and gradient sums over 28 x 28 maps). In AVX2 the four running
// sums are the four lanes of one 256-bit register, so each step of the loop is one vector
// instruction per operation, and every lane performs the same operations, in the same order,
// as the scalar sum it replaces: the results are equal to the bit (the file is compiled
// without fused multiply-adds, and the tests compare every variant with lane_sum exactly).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/math/lane_sum.h"

namespace retort::cpu {

// The sums as lane_sum computes them, for float or double rows: the definition every variant
// must reproduce, and what double rows use.
template <class T>
double row_sum_portable(const T* x, std::int64_t n) {
    return lane_sum(n, [&](std::int64_t j) { return double(x[j]); });
}

template <class T>
double row_sum_squared_deviation_portable(const T* x, std::int64_t n, double mean) {
    return lane_sum(n, [&](std::int64_t j) {
        const double d = double(x[j]) - mean;
        return d * d;
    });
}

template <class T>
SumPair row_sum_grad_portable(const T* dy, const T* x, std::int64_t n, double mean,
                              double invstd) {
    return lane_sum_pair(n, [&](std::int64_t j) {
        const double g = double(dy[j]);
        return SumPair{g, g * (double(x[j]) - mean) * invstd};
    });
}

// sum of double(x[j]) for j < n
double row_sum(const float* x, std::int64_t n);
inline double row_sum(const double* x, std::int64_t n) { return row_sum_portable(x, n); }

// sum of d * d, d = double(x[j]) - mean
double row_sum_squared_deviation(const float* x, std::int64_t n, double mean);
inline double row_sum_squared_deviation(const double* x, std::int64_t n, double mean) {
    return row_sum_squared_deviation_portable(x, n, mean);
}

// a: sum of double(dy[j]); b: sum of double(dy[j]) * (double(x[j]) - mean) * invstd
// (the gradient's sum and its sum against the normalized input, xhat)
SumPair row_sum_grad(const float* dy, const float* x, std::int64_t n, double mean,
                     double invstd);
inline SumPair row_sum_grad(const double* dy, const double* x, std::int64_t n, double mean,
                            double invstd) {
    return row_sum_grad_portable(dy, x, n, mean, invstd);
}

// The variants this CPU runs (names as engine/cpu/isa.h; "avx512f" runs the AVX2 loops), the
// one in use, and a switch for tests.
std::vector<std::string> row_sum_isas();
const char* row_sum_isa();
void set_row_sum_isa(const std::string& name);

}  // namespace retort::cpu
