// engine/cpu/fma_peak.h: the machine's f32 fused-multiply-add peak, measured, not looked up.
//
// Every thread runs independent chains of vector FMAs on registers only (no memory traffic), as
// many chains as hide the FMA latency. The sum of their rates is the most a float kernel can get
// on this machine with this many threads: the denominator of every "% of peak" that
// `retort bench` prints. It is measured in the same run as the kernel it judges, because clock
// speeds (turbo, shared cores) differ from machine to machine and minute to minute.
#pragma once

#include <string>

namespace retort::cpu {

struct FmaPeak {
    double gflops = 0;  // f32 GFLOP/s (an FMA counts as 2 flops) summed over threads
    int threads = 0;
    std::string isa;    // "avx512f", "avx2+fma" or "portable"
};

// Runs the FMA loop on num_threads() threads for about `seconds` and returns the best of a few
// repetitions.
FmaPeak measure_fma_peak(double seconds = 0.3);

}  // namespace retort::cpu
