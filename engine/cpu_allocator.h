// engine/cpu_allocator.h: where CPU tensor memory comes from: 64-byte aligned blocks, with large
// freed blocks kept for reuse.
//
// Why a cache: a training step allocates the same activations and gradients, of the same sizes,
// every step. Blocks of a few hundred KiB and more are what the C library hands back to the
// operating system when they are freed (mmap / trim), so every step would fault fresh pages in
// again: about 1,300 page faults (5 MiB) per resnet18 step at batch 64 were measured before this
// cache existed. Here a freed block of at least kMinCachedBytes waits in a list for the next
// request of exactly its size, so a steady-state step gets all its large blocks from the cache.
// Exact sizes rather than size classes: no block is ever larger than asked for, so the peak
// memory of a step stays what its live tensors need. The cache is bounded
// (set_cpu_cache_limit); what does not fit is freed.
#pragma once

#include <cstddef>

namespace retort {

// A block of at least `bytes` (rounded up to 64), aligned to 64 bytes; nullptr when out of memory.
void* cpu_allocate(std::size_t bytes);
// Returns a block from cpu_allocate (which was asked for `bytes`).
void cpu_free(void* block, std::size_t bytes);

struct CpuCacheStats {
    std::size_t cached_bytes = 0;  // held in the cache now
    std::size_t hits = 0;          // requests served from the cache
    std::size_t misses = 0;        // cacheable requests that went to the C library
};
CpuCacheStats cpu_cache_stats();
// Frees every cached block (a program may call it between phases; nothing else needs to).
void cpu_cache_release();
// The most bytes the cache holds (default 2 GiB); lowering it frees blocks at once.
void set_cpu_cache_limit(std::size_t bytes);

}  // namespace retort
