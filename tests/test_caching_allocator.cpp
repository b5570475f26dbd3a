// tests/test_caching_allocator.cpp: the CUDA backend's caching allocator, on the CPU. A fake
// RawMemory with a fixed capacity stands in for cudaMalloc, so reuse, size classes, statistics,
// the retry after emptying the cache and the out-of-memory message are all checked here.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/runtime.h"
#include "engine/error.h"

using namespace retort;
using namespace retort::cuda;

namespace {

constexpr std::size_t MiB = std::size_t{1} << 20;

// Host memory with a capacity, counting what it handed out; the counters outlive it.
struct FakeLedger {
    std::size_t capacity = 0, used = 0;
    std::int64_t allocations = 0, releases = 0, refusals = 0;
    std::set<void*> live;
};

class FakeMemory : public RawMemory {
public:
    explicit FakeMemory(FakeLedger& ledger) : ledger_(ledger) {}
    void* allocate(std::size_t bytes) override {
        if (ledger_.used + bytes > ledger_.capacity) {
            ++ledger_.refusals;
            return nullptr;
        }
        void* block = std::malloc(bytes);
        ledger_.used += bytes;
        ++ledger_.allocations;
        sizes_[block] = bytes;
        ledger_.live.insert(block);
        return block;
    }
    void release(void* block) override {
        REQUIRE(ledger_.live.erase(block) == 1);  // never released twice, never unknown
        ledger_.used -= sizes_[block];
        ++ledger_.releases;
        std::free(block);
    }
    std::string name() const override { return "fake GPU"; }

private:
    FakeLedger& ledger_;
    std::map<void*, std::size_t> sizes_;
};

}  // namespace

TEST_CASE("caching allocator: size classes") {
    CHECK(CachingAllocator::rounded_size(1) == 512);
    CHECK(CachingAllocator::rounded_size(512) == 512);
    CHECK(CachingAllocator::rounded_size(513) == 1024);
    CHECK(CachingAllocator::rounded_size(MiB - 1) == MiB);
    CHECK(CachingAllocator::rounded_size(MiB) == MiB);
    CHECK(CachingAllocator::rounded_size(MiB + 1) == 2 * MiB);
    CHECK(CachingAllocator::rounded_size(100 * MiB + 7) == 101 * MiB);
    CHECK_THROWS_WITH_AS(CachingAllocator::rounded_size(SIZE_MAX - 10), doctest::Contains("too large"), Error);
    CHECK(format_bytes(512) == "512 B");
    CHECK(format_bytes(3 * MiB / 2) == "1.5 MiB");
    CHECK(format_bytes(std::size_t{2} << 30) == "2.0 GiB");
}

TEST_CASE("caching allocator: freed blocks are reused, counted, and all returned at the end") {
    FakeLedger ledger;
    ledger.capacity = 64 * MiB;
    {
        CachingAllocator a(std::make_unique<FakeMemory>(ledger));
        CHECK(a.allocate(0) == nullptr);
        void* x = a.allocate(1000);  // class 1024
        void* y = a.allocate(3 * MiB);
        CHECK(ledger.allocations == 2);
        AllocatorStats s = a.stats();
        CHECK(s.in_use == 1024 + 3 * MiB);
        CHECK(s.cached == 0);

        a.free(x);
        a.free(y);
        s = a.stats();
        CHECK(s.in_use == 0);
        CHECK(s.cached == 1024 + 3 * MiB);
        CHECK(s.peak_in_use == 1024 + 3 * MiB);

        // The same class comes back without asking the device; a smaller class does not take a
        // larger small block.
        void* x2 = a.allocate(600);  // class 1024 again
        CHECK(x2 == x);
        void* small = a.allocate(100);  // class 512: new
        CHECK(small != x);
        // A large block serves requests it exceeds by at most an eighth plus 1 MiB...
        void* y2 = a.allocate(2 * MiB + 1);  // class 3 MiB: fits the cached 3 MiB block
        CHECK(y2 == y);
        a.free(y2);
        // ...and not much smaller ones.
        void* tiny_large = a.allocate(MiB);  // class 1 MiB: 3 MiB is more than 1/8 + 1 MiB over
        CHECK(tiny_large != y);
        s = a.stats();
        CHECK(s.requests == 6);
        CHECK(s.cache_hits == 2);
        CHECK(s.raw_allocations == 4);
        CHECK(ledger.allocations == 4);
        CHECK(a.describe().find("fake GPU: in use") == 0);

        // Freeing what was never handed out, or twice, is an error that names the memory.
        int not_ours = 0;
        CHECK_THROWS_WITH_AS(a.free(&not_ours), doctest::Contains("is not a block in use from fake GPU"), Error);
        a.free(small);
        CHECK_THROWS_WITH_AS(a.free(small), doctest::Contains("freed twice"), Error);
        a.free(nullptr);  // ignored, as free(nullptr)

        a.empty_cache();
        CHECK(a.stats().cached == 0);
        CHECK(ledger.live.size() == 2);  // x2 and tiny_large are still in use
    }
    // the destructor returned the blocks still in use too
    CHECK(ledger.live.empty());
    CHECK(ledger.used == 0);
    CHECK(ledger.releases == ledger.allocations);
}

TEST_CASE("caching allocator: a full device is retried after emptying the cache, then a clear error") {
    FakeLedger ledger;
    ledger.capacity = 10 * MiB;
    CachingAllocator a(std::make_unique<FakeMemory>(ledger));
    void* six = a.allocate(6 * MiB);
    a.free(six);  // 6 MiB cached: a request of 8 MiB does not fit beside it
    void* eight = a.allocate(8 * MiB);
    REQUIRE(eight != nullptr);
    CHECK(ledger.refusals == 1);
    CHECK(a.stats().cache_flushes == 1);
    CHECK(a.stats().cached == 0);
    CHECK(a.stats().peak_reserved == 8 * MiB);

    // 8 MiB in use, nothing cached: 4 MiB more cannot be had.
    CHECK_THROWS_WITH_AS(a.allocate(4 * MiB - 100),
                         doctest::Contains("out of memory on fake GPU: asked for 4.0 MiB (4.0 MiB "
                                           "rounded); retort holds 8.0 MiB in tensors and 0 B cached"),
                         Error);
    // the allocator is still usable after the error
    // The cached 8 MiB block is too large for 4 MiB (more than an eighth + 1 MiB over), and the
    // device cannot give 4 MiB beside it: the cache is emptied again and the request succeeds.
    a.free(eight);
    CHECK(a.allocate(4 * MiB) != nullptr);
    CHECK(a.stats().cache_flushes == 2);
    CHECK(a.stats().in_use == 4 * MiB);
}

TEST_CASE("caching allocator: threads allocating and freeing at once keep the books straight") {
    FakeLedger ledger;
    ledger.capacity = 256 * MiB;
    {
        CachingAllocator a(std::make_unique<FakeMemory>(ledger));
        auto work = [&](int seed) {
            std::vector<void*> held;
            for (int i = 0; i < 2000; ++i) {
                const std::size_t bytes = static_cast<std::size_t>((seed * 7919 + i * 104729) % 5000 + 1) * 64;
                held.push_back(a.allocate(bytes));
                if (held.size() > 8) {
                    a.free(held.front());
                    held.erase(held.begin());
                }
            }
            for (void* b : held) a.free(b);
        };
        std::thread t1(work, 1), t2(work, 2);
        work(3);
        t1.join();
        t2.join();
        const AllocatorStats s = a.stats();
        CHECK(s.in_use == 0);
        CHECK(s.requests == 6000);
        CHECK(s.cache_hits + s.raw_allocations == 6000);
        CHECK(s.cache_hits > 0);
    }
    CHECK(ledger.live.empty());
}

TEST_CASE("caching allocator: the GPU allocators without a GPU are a clear error") {
    if (device_count() > 0) {
        MESSAGE("a GPU is visible: tools/gpu-check.sh runs the device side");
        return;
    }
    CHECK_THROWS_AS(device_allocator(0), Error);
    CHECK_THROWS_AS(pinned_host_allocator(), Error);
}
