// engine/parallel.h: CPU threading, and why results do not depend on the thread count.
//
// parallel_for(begin, end, grain, fn) cuts [begin, end) into chunks of `grain` items and calls
// fn(chunk_begin, chunk_end) for each, spread over OpenMP threads. The chunk boundaries depend
// only on `grain`, never on the number of threads. A kernel that writes each output from exactly
// one chunk, or that combines per-chunk partial results in chunk order, therefore gives the same
// bits with 1 thread or 64. Every kernel in engine/cpu follows that rule.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>

#ifdef RETORT_HAVE_OPENMP
#include <omp.h>
#endif

namespace retort {

int num_threads();             // threads the CPU kernels use
void set_num_threads(int n);   // n >= 1

template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& fn) {
    if (end <= begin) return;
    grain = std::max<std::int64_t>(grain, 1);
    const std::int64_t chunks = (end - begin + grain - 1) / grain;
#ifdef RETORT_HAVE_OPENMP
    if (chunks > 1 && num_threads() > 1 && !omp_in_parallel()) {
        // An exception must not leave an OpenMP region (the program would terminate): keep the
        // one from the lowest chunk and rethrow it on the calling thread after the loop.
        std::exception_ptr error;
        std::int64_t error_chunk = std::numeric_limits<std::int64_t>::max();
#pragma omp parallel for schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
            std::int64_t b = begin + c * grain;
            try {
                fn(b, std::min(end, b + grain));
            } catch (...) {
#pragma omp critical(retort_parallel_for_error)
                if (c < error_chunk) {
                    error_chunk = c;
                    error = std::current_exception();
                }
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    for (std::int64_t c = 0; c < chunks; ++c) {
        std::int64_t b = begin + c * grain;
        fn(b, std::min(end, b + grain));
    }
}

// A grain that gives each chunk about `work_per_chunk` units when one item costs `cost_per_item`.
inline std::int64_t grain_for(std::int64_t cost_per_item, std::int64_t work_per_chunk = 32768) {
    return std::max<std::int64_t>(1, work_per_chunk / std::max<std::int64_t>(cost_per_item, 1));
}

}  // namespace retort
