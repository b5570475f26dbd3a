// engine/cuda/caching_allocator.h: the only way retort gets GPU memory (and pinned host memory).
//
// Why a cache: cudaMalloc and cudaFree are slow (they synchronize the device), and a training step
// allocates and frees the same sizes every time. Freed blocks are kept in free lists by size and
// handed out again; the device sees a handful of allocations in a whole run.
//
// The bookkeeping here knows nothing of CUDA: it draws raw blocks from a RawMemory (cudaMalloc /
// cudaFree on a GPU, cudaHostAlloc for pinned buffers, an in-process fake in the tests), so all of
// it is tested on machines without a GPU.
//
// Sizes are rounded up to a size class, so that blocks can be reused across requests of nearly
// equal sizes:
//   below 1 MiB       a multiple of 512 bytes, reused only for the same class;
//   1 MiB and above   a multiple of 1 MiB, reused for any request it exceeds by at most an eighth
//                     (and 1 MiB), so a large block is not tied up by a much smaller tensor.
// When the device has no memory left, every cached block is returned and the request retried once;
// if it still fails, an Error says how much was asked and what retort holds, in use and cached.
//
// Thread-safe: the loader's workers may free pinned buffers while the training step allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace retort::cuda {

// Where blocks come from. allocate returns nullptr when there is no memory (not an exception), so
// the cache can empty itself and retry.
class RawMemory {
public:
    virtual ~RawMemory() = default;
    virtual void* allocate(std::size_t bytes) = 0;
    virtual void release(void* block) = 0;
    virtual std::string name() const = 0;  // for messages: "GPU 0 (NVIDIA H100 80GB HBM3)"
};

// In bytes, except the counts.
struct AllocatorStats {
    std::size_t in_use = 0;         // handed out and not yet freed (rounded sizes)
    std::size_t cached = 0;         // freed, kept for reuse
    std::size_t peak_in_use = 0;
    std::size_t peak_reserved = 0;  // highest in_use + cached: what the device gave retort
    std::int64_t requests = 0;      // allocate() calls
    std::int64_t cache_hits = 0;    // served from a free list
    std::int64_t raw_allocations = 0;  // blocks taken from RawMemory
    std::int64_t cache_flushes = 0;    // times the cache was emptied to retry a request
};

class CachingAllocator {
public:
    explicit CachingAllocator(std::unique_ptr<RawMemory> memory);
    ~CachingAllocator();  // returns every block, cached or not, to the RawMemory
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // A block of at least `bytes` (0 gives nullptr). An Error when the memory is exhausted even
    // after the cache was emptied.
    void* allocate(std::size_t bytes);
    // Back to the cache. nullptr is ignored; a pointer this allocator did not hand out (or handed
    // out and already took back) is an Error.
    void free(void* block);
    // Returns every cached block to the RawMemory (blocks in use stay).
    void empty_cache();

    AllocatorStats stats() const;
    // One line for `retort bench`: "in use 12.0 MiB, cached 4.0 MiB, peak 20.0 MiB, ...".
    std::string describe() const;

    // The size class of a request (see above).
    static std::size_t rounded_size(std::size_t bytes);
    static constexpr std::size_t kSmallQuantum = 512;
    static constexpr std::size_t kLargeQuantum = std::size_t{1} << 20;

private:
    void* take_cached(std::size_t size);  // nullptr when no cached block fits
    void release_cached();                // empty_cache without the lock
    void note_in_use(std::size_t size);

    std::unique_ptr<RawMemory> memory_;
    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;           // cached blocks by size
    std::unordered_map<void*, std::size_t> in_use_;    // handed-out blocks and their sizes
    AllocatorStats stats_;
};

// "1.5 MiB", "512 B", "2.0 GiB": sizes in messages.
std::string format_bytes(std::size_t bytes);

}  // namespace retort::cuda
