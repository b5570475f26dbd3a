// tests/test_cuda.cpp: CUDA backend checks. They run only where a GPU is visible; elsewhere each
// test reports that it skipped (the arithmetic they exercise is covered by the CPU tests through
// the shared engine/math functors).
#include <doctest/doctest.h>

#include "engine/cuda/device_memory.h"
#include "engine/cuda/runtime.h"
#include "engine/error.h"

using namespace retort;

TEST_CASE("cuda: GPU kernel agrees with the CPU functors") {
    if (cuda::device_count() == 0) {
        MESSAGE("skipped: no CUDA device (CUDA built in: ", cuda::built(), ")");
        return;
    }
    MESSAGE("device 0: ", cuda::device_name(0));
    CHECK(cuda::self_test() < 1e-6);
}

TEST_CASE("cuda: device queries without a GPU are safe") {
    CHECK(cuda::device_count() >= 0);
    if (!cuda::built()) CHECK_THROWS_AS(cuda::self_test(), Error);
}

TEST_CASE("cuda: the device's caching allocator reuses blocks and reports exhaustion clearly") {
    if (cuda::device_count() == 0) {
        MESSAGE("skipped: no CUDA device (CUDA built in: ", cuda::built(), ")");
        return;
    }
    cuda::CachingAllocator& gpu = cuda::device_allocator(0);
    const cuda::AllocatorStats before = gpu.stats();
    void* a = gpu.allocate(10 << 20);
    REQUIRE(a != nullptr);
    gpu.free(a);
    void* b = gpu.allocate(10 << 20);
    CHECK(b == a);  // from the cache, not from cudaMalloc
    CHECK(gpu.stats().cache_hits == before.cache_hits + 1);
    gpu.free(b);
    // a petabyte: cudaMalloc refuses, the cache is emptied, the retry fails, the message says so
    CHECK_THROWS_WITH_AS(gpu.allocate(std::size_t{1} << 50),
                         doctest::Contains("out of memory on GPU 0"), Error);
    // pinned host memory goes through the same bookkeeping
    void* pinned = cuda::pinned_host_allocator().allocate(1 << 20);
    CHECK(pinned != nullptr);
    cuda::pinned_host_allocator().free(pinned);
    MESSAGE(gpu.describe());
}
