// tests/test_scaled_add.cpp: the depthwise convolution's elementwise loops
// (engine/cpu/scaled_add.h) give the portable loop's bits in every variant this CPU runs, and
// so does a whole depthwise convolution, forward and backward.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "engine/cpu/scaled_add.h"
#include "engine/engine.h"

using namespace retort;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct RestoreVariant {
    std::string initial = cpu::scaled_add_isa();
    ~RestoreVariant() { cpu::set_scaled_add_isa(initial); }
};

}  // namespace

TEST_CASE("scaled add: every variant gives the portable loop's bits, for every length up to 70") {
    RestoreVariant restore;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> start(80), in(80), other(80);
    for (float& v : start) v = normal(rng);
    for (float& v : in) v = normal(rng);
    for (float& v : other) v = normal(rng);
    const float weight = 0.7301f;
    CHECK(cpu::scaled_add_isas().back() == "portable");
    for (const std::string& isa : cpu::scaled_add_isas()) {
        cpu::set_scaled_add_isa(isa);
        for (int offset = 0; offset < 3; ++offset)
            for (std::int64_t n = 0; n <= 70; ++n) {
                CAPTURE(isa);
                CAPTURE(offset);
                CAPTURE(n);
                // the output buffers are whole, so a write past n would show in the comparison
                std::vector<float> expected = start, got = start;
                cpu::add_scaled_portable(expected.data() + offset, in.data() + offset, weight, n);
                cpu::add_scaled(got.data() + offset, in.data() + offset, weight, n);
                CHECK(same_bits(got, expected));
                expected = start;
                got = start;
                cpu::add_products_portable(expected.data() + offset, in.data() + offset,
                                           other.data() + offset, n);
                cpu::add_products(got.data() + offset, in.data() + offset, other.data() + offset, n);
                CHECK(same_bits(got, expected));
            }
    }
    CHECK_THROWS_WITH_AS(cpu::set_scaled_add_isa("sse9"), doctest::Contains("not available"),
                         Error);
}

TEST_CASE("scaled add: a unit-stride depthwise convolution gives the same bits in every variant") {
    RestoreVariant restore;
    Generator gen(5);
    const Tensor x = randn({3, 4, 13, 11}, DType::f32, &gen);
    const Tensor w = randn({8, 1, 3, 3}, DType::f32, &gen);  // two outputs per input channel
    const Tensor bias = randn({8}, DType::f32, &gen);
    Conv2dOptions options;
    options.padding = {1, 1};
    options.groups = 4;
    const Tensor dy = randn({3, 8, 13, 11}, DType::f32, &gen);
    std::vector<std::vector<float>> first;
    for (const std::string& isa : cpu::scaled_add_isas()) {
        CAPTURE(isa);
        cpu::set_scaled_add_isa(isa);
        Tensor a = x.detach().set_requires_grad(true), k = w.detach().set_requires_grad(true);
        const Tensor y = conv2d(a, k, bias, options);
        sum(y * dy).backward();
        const std::vector<std::vector<float>> got = {y.to_vector<float>(), a.grad().to_vector<float>(),
                                                     k.grad().to_vector<float>()};
        if (first.empty()) first = got;
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(same_bits(got[i], first[i]));
    }
}
