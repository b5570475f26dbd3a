// engine/kernels/for_each.h: the CPU side of retort's one kernel shape.
//
// A kernel in engine/kernels/ is a small struct: the pointers and sizes it works on, and a
// RETORT_HD operator()(i) that computes element (or line, or output) i and writes it. The CUDA
// backend launches it over a grid (engine/cuda/launch.cuh: one GPU thread per i); the CPU runs
// the very same struct through for_each_cpu below. That is how the arithmetic of every CUDA
// kernel is exercised by the CPU tests on machines without a GPU: only the loop differs.
#pragma once

#include <cstdint>

#include "engine/parallel.h"

namespace retort::kernels {

// kernel(i) for every i in [0, n), split across the thread pool in chunks of `grain`. Each i is
// computed by exactly one call, so the result never depends on the thread count.
template <class Kernel>
void for_each_cpu(std::int64_t n, const Kernel& kernel, std::int64_t grain = 16384) {
    parallel_for(0, n, grain, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) kernel(i);
    });
}

}  // namespace retort::kernels
