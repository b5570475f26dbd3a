// tests/test_row_sums.cpp: the normalization row sums (engine/cpu/row_sums.h) in every variant
// this CPU runs equal lane_sum's sums to the bit, and batch norm and layer norm give the same
// bits whichever variant runs them.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "engine/cpu/row_sums.h"
#include "engine/engine.h"

using namespace retort;

namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Restores the variant in use when a test ends, passed or not.
struct RestoreVariant {
    std::string initial = cpu::row_sum_isa();
    ~RestoreVariant() { cpu::set_row_sum_isa(initial); }
};

}  // namespace

TEST_CASE("row sums: every variant equals lane_sum to the bit, for every length up to 70") {
    RestoreVariant restore;
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.5f, 3.0f);
    // Offsets 0..3 so that vector loads start unaligned too.
    std::vector<float> x(80), dy(80);
    for (float& v : x) v = normal(rng);
    for (float& v : dy) v = normal(rng);
    const double mean = 0.3125, invstd = 1.7;
    CHECK(cpu::row_sum_isas().back() == "portable");
    for (const std::string& isa : cpu::row_sum_isas()) {
        cpu::set_row_sum_isa(isa);
        CHECK(std::string(cpu::row_sum_isa()) == isa);
        for (int offset = 0; offset < 4; ++offset)
            for (std::int64_t n = 0; n <= 70; ++n) {
                CAPTURE(isa);
                CAPTURE(offset);
                CAPTURE(n);
                const float* xs = x.data() + offset;
                const float* gs = dy.data() + offset;
                const double sum = lane_sum(n, [&](std::int64_t j) { return double(xs[j]); });
                const double sq = lane_sum(n, [&](std::int64_t j) {
                    const double d = double(xs[j]) - mean;
                    return d * d;
                });
                const SumPair pair = lane_sum_pair(n, [&](std::int64_t j) {
                    const double g = double(gs[j]);
                    return SumPair{g, g * (double(xs[j]) - mean) * invstd};
                });
                CHECK(same_bits(cpu::row_sum(xs, n), sum));
                CHECK(same_bits(cpu::row_sum_squared_deviation(xs, n, mean), sq));
                const SumPair got = cpu::row_sum_grad(gs, xs, n, mean, invstd);
                CHECK(same_bits(got.a, pair.a));
                CHECK(same_bits(got.b, pair.b));
            }
    }
    CHECK_THROWS_WITH_AS(cpu::set_row_sum_isa("sse9"), doctest::Contains("not available"), Error);
}

TEST_CASE("row sums: batch norm and layer norm give the same bits in every variant") {
    RestoreVariant restore;
    Generator gen(11);
    const Tensor x = randn({6, 5, 7, 9}, DType::f32, &gen) * 2.0 + 0.5;
    const Tensor dy = randn({6, 5, 7, 9}, DType::f32, &gen);
    const Tensor w_channel = randn({5}, DType::f32, &gen), b_channel = randn({5}, DType::f32, &gen);
    const Tensor w_row = randn({9}, DType::f32, &gen), b_row = randn({9}, DType::f32, &gen);
    struct Outputs {
        std::vector<float> y, dx, dw, db;
    };
    auto run = [&](bool layer) {
        Tensor a = x.detach().set_requires_grad(true);
        Tensor w = (layer ? w_row : w_channel).detach().set_requires_grad(true);
        Tensor b = (layer ? b_row : b_channel).detach().set_requires_grad(true);
        const Tensor y = layer ? layer_norm(a, {9}, w, b, 1e-5)
                               : batch_norm(a, Tensor(), Tensor(), w, b, true, 0.1, 1e-5);
        sum(y * dy).backward();
        return Outputs{y.to_vector<float>(), a.grad().to_vector<float>(),
                       w.grad().to_vector<float>(), b.grad().to_vector<float>()};
    };
    for (bool layer : {false, true}) {
        CAPTURE(layer);
        std::vector<Outputs> results;
        for (const std::string& isa : cpu::row_sum_isas()) {
            cpu::set_row_sum_isa(isa);
            results.push_back(run(layer));
        }
        for (const Outputs& r : results) {
            CHECK(r.y == results.front().y);
            CHECK(r.dx == results.front().dx);
            CHECK(r.dw == results.front().dw);
            CHECK(r.db == results.front().db);
        }
    }
}
