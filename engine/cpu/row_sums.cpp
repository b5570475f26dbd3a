// engine/cpu/row_sums.cpp: see row_sums.h. This file is compiled with -ffp-contract=off
// (CMakeLists.txt), so that no multiply and add are fused into one rounding: the AVX2 lanes
// must round exactly as the portable sums do.
#include "engine/cpu/row_sums.h"

#include "engine/cpu/isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RETORT_ROW_SUMS_X86 1
#endif

namespace retort::cpu {

namespace {

#ifdef RETORT_ROW_SUMS_X86
// Lane k of a register holds lane_sum's running sum k. The last n mod 4 terms go to the first
// lanes as lane_sum adds them, then the lanes are combined as (s0 + s1) + (s2 + s3).
template <class Tail>
__attribute__((target("avx2"))) double finish(__m256d lanes, std::int64_t rest, Tail tail) {
    alignas(32) double s[4];
    _mm256_store_pd(s, lanes);
    for (std::int64_t k = 0; k < rest; ++k) s[k] += tail(k);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

// Four floats widened to doubles.
__attribute__((target("avx2"))) inline __m256d load4(const float* p) {
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}

__attribute__((target("avx2"))) double avx2_sum(const float* x, std::int64_t n) {
    __m256d acc = _mm256_setzero_pd();
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) acc = _mm256_add_pd(acc, load4(x + j));
    return finish(acc, n - j, [&](std::int64_t k) { return double(x[j + k]); });
}

__attribute__((target("avx2"))) double avx2_squared_deviation(const float* x, std::int64_t n,
                                                               double mean) {
    const __m256d m = _mm256_set1_pd(mean);
    __m256d acc = _mm256_setzero_pd();
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const __m256d d = _mm256_sub_pd(load4(x + j), m);
        acc = _mm256_add_pd(acc, _mm256_mul_pd(d, d));
    }
    return finish(acc, n - j, [&](std::int64_t k) {
        const double d = double(x[j + k]) - mean;
        return d * d;
    });
}

__attribute__((target("avx2"))) SumPair avx2_grad(const float* dy, const float* x,
                                                  std::int64_t n, double mean, double invstd) {
    const __m256d m = _mm256_set1_pd(mean), is = _mm256_set1_pd(invstd);
    __m256d acc_a = _mm256_setzero_pd(), acc_b = _mm256_setzero_pd();
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const __m256d g = load4(dy + j);
        acc_a = _mm256_add_pd(acc_a, g);
        acc_b = _mm256_add_pd(acc_b, _mm256_mul_pd(_mm256_mul_pd(g, _mm256_sub_pd(load4(x + j), m)), is));
    }
    const double a = finish(acc_a, n - j, [&](std::int64_t k) { return double(dy[j + k]); });
    const double b = finish(acc_b, n - j, [&](std::int64_t k) {
        const double g = double(dy[j + k]);
        return g * (double(x[j + k]) - mean) * invstd;
    });
    return {a, b};
}
#endif

// AVX-512 CPUs run the AVX2 loops: the sums' four lanes fill one 256-bit register.
IsaChoice& active_isa() {
    static IsaChoice choice("set_row_sum_isa");
    return choice;
}

#ifdef RETORT_ROW_SUMS_X86
bool use_avx2() { return active_isa().get() != Isa::portable; }
#endif

}  // namespace

double row_sum(const float* x, std::int64_t n) {
#ifdef RETORT_ROW_SUMS_X86
    if (use_avx2()) return avx2_sum(x, n);
#endif
    return row_sum_portable(x, n);
}

double row_sum_squared_deviation(const float* x, std::int64_t n, double mean) {
#ifdef RETORT_ROW_SUMS_X86
    if (use_avx2()) return avx2_squared_deviation(x, n, mean);
#endif
    return row_sum_squared_deviation_portable(x, n, mean);
}

SumPair row_sum_grad(const float* dy, const float* x, std::int64_t n, double mean,
                     double invstd) {
#ifdef RETORT_ROW_SUMS_X86
    if (use_avx2()) return avx2_grad(dy, x, n, mean, invstd);
#endif
    return row_sum_grad_portable(dy, x, n, mean, invstd);
}

std::vector<std::string> row_sum_isas() { return IsaChoice::names(); }
const char* row_sum_isa() { return active_isa().name(); }
void set_row_sum_isa(const std::string& name) { active_isa().set(name); }

}  // namespace retort::cpu
