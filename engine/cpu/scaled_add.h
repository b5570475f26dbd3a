// engine/cpu/scaled_add.h: the two elementwise loops of the unit-stride depthwise convolution
// (engine/cpu/depthwise.h), out += weight * in and sums += a * b, with AVX-512 and AVX2 variants
// for float.
//
// Why variants: the library is built for baseline x86-64, where these loops run four floats at a
// time, and on MobileNet's 28 x 28 maps they are a fifth of a training step while their data
// sits in the L1 cache. Each element is one multiply and one add, rounded separately in every
// variant (the .cpp is compiled without fused multiply-adds), so all variants give the same bits
// as the portable loop; the tests check that, element by element.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace retort::cpu {

// out[p] += weight * in[p] for p < n: the definition every variant follows.
template <class T>
void add_scaled_portable(T* __restrict out, const T* __restrict in, T weight, std::int64_t n) {
    for (std::int64_t p = 0; p < n; ++p) out[p] += weight * in[p];
}

// sums[p] += a[p] * b[p] for p < n.
template <class T>
void add_products_portable(T* __restrict sums, const T* __restrict a, const T* __restrict b,
                           std::int64_t n) {
    for (std::int64_t p = 0; p < n; ++p) sums[p] += a[p] * b[p];
}

// The widest variant this CPU runs for float; double takes the portable loop. `out` must not
// overlap `in`, nor `sums` overlap `a` or `b`.
void add_scaled(float* out, const float* in, float weight, std::int64_t n);
inline void add_scaled(double* out, const double* in, double weight, std::int64_t n) {
    add_scaled_portable(out, in, weight, n);
}
void add_products(float* sums, const float* a, const float* b, std::int64_t n);
inline void add_products(double* sums, const double* a, const double* b, std::int64_t n) {
    add_products_portable(sums, a, b, n);
}

// The variants this CPU runs (names as engine/cpu/isa.h), the one in use, and a switch for
// tests.
std::vector<std::string> scaled_add_isas();
const char* scaled_add_isa();
void set_scaled_add_isa(const std::string& name);

}  // namespace retort::cpu
