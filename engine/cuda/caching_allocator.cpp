// engine/cuda/caching_allocator.cpp: size classes, free lists and statistics (see the header).
#include "engine/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdio>

#include "engine/error.h"

namespace retort::cuda {

std::string format_bytes(std::size_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    if (unit == 0) std::snprintf(text, sizeof text, "%zu B", bytes);
    else std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

std::size_t CachingAllocator::rounded_size(std::size_t bytes) {
    const std::size_t quantum = bytes < kLargeQuantum ? kSmallQuantum : kLargeQuantum;
    require(bytes <= SIZE_MAX - quantum, "CachingAllocator: a request of ", bytes, " bytes is too large");
    return (bytes + quantum - 1) / quantum * quantum;
}

CachingAllocator::CachingAllocator(std::unique_ptr<RawMemory> memory) : memory_(std::move(memory)) {
    require(memory_ != nullptr, "CachingAllocator: no memory to allocate from");
}

CachingAllocator::~CachingAllocator() {
    std::lock_guard lock(mutex_);
    release_cached();
    // Blocks still in use belong to tensors that outlive the allocator (at program exit): give
    // them back too, so that nothing leaks from the device's point of view.
    for (const auto& [block, size] : in_use_) memory_->release(block);
    in_use_.clear();
}

void* CachingAllocator::take_cached(std::size_t size) {
    auto it = free_.lower_bound(size);
    if (it == free_.end()) return nullptr;
    const std::size_t found = it->first;
    // Small classes: only the same class. Large: up to an eighth (and one quantum) more.
    const bool fits = size < kLargeQuantum ? found == size : found <= size + size / 8 + kLargeQuantum;
    if (!fits) return nullptr;
    void* block = it->second;
    free_.erase(it);
    stats_.cached -= found;
    in_use_.emplace(block, found);
    note_in_use(found);
    return block;
}

void CachingAllocator::note_in_use(std::size_t size) {
    stats_.in_use += size;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.in_use + stats_.cached);
}

void* CachingAllocator::allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    const std::size_t size = rounded_size(bytes);
    std::lock_guard lock(mutex_);
    ++stats_.requests;
    if (void* block = take_cached(size)) {
        ++stats_.cache_hits;
        return block;
    }
    void* block = memory_->allocate(size);
    if (!block && !free_.empty()) {
        // The device is full, partly of blocks retort keeps for reuse: give them back and retry.
        release_cached();
        ++stats_.cache_flushes;
        block = memory_->allocate(size);
    }
    if (!block)
        fail("out of memory on ", memory_->name(), ": asked for ", format_bytes(bytes), " (",
             format_bytes(size), " rounded); retort holds ", format_bytes(stats_.in_use),
             " in tensors and ", format_bytes(stats_.cached),
             " cached (the cache was emptied and the request retried). Use a smaller batch, or ",
             "free tensors that are no longer needed");
    ++stats_.raw_allocations;
    in_use_.emplace(block, size);
    note_in_use(size);
    return block;
}

void CachingAllocator::free(void* block) {
    if (!block) return;
    std::lock_guard lock(mutex_);
    auto it = in_use_.find(block);
    require(it != in_use_.end(), "CachingAllocator::free: ", block, " is not a block in use from ",
            memory_->name(), " (freed twice, or allocated elsewhere)");
    const std::size_t size = it->second;
    in_use_.erase(it);
    stats_.in_use -= size;
    stats_.cached += size;
    free_.emplace(size, block);
}

void CachingAllocator::release_cached() {
    for (const auto& [size, block] : free_) memory_->release(block);
    free_.clear();
    stats_.cached = 0;
}

void CachingAllocator::empty_cache() {
    std::lock_guard lock(mutex_);
    release_cached();
}

AllocatorStats CachingAllocator::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

std::string CachingAllocator::describe() const {
    const AllocatorStats s = stats();
    return cat(memory_->name(), ": in use ", format_bytes(s.in_use), ", cached ",
               format_bytes(s.cached), ", peak in use ", format_bytes(s.peak_in_use),
               ", peak reserved ", format_bytes(s.peak_reserved), "; ", s.requests, " requests, ",
               s.cache_hits, " from the cache, ", s.raw_allocations, " from the device");
}

}  // namespace retort::cuda
