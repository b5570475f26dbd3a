// tests/test_cuda.cpp: CUDA backend checks. They run only where a GPU is visible; elsewhere each
// test reports that it skipped (the arithmetic they exercise is covered by the CPU tests through
// the shared engine/math functors).
#include <doctest/doctest.h>

#include "engine/cuda/device_memory.h"
#include "engine/cuda/runtime.h"
#include "engine/error.h"
#include "engine/tensor.h"

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

TEST_CASE("cuda: tensors on a GPU: a clear error without one, copies and gradients with one") {
    const Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(x.to(Device::cpu()).same(x));  // already there: the tensor itself
    if (cuda::device_count() == 0) {
        const std::string expected = cuda::built() ? "no CUDA device is visible" : "no CUDA backend";
        CHECK_THROWS_WITH_AS(Tensor::empty({2, 3}, DType::f32, Device::cuda()),
                             doctest::Contains(expected.c_str()), Error);
        CHECK_THROWS_WITH_AS(x.to(Device::cuda()), doctest::Contains(expected.c_str()), Error);
        MESSAGE("skipped the device side: no CUDA device (CUDA built in: ", cuda::built(), ")");
        return;
    }
    Tensor leaf = x.clone().set_requires_grad();
    const Tensor on_gpu = leaf.to(Device::cuda());
    CHECK(on_gpu.device() == Device::cuda());
    CHECK(on_gpu.to_vector<float>() == x.to_vector<float>());  // through the CPU
    CHECK(on_gpu.clone().to_vector<float>() == x.to_vector<float>());
    const Tensor back = on_gpu.to(Device::cpu());
    CHECK(back.to_vector<float>() == x.to_vector<float>());
    // the gradient of a copy there and back is the upstream gradient, on the leaf's device
    back.backward(full({2, 3}, 2.0));
    CHECK(leaf.grad().device() == Device::cpu());
    CHECK(leaf.grad().to_vector<float>() == std::vector<float>(6, 2.0f));
    // a CPU kernel handed a GPU tensor refuses it
    CHECK_THROWS_WITH_AS(on_gpu.data<float>(), doctest::Contains("has no CUDA kernel yet"), Error);
    CHECK(Tensor::empty({1}, DType::f32, Device::cuda(0)).to(Device::cpu()).numel() == 1);
}

TEST_CASE("cuda: pinned host tensors need a GPU, and are ordinary CPU tensors with one") {
    if (cuda::device_count() == 0) {
        CHECK_THROWS_AS(Tensor::empty_pinned({4}), Error);  // a clear error, not a crash
        MESSAGE("skipped the pinned copy: no CUDA device (CUDA built in: ", cuda::built(), ")");
        return;
    }
    Tensor pinned = Tensor::empty_pinned({3});
    CHECK(pinned.device().is_cpu());
    CHECK(pinned.impl().storage->pinned());
    for (int i = 0; i < 3; ++i) pinned.data<float>()[i] = static_cast<float>(i + 1);
    CHECK(pinned.to(Device::cuda()).to_vector<float>() == std::vector<float>{1, 2, 3});
}
