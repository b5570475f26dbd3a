// engine/cpu_allocator.cpp: the exact-size cache of large CPU blocks (see cpu_allocator.h).
#include "engine/cpu_allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace retort {

namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kMinCachedBytes = std::size_t(256) << 10;  // smaller ones stay in malloc's arenas

std::size_t rounded(std::size_t bytes) {
    const std::size_t r = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    return r == 0 ? kAlignment : r;
}

// One process-wide cache. Loader worker threads allocate too, hence the mutex; it is taken only
// for blocks large enough that the lock costs nothing next to what is done with them.
struct Cache {
    std::mutex mutex;
    std::map<std::size_t, std::vector<void*>> free_blocks;  // by rounded size
    std::size_t cached_bytes = 0;
    std::size_t limit = std::size_t(2) << 30;
    std::size_t hits = 0, misses = 0;

    // Frees cached blocks, largest first, until at most `target` bytes are held.
    void shrink_to(std::size_t target) {
        while (cached_bytes > target && !free_blocks.empty()) {
            auto last = std::prev(free_blocks.end());
            std::free(last->second.back());
            last->second.pop_back();
            cached_bytes -= last->first;
            if (last->second.empty()) free_blocks.erase(last);
        }
    }
};

Cache& cache() {
    static Cache* instance = new Cache;  // never destroyed: tensors may outlive static destructors
    return *instance;
}

}  // namespace

void* cpu_allocate(std::size_t bytes) {
    const std::size_t size = rounded(bytes);
    if (size >= kMinCachedBytes) {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        auto it = c.free_blocks.find(size);
        if (it != c.free_blocks.end()) {
            void* block = it->second.back();
            it->second.pop_back();
            if (it->second.empty()) c.free_blocks.erase(it);
            c.cached_bytes -= size;
            ++c.hits;
            return block;
        }
        ++c.misses;
    }
    return std::aligned_alloc(kAlignment, size);
}

void cpu_free(void* block, std::size_t bytes) {
    if (block == nullptr) return;
    const std::size_t size = rounded(bytes);
    if (size >= kMinCachedBytes) {
        Cache& c = cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (size <= c.limit) {
            c.free_blocks[size].push_back(block);
            c.cached_bytes += size;
            c.shrink_to(c.limit);  // may free this very block again if the cache is full
            return;
        }
    }
    std::free(block);
}

CpuCacheStats cpu_cache_stats() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return {c.cached_bytes, c.hits, c.misses};
}

void cpu_cache_release() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.shrink_to(0);
}

void set_cpu_cache_limit(std::size_t bytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.limit = bytes;
    c.shrink_to(bytes);
}

}  // namespace retort
