// engine/cpu/fma_peak.cpp: FMA chains on registers, one copy per instruction set (see fma_peak.h).
//
// Why 16 chains: an FMA takes 4 cycles and a core issues up to 2 per cycle, so at least 8
// independent accumulators are needed to keep both units busy; 16 leaves margin. The loop is
// written with plain arrays and `omp simd` like the GEMM micro-kernel, compiled once per ISA with
// a target attribute and chosen at run time, so the build needs no -march flag.
#include "engine/cpu/fma_peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "engine/parallel.h"

namespace retort::cpu {

namespace {

constexpr int kChains = 16;

// Runs `iterations` rounds of kChains vector FMAs of W lanes; returns a value that depends on
// every accumulator so the compiler cannot drop the work.
template <int W>
[[gnu::always_inline]] inline float fma_chains(std::int64_t iterations, float seed) {
    float acc[kChains][W];
    float mul[W], add[W];
    for (int j = 0; j < W; ++j) {
        mul[j] = 0.999999f;
        add[j] = seed * 1e-7f;
    }
    for (int c = 0; c < kChains; ++c)
        for (int j = 0; j < W; ++j) acc[c][j] = seed + static_cast<float>(c + j);
    for (std::int64_t it = 0; it < iterations; ++it)
        for (int c = 0; c < kChains; ++c)
#if defined(_OPENMP) || defined(RETORT_OPENMP_SIMD)
#pragma omp simd
#endif
            for (int j = 0; j < W; ++j) acc[c][j] = acc[c][j] * mul[j] + add[j];
    float total = 0;
    for (int c = 0; c < kChains; ++c)
        for (int j = 0; j < W; ++j) total += acc[c][j];
    return total;
}

using ChainsFn = float (*)(std::int64_t, float);

float chains_portable(std::int64_t n, float seed) { return fma_chains<4>(n, seed); }
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) float chains_avx2(std::int64_t n, float seed) {
    return fma_chains<8>(n, seed);
}
__attribute__((target("avx512f"))) float chains_avx512(std::int64_t n, float seed) {
    return fma_chains<16>(n, seed);
}
#endif

struct Variant {
    ChainsFn run;
    int lanes;
    const char* isa;
};

Variant best_variant() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return {chains_avx512, 16, "avx512f"};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return {chains_avx2, 8, "avx2+fma"};
#endif
    return {chains_portable, 4, "portable"};
}

}  // namespace

FmaPeak measure_fma_peak(double seconds) {
    const Variant v = best_variant();
    const int threads = num_threads();
    const double flops_per_iteration = 2.0 * kChains * v.lanes;
    // Calibrate: how many iterations one thread does in about 10 ms.
    std::int64_t iterations = 1 << 16;
    for (;;) {
        const auto start = std::chrono::steady_clock::now();
        volatile float sink = v.run(iterations, 1.0f);
        (void)sink;
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (s > 0.01 || iterations > (std::int64_t(1) << 40)) {
            iterations = static_cast<std::int64_t>(iterations * (seconds / 3) / std::max(s, 1e-9));
            break;
        }
        iterations *= 4;
    }
    iterations = std::max<std::int64_t>(iterations, 1024);
    FmaPeak best{0, threads, v.isa};
    for (int repeat = 0; repeat < 3; ++repeat) {
        std::vector<float> sinks(threads);
        const auto start = std::chrono::steady_clock::now();
        parallel_for(0, threads, 1, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t t = b; t < e; ++t)
                sinks[t] = v.run(iterations, 1.0f + static_cast<float>(t));
        });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double gflops = flops_per_iteration * iterations * threads / s / 1e9;
        best.gflops = std::max(best.gflops, gflops);
    }
    return best;
}

}  // namespace retort::cpu
