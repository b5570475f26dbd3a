// engine/cpu/wide_unary.cpp: each loop compiled three times, for AVX-512, AVX2+FMA and the
// baseline; the best this CPU supports is picked once (see wide_unary.h).
#include "engine/cpu/wide_unary.h"


#include "engine/cpu/isa.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace retort::cpu {

namespace {

constexpr std::int64_t kGrain = 16384;

template <class F>
[[gnu::always_inline]] inline void forward_body(const float* __restrict x, float* __restrict y,
                                                std::int64_t n) {
    const F f{};
    for (std::int64_t i = 0; i < n; ++i) y[i] = f.template forward<float>(x[i]);
}

template <class F>
[[gnu::always_inline]] inline void backward_body(const float* __restrict x,
                                                 const float* __restrict y,
                                                 const float* __restrict dy,
                                                 float* __restrict dx, std::int64_t n) {
    const F f{};
    for (std::int64_t i = 0; i < n; ++i)
        dx[i] = f.template backward<float>(F::uses_x ? x[i] : 0.0f, F::uses_y ? y[i] : 0.0f, dy[i]);
}

template <class F>
void forward_portable(const float* x, float* y, std::int64_t n) { forward_body<F>(x, y, n); }
template <class F>
void backward_portable(const float* x, const float* y, const float* dy, float* dx, std::int64_t n) {
    backward_body<F>(x, y, dy, dx, n);
}

#if defined(__x86_64__) || defined(__i386__)
template <class F>
__attribute__((target("avx2,fma"))) void forward_avx2(const float* x, float* y, std::int64_t n) {
    forward_body<F>(x, y, n);
}
template <class F>
__attribute__((target("avx2,fma"))) void backward_avx2(const float* x, const float* y,
                                                       const float* dy, float* dx, std::int64_t n) {
    backward_body<F>(x, y, dy, dx, n);
}
template <class F>
__attribute__((target("avx512f"))) void forward_avx512(const float* x, float* y, std::int64_t n) {
    forward_body<F>(x, y, n);
}
template <class F>
__attribute__((target("avx512f"))) void backward_avx512(const float* x, const float* y,
                                                        const float* dy, float* dx, std::int64_t n) {
    backward_body<F>(x, y, dy, dx, n);
}
#endif

IsaChoice& active_isa() {
    static IsaChoice choice("set_wide_unary_isa");
    return choice;
}

Isa isa() { return active_isa().get(); }

}  // namespace

template <class F>
void wide_forward(const float* x, float* y, std::int64_t n) {
    parallel_for(0, n, kGrain, [&](std::int64_t b, std::int64_t e) {
        switch (isa()) {
#if defined(__x86_64__) || defined(__i386__)
            case Isa::avx512: return forward_avx512<F>(x + b, y + b, e - b);
            case Isa::avx2: return forward_avx2<F>(x + b, y + b, e - b);
#endif
            default: return forward_portable<F>(x + b, y + b, e - b);
        }
    });
}

template <class F>
void wide_backward(const float* x, const float* y, const float* dy, float* dx, std::int64_t n) {
    parallel_for(0, n, kGrain, [&](std::int64_t b, std::int64_t e) {
        const float* xb = x ? x + b : nullptr;
        const float* yb = y ? y + b : nullptr;
        switch (isa()) {
#if defined(__x86_64__) || defined(__i386__)
            case Isa::avx512: return backward_avx512<F>(xb, yb, dy + b, dx + b, e - b);
            case Isa::avx2: return backward_avx2<F>(xb, yb, dy + b, dx + b, e - b);
#endif
            default: return backward_portable<F>(xb, yb, dy + b, dx + b, e - b);
        }
    });
}

std::vector<std::string> wide_unary_isas() { return IsaChoice::names(); }

const char* wide_unary_isa() { return active_isa().name(); }

void set_wide_unary_isa(const std::string& name) { active_isa().set(name); }

template void wide_forward<math::GeluErf>(const float*, float*, std::int64_t);
template void wide_forward<math::Sigmoid>(const float*, float*, std::int64_t);
template void wide_forward<math::Silu>(const float*, float*, std::int64_t);
template void wide_backward<math::GeluErf>(const float*, const float*, const float*, float*,
                                           std::int64_t);
template void wide_backward<math::Sigmoid>(const float*, const float*, const float*, float*,
                                           std::int64_t);
template void wide_backward<math::Silu>(const float*, const float*, const float*, float*,
                                        std::int64_t);

}  // namespace retort::cpu
