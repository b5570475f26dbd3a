// engine/cpu/scaled_add.cpp: see scaled_add.h. Compiled with -ffp-contract=off (CMakeLists.txt):
// a fused multiply-add would round once where the portable loop rounds twice.
#include "engine/cpu/scaled_add.h"

#include "engine/cpu/isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RETORT_SCALED_ADD_X86 1
#endif

namespace retort::cpu {

namespace {

#ifdef RETORT_SCALED_ADD_X86
// The last n mod 16 elements through a mask: masked-off lanes are neither read nor written.
__attribute__((target("avx512f"))) inline __mmask16 tail_mask(std::int64_t rest) {
    return static_cast<__mmask16>((1u << rest) - 1u);
}

__attribute__((target("avx512f"))) void add_scaled_avx512(float* out, const float* in,
                                                          float weight, std::int64_t n) {
    const __m512 w = _mm512_set1_ps(weight);
    std::int64_t p = 0;
    for (; p + 16 <= n; p += 16)
        _mm512_storeu_ps(out + p, _mm512_add_ps(_mm512_loadu_ps(out + p),
                                                _mm512_mul_ps(w, _mm512_loadu_ps(in + p))));
    if (p < n) {
        const __mmask16 m = tail_mask(n - p);
        const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + p),
                                         _mm512_mul_ps(w, _mm512_maskz_loadu_ps(m, in + p)));
        _mm512_mask_storeu_ps(out + p, m, sum);
    }
}

__attribute__((target("avx512f"))) void add_products_avx512(float* sums, const float* a,
                                                            const float* b, std::int64_t n) {
    std::int64_t p = 0;
    for (; p + 16 <= n; p += 16)
        _mm512_storeu_ps(sums + p, _mm512_add_ps(_mm512_loadu_ps(sums + p),
                                                 _mm512_mul_ps(_mm512_loadu_ps(a + p),
                                                               _mm512_loadu_ps(b + p))));
    if (p < n) {
        const __mmask16 m = tail_mask(n - p);
        const __m512 sum = _mm512_add_ps(
            _mm512_maskz_loadu_ps(m, sums + p),
            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + p), _mm512_maskz_loadu_ps(m, b + p)));
        _mm512_mask_storeu_ps(sums + p, m, sum);
    }
}

__attribute__((target("avx2"))) void add_scaled_avx2(float* out, const float* in, float weight,
                                                     std::int64_t n) {
    const __m256 w = _mm256_set1_ps(weight);
    std::int64_t p = 0;
    for (; p + 8 <= n; p += 8)
        _mm256_storeu_ps(out + p, _mm256_add_ps(_mm256_loadu_ps(out + p),
                                                _mm256_mul_ps(w, _mm256_loadu_ps(in + p))));
    for (; p < n; ++p) out[p] += weight * in[p];
}

__attribute__((target("avx2"))) void add_products_avx2(float* sums, const float* a,
                                                       const float* b, std::int64_t n) {
    std::int64_t p = 0;
    for (; p + 8 <= n; p += 8)
        _mm256_storeu_ps(sums + p, _mm256_add_ps(_mm256_loadu_ps(sums + p),
                                                 _mm256_mul_ps(_mm256_loadu_ps(a + p),
                                                               _mm256_loadu_ps(b + p))));
    for (; p < n; ++p) sums[p] += a[p] * b[p];
}
#endif

IsaChoice& active_isa() {
    static IsaChoice choice("set_scaled_add_isa");
    return choice;
}

}  // namespace

void add_scaled(float* out, const float* in, float weight, std::int64_t n) {
    switch (active_isa().get()) {
#ifdef RETORT_SCALED_ADD_X86
        case Isa::avx512: return add_scaled_avx512(out, in, weight, n);
        case Isa::avx2: return add_scaled_avx2(out, in, weight, n);
#endif
        default: return add_scaled_portable(out, in, weight, n);
    }
}

void add_products(float* sums, const float* a, const float* b, std::int64_t n) {
    switch (active_isa().get()) {
#ifdef RETORT_SCALED_ADD_X86
        case Isa::avx512: return add_products_avx512(sums, a, b, n);
        case Isa::avx2: return add_products_avx2(sums, a, b, n);
#endif
        default: return add_products_portable(sums, a, b, n);
    }
}

std::vector<std::string> scaled_add_isas() { return IsaChoice::names(); }
const char* scaled_add_isa() { return active_isa().name(); }
void set_scaled_add_isa(const std::string& name) { active_isa().set(name); }

}  // namespace retort::cpu
