// engine/parallel.h: CPU threading, and why results do not depend on the thread count.
//
// parallel_for(begin, end, grain, fn) cuts [begin, end) into chunks of `grain` items and calls
// fn(chunk_begin, chunk_end) for each, spread over OpenMP threads. The chunk boundaries depend
// only on `grain`, never on the number of threads. A kernel that writes each output from exactly
// one chunk, or that combines per-chunk partial results in chunk order, therefore gives the same
// bits with 1 thread or 64. Every kernel in engine/cpu follows that rule.
//
// The threads are OpenMP's when retort is built with it (RETORT_OPENMP, the default), otherwise a
// small pool of std::thread workers (parallel.cpp), so a compiler-only build still uses every
// core. Either way a parallel_for inside another one runs serially on its thread, and an exception
// thrown by fn reaches the caller (the one of the lowest chunk, when several throw).
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

#ifndef RETORT_HAVE_OPENMP
namespace detail {
// The std::thread pool behind parallel_for without OpenMP (parallel.cpp). run_chunks calls
// chunk(context, c) once for every c in [0, chunks), on the pool's threads and the caller's, and
// returns when all are done. It returns false, having run nothing, when it cannot use the pool
// (one thread set, called from a pool thread, or the pool busy with another caller's loop): the
// caller then runs the chunks itself.
using ChunkFn = void (*)(void* context, std::int64_t chunk);
bool run_chunks(std::int64_t chunks, ChunkFn chunk, void* context);
}  // namespace detail
#endif

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
#else
    if (chunks > 1) {
        auto one_chunk = [&](std::int64_t c) {
            const std::int64_t b = begin + c * grain;
            fn(b, std::min(end, b + grain));
        };
        using Body = decltype(one_chunk);
        const detail::ChunkFn call = [](void* body, std::int64_t c) { (*static_cast<Body*>(body))(c); };
        if (detail::run_chunks(chunks, call, &one_chunk)) return;
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
