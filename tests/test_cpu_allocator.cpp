// tests/test_cpu_allocator.cpp: the exact-size cache of large CPU blocks (engine/cpu_allocator.h):
// a freed large block serves the next request of its size, small blocks bypass it, the limit
// holds, and a training step in steady state gets its large blocks from the cache.
#include <doctest/doctest.h>

#include <cstdint>

#include "engine/cpu_allocator.h"
#include "engine/engine.h"

using namespace retort;

TEST_CASE("cpu allocator: a freed large block is reused for the same size, small ones are not cached") {
    cpu_cache_release();
    const CpuCacheStats start = cpu_cache_stats();
    CHECK(start.cached_bytes == 0);
    void* a = cpu_allocate(1 << 20);
    REQUIRE(a != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(a) % 64 == 0);
    cpu_free(a, 1 << 20);
    CHECK(cpu_cache_stats().cached_bytes == (1 << 20));
    void* b = cpu_allocate(1 << 20);
    CHECK(b == a);
    CHECK(cpu_cache_stats().hits == start.hits + 1);
    void* c = cpu_allocate((1 << 20) + 64);  // another size: not served by a's block
    CHECK(c != b);
    cpu_free(b, 1 << 20);
    cpu_free(c, (1 << 20) + 64);
    void* small = cpu_allocate(1000);
    cpu_free(small, 1000);
    CHECK(cpu_cache_stats().cached_bytes == (1 << 20) + (1 << 20) + 64);
    cpu_cache_release();
    CHECK(cpu_cache_stats().cached_bytes == 0);
}

TEST_CASE("cpu allocator: the cache never holds more than its limit") {
    cpu_cache_release();
    set_cpu_cache_limit(3 << 20);
    void* blocks[5];
    for (auto& p : blocks) p = cpu_allocate(1 << 20);
    for (auto& p : blocks) cpu_free(p, 1 << 20);
    CHECK(cpu_cache_stats().cached_bytes == (3 << 20));
    set_cpu_cache_limit(1 << 20);
    CHECK(cpu_cache_stats().cached_bytes == (1 << 20));
    set_cpu_cache_limit(std::size_t(2) << 30);
    cpu_cache_release();
}

TEST_CASE("cpu allocator: a steady-state training step takes every large block from the cache") {
    manual_seed(0);
    Tensor w = randn({256, 512}).set_requires_grad();
    const Tensor x = randn({512, 256});
    auto step = [&] {
        Tensor loss = mean(relu(matmul(x, w)));
        w.zero_grad();
        loss.backward();
    };
    step();  // the first step fills the cache
    const CpuCacheStats before = cpu_cache_stats();
    for (int i = 0; i < 3; ++i) step();
    const CpuCacheStats after = cpu_cache_stats();
    CHECK(after.misses == before.misses);
    CHECK(after.hits > before.hits);
}
