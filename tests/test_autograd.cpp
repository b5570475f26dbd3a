// tests/test_autograd.cpp: the graph itself: accumulation, reuse, freeing, NoGradGuard, errors.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

TEST_CASE("autograd: a tensor used twice receives both gradients") {
    Tensor x = from_vector<double>({1, 2, 3}).set_requires_grad();
    Tensor y = sum(x * x + x);  // dy/dx = 2x + 1
    y.backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 5, 7});
}

TEST_CASE("autograd: gradients accumulate across backward calls until zero_grad") {
    Tensor x = from_vector<double>({1, 2}).set_requires_grad();
    sum(x * 3.0).backward();
    sum(x * 3.0).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 6});
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: NoGradGuard records nothing") {
    Tensor x = from_vector<double>({1, 2}).set_requires_grad();
    Tensor y;
    {
        NoGradGuard no_grad;
        y = x * 2.0;
    }
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK_THROWS_AS(sum(y).backward(), Error);
}

TEST_CASE("autograd: the graph is freed after backward, kept with retain_graph") {
    Tensor x = from_vector<double>({1, 2}).set_requires_grad();
    Tensor y = sum(exp(x));
    y.backward(Tensor(), /*retain_graph=*/true);
    y.backward();
    CHECK(max_abs_diff(x.grad(), exp(x.detach()) * 2.0) < 1e-12);
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), Error);
}

TEST_CASE("autograd: a deep chain does not overflow the stack") {
    Tensor x = from_vector<double>({1.0}).set_requires_grad();
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y + 0.0;
    sum(y).backward();
    CHECK(x.grad().item() == 1.0);
    Tensor z = x;  // and dropping a deep graph that never ran backward does not either
    for (int i = 0; i < 300000; ++i) z = z * 1.0;
    z = Tensor();
    CHECK(x.requires_grad());
}

TEST_CASE("autograd: a dropped graph frees its saved tensors (no reference cycles)") {
    std::weak_ptr<TensorImpl> watch;
    Tensor x = from_vector<double>({1, 2}).set_requires_grad();
    {
        Tensor y = exp(x);  // exp saves its own output for backward
        watch = y.impl_ptr();
        Tensor z = sum(y * y);
    }
    CHECK(watch.expired());
}

TEST_CASE("autograd: backward needs an upstream gradient for non-scalars, with the right shape") {
    Tensor x = from_vector<double>({1, 2}).set_requires_grad();
    Tensor y = x * 2.0;
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("upstream gradient"), Error);
    CHECK_THROWS_WITH_AS(y.backward(ones({3}, DType::f64)), doctest::Contains("(3,)"), Error);
    y.backward(from_vector<double>({1, 10}));
    CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 20});
}

TEST_CASE("autograd: detach cuts the graph, requires_grad only on float leaves") {
    Tensor x = from_vector<double>({1, 2}).set_requires_grad();
    Tensor d = (x * 2.0).detach();
    CHECK_FALSE(d.requires_grad());
    CHECK_THROWS_AS(arange(3).set_requires_grad(), Error);
    CHECK_THROWS_AS((x * 2.0).set_requires_grad(), Error);
}

TEST_CASE("autograd: a branch that gets no gradient does not stall the rest") {
    // y = x * 2 + (x.argmax-like path that is not differentiable); gradient must still reach x
    Tensor x = from_vector<double>({1, 2, 3}).set_requires_grad();
    Tensor unused = x * 5.0;                     // never reaches the loss
    Tensor mask = gt(x.detach(), scalar_tensor(1.5, DType::f64));
    Tensor y = sum(where(mask, x * 2.0, x * 0.0));
    y.backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 2, 2});
    (void)unused;
}

TEST_CASE("autograd: two leaves fed by one add get gradients they own") {
    Tensor a = from_vector<double>({1, 2}).set_requires_grad();
    Tensor b = from_vector<double>({3, 4}).set_requires_grad();
    Tensor upstream = from_vector<double>({1, 1});
    (a + b).backward(upstream);
    CHECK_FALSE(a.grad().same(b.grad()));
    CHECK(a.grad().raw_data() != b.grad().raw_data());
    CHECK(a.grad().raw_data() != upstream.raw_data());  // the caller's tensor is not adopted
    CHECK_THROWS_WITH_AS((a * 2.0).backward(from_vector<float>({1, 1})),
                         doctest::Contains("upstream gradient is float32"), Error);
}

TEST_CASE("parallel_for: an exception in a chunk reaches the caller") {
    const int before = num_threads();
    set_num_threads(2);
    CHECK_THROWS_WITH_AS(parallel_for(0, 100, 1,
                                      [](std::int64_t b, std::int64_t) {
                                          if (b == 37) fail("chunk 37 failed");
                                      }),
                         doctest::Contains("chunk 37 failed"), Error);
    set_num_threads(before);
}

TEST_CASE("parallel_for: every chunk runs once, through thread-count changes, nesting and two callers at once") {
    // Without OpenMP this is the std::thread pool's test: loops posted back to back (a worker
    // that starts late must still see the first), resized pools, a loop inside a loop, and two
    // threads of the program calling at the same time.
    const int before = num_threads();
    auto run_counted = [](std::int64_t n, std::int64_t grain) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        parallel_for(0, n, grain, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
        });
        for (const auto& h : hits)
            if (h.load() != 1) return false;
        return true;
    };
    for (int threads : {2, 4, 3, 1, 4}) {
        set_num_threads(threads);
        CHECK(num_threads() == threads);
        for (int repeat = 0; repeat < 200; ++repeat) REQUIRE(run_counted(37, 1 + repeat % 5));
    }
    // nested: the inner loops run on their callers' threads, every item once
    std::vector<std::atomic<int>> grid(16 * 16);
    parallel_for(0, 16, 1, [&](std::int64_t rb, std::int64_t re) {
        for (std::int64_t r = rb; r < re; ++r)
            parallel_for(0, 16, 1, [&](std::int64_t cb, std::int64_t ce) {
                for (std::int64_t c = cb; c < ce; ++c) ++grid[static_cast<std::size_t>(r * 16 + c)];
            });
    });
    for (const auto& g : grid) CHECK(g.load() == 1);
    // two callers: whichever does not get the pool runs its loop itself
    std::atomic<bool> all_good{true};
    auto caller = [&] {
        for (int repeat = 0; repeat < 200; ++repeat)
            if (!run_counted(64, 3)) all_good = false;
    };
    std::thread other(caller);
    caller();
    other.join();
    CHECK(all_good.load());
    set_num_threads(before);
}

TEST_CASE("tensor: a tensor larger than the machine's memory is refused with a message") {
    CHECK_THROWS_WITH_AS(Tensor::empty({1 << 20, 1 << 20, 1 << 10}), doctest::Contains("more than this machine's"), Error);
    CHECK_THROWS_WITH_AS(zeros({-1, 3}), doctest::Contains("sizes must be non-negative"), Error);
    CHECK_THROWS_WITH_AS(zeros({std::int64_t(1) << 62, 8}), doctest::Contains("overflows"), Error);
}
