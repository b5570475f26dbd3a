// tests/test_reduction.cpp: max/min (along a dim and overall), argmax/argmin, var/std, logsumexp:
// reference loops, gradient checks, PyTorch fixtures (tests/fixtures/losses.txt) and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/engine.h"
#include "engine/math/lane_sum.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// The reference: for each (o, i) of x viewed as [outer][size][inner], the extreme and its first
// index, NaN winning.
struct RefExtreme {
    std::vector<double> values;
    std::vector<std::int64_t> indices;
};
RefExtreme ref_extreme(const Tensor& x, int dim, bool want_max) {
    std::vector<double> v = x.to_vector<double>();
    DimSplit s = split_at_dim(x.shape(), dim);
    RefExtreme r;
    for (std::int64_t o = 0; o < s.outer; ++o) {
        for (std::int64_t i = 0; i < s.inner; ++i) {
            double best = 0;
            std::int64_t at = -1;
            for (std::int64_t k = 0; k < s.size; ++k) {
                double e = v[(o * s.size + k) * s.inner + i];
                bool take = at < 0 || (!std::isnan(best) &&
                                       (std::isnan(e) || (want_max ? e > best : e < best)));
                if (take) best = e, at = k;
            }
            r.values.push_back(best);
            r.indices.push_back(at);
        }
    }
    return r;
}

bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
    return true;
}

// Small integers so that ties are common.
Tensor tied_values(const Shape& shape, std::uint64_t seed) {
    Generator gen(seed);
    return randint(-3, 4, shape, DType::i64, &gen).to(DType::f32);
}

}  // namespace

TEST_CASE("reduction: max/min along each dim match a reference loop (ties, NaN, keepdim)") {
    Tensor x = tied_values({3, 4, 5}, 1);
    x.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
    x.data<float>()[40] = std::numeric_limits<float>::quiet_NaN();
    for (bool want_max : {true, false}) {
        for (int dim = 0; dim < 3; ++dim) {
            ValuesIndices vi = want_max ? max(x, dim) : min(x, dim);
            RefExtreme ref = ref_extreme(x, dim, want_max);
            Shape dropped = x.shape();
            dropped.erase(dropped.begin() + dim);
            CHECK(vi.values.shape() == dropped);
            CHECK(vi.indices.dtype() == DType::i64);
            CHECK(same_values(vi.values.to_vector<double>(), ref.values));
            CHECK(vi.indices.to_vector<std::int64_t>() == ref.indices);
            Tensor arg = want_max ? argmax(x, dim - 3) : argmin(x, dim - 3);
            CHECK(arg.to_vector<std::int64_t>() == ref.indices);

            ValuesIndices kept = want_max ? max(x, dim, true) : min(x, dim, true);
            Shape ones = x.shape();
            ones[dim] = 1;
            CHECK(kept.values.shape() == ones);
            CHECK(kept.indices.shape() == ones);
            CHECK((want_max ? argmax(x, dim, true) : argmin(x, dim, true)).shape() == ones);
        }
    }
}

TEST_CASE("reduction: max/min on integers, 0-dim tensors and size-1 dims") {
    Tensor ints = from_vector<std::int32_t>({4, -1, 9, 9, 0, 2}, {2, 3});
    ValuesIndices vi = max(ints, 1);
    CHECK(vi.values.dtype() == DType::i32);
    CHECK(vi.values.to_vector<std::int32_t>() == std::vector<std::int32_t>{9, 9});
    CHECK(vi.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 0});
    CHECK(min(ints).item() == -1);

    Tensor scalar = scalar_tensor(5.0);
    ValuesIndices s = max(scalar, 0);
    CHECK(s.values.dim() == 0);
    CHECK(s.values.item() == 5.0);
    CHECK(s.indices.item() == 0);
    CHECK(argmin(scalar, -1).item() == 0);

    Tensor column = from_vector<double>({3, 1, 2}, {3, 1});
    CHECK(max(column, 1).values.to_vector<double>() == std::vector<double>{3, 1, 2});
    CHECK(max(column, 1).indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 0, 0});
}

TEST_CASE("reduction: max/min over all elements, NaN propagates") {
    Tensor x = from_vector<double>({1, 7, -3, 7, 2});
    CHECK(max(x).dim() == 0);
    CHECK(max(x).item() == 7);
    CHECK(min(x).item() == -3);
    Tensor with_nan = from_vector<double>({1, kNaN, 3});
    CHECK(std::isnan(max(with_nan).item()));
    CHECK(std::isnan(min(with_nan).item()));
    CHECK(argmax(with_nan, 0).item() == 1);
}

TEST_CASE("reduction: max/min along a dim route the gradient to the selected element") {
    // distinct values, so the finite differences never cross a tie
    for (Shape shape : {Shape{4, 5}, Shape{2, 3, 7}, Shape{1, 6}, Shape{5}}) {
        for (int dim = 0; dim < static_cast<int>(shape.size()); ++dim) {
            Tensor x = leaf(shape, 10 + dim);
            CHECK(gradcheck([dim](const std::vector<Tensor>& in) { return max(in[0], dim).values; },
                            {x}));
            CHECK(gradcheck(
                [dim](const std::vector<Tensor>& in) { return min(in[0], dim, true).values; },
                {x}));
        }
    }
    // ties: the first index receives the whole gradient, as in PyTorch
    Tensor t = from_vector<double>({2, 5, 5, 1}, {1, 4}).set_requires_grad();
    sum(max(t, 1).values * 3.0).backward();
    CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 3, 0, 0});
}

TEST_CASE("reduction: max/min over all elements split the gradient evenly among ties") {
    Tensor x = leaf({3, 4}, 21);
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return max(in[0]); }, {x}));
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return min(in[0]); }, {x}));
    // PyTorch's rule for torch.max(x) / torch.amax: each of the k tied elements gets 1/k
    Tensor t = from_vector<double>({1, 3, 3, 0, 3}).set_requires_grad();
    max(t).backward(scalar_tensor(6.0, DType::f64));
    CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 2, 2, 0, 2});
}

TEST_CASE("reduction: max/min/argmax errors") {
    Tensor x = zeros({2, 0, 3});
    CHECK_THROWS_WITH_AS(max(x, 1), doctest::Contains("max: cannot reduce over dim 1 of size 0"),
                         Error);
    CHECK_THROWS_WITH_AS(argmin(x, 1), doctest::Contains("(2, 0, 3)"), Error);
    CHECK_THROWS_WITH_AS(max(x), doctest::Contains("max: cannot reduce an empty tensor"), Error);
    CHECK_THROWS_WITH_AS(min(zeros({2, 3}), 2), doctest::Contains("min: dim 2 is out of range"),
                         Error);
    CHECK_THROWS_WITH_AS(argmax(zeros({2, 3}), -3), doctest::Contains("argmax: dim -3"), Error);
}

TEST_CASE("reduction: var and std match a two-pass reference loop") {
    Generator gen(3);
    Tensor x = randn({3, 4, 5}, DType::f64, &gen);
    std::vector<double> v = x.to_vector<double>();
    for (std::int64_t correction : {0, 1, 2}) {
        // over dims (0, 2): one value per middle index j
        Tensor got = var(x, {0, -1}, correction);
        Tensor got_std = retort::std(x, {0, 2}, correction, true);
        REQUIRE(got.shape() == Shape{4});
        REQUIRE(got_std.shape() == Shape{1, 4, 1});
        for (int j = 0; j < 4; ++j) {
            double m = 0, ss = 0;
            for (int i = 0; i < 3; ++i)
                for (int k = 0; k < 5; ++k) m += v[(i * 4 + j) * 5 + k];
            m /= 15;
            for (int i = 0; i < 3; ++i)
                for (int k = 0; k < 5; ++k) ss += std::pow(v[(i * 4 + j) * 5 + k] - m, 2);
            double expected = ss / static_cast<double>(15 - correction);
            CHECK(got.to_vector<double>()[j] == doctest::Approx(expected).epsilon(1e-12));
            CHECK(got_std.to_vector<double>()[j] ==
                  doctest::Approx(std::sqrt(expected)).epsilon(1e-12));
        }
    }
    // all dims, float32
    Tensor xf = from_vector<float>({1, 2, 3, 4});
    CHECK(var(xf, {}).item() == doctest::Approx(5.0 / 3.0));
    // N <= correction divides by 0, as in PyTorch: 0/0 = nan for one element
    CHECK(std::isnan(var(from_vector<double>({2.0}), {0}).item()));
}

TEST_CASE("reduction: var, std and logsumexp gradients") {
    Tensor x = leaf({3, 4, 5}, 31);
    for (Dims dims : {Dims{}, Dims{1}, Dims{0, 2}, Dims{-1}}) {
        for (bool keep : {false, true}) {
            CHECK(gradcheck(
                [&](const std::vector<Tensor>& in) { return var(in[0], dims, 1, keep); }, {x}));
            CHECK(gradcheck(
                [&](const std::vector<Tensor>& in) { return retort::std(in[0], dims, 0, keep); },
                {x}));
            CHECK(gradcheck(
                [&](const std::vector<Tensor>& in) { return logsumexp(in[0], dims, keep); }, {x}));
        }
    }
    Tensor odd = leaf({1, 7}, 32);
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return var(in[0], {1}, 1); }, {odd}));
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return logsumexp(in[0], {0}); }, {odd}));
}

TEST_CASE("reduction: logsumexp is stable and handles infinities like PyTorch") {
    Tensor big = from_vector<float>({1000, 1000, 999}, {1, 3});
    double expected = 1000 + std::log(2 + std::exp(-1.0));
    CHECK(logsumexp(big, {1}).item() == doctest::Approx(expected));
    Tensor x = from_vector<double>({-kInf, -kInf, 0, kInf, 1, 2}, {3, 2});
    std::vector<double> y = logsumexp(x, {1}).to_vector<double>();
    CHECK(y[0] == -kInf);  // an all -inf row: log(0), not nan
    CHECK(y[1] == kInf);
    CHECK(y[2] == doctest::Approx(std::log(std::exp(1.0) + std::exp(2.0))));
    // over every dim (empty list), with keepdim
    Tensor k = logsumexp(from_vector<double>({0, 0, 0, 0}, {2, 2}), {}, true);
    CHECK(k.shape() == Shape{1, 1});
    CHECK(k.item() == doctest::Approx(std::log(4.0)));
}

TEST_CASE("reduction: var and logsumexp match PyTorch (fixture)") {
    Fixture f("losses.txt");
    CHECK(max_abs_diff(var(f["var.x"], {0, 2}), f["var.c1"]) < 1e-12);
    CHECK(max_abs_diff(var(f["var.x"], {1}, 0, true), f["var.c0_keep"]) < 1e-12);
    CHECK(max_abs_diff(var(f.f32("var.x"), {0, 2}), f["var.c1"]) < 1e-5);
    CHECK(max_abs_diff(logsumexp(f["lse.x"], {1}), f["lse.y"]) < 1e-12);
    CHECK(max_abs_diff(logsumexp(f.f32("lse.x"), {1}), f["lse.y"]) < 1e-3);
}

TEST_CASE("reduction: var/std/logsumexp errors") {
    CHECK_THROWS_WITH_AS(var(arange(4), {0}), doctest::Contains("var: expected a floating-point"),
                         Error);
    CHECK_THROWS_WITH_AS(logsumexp(arange(4), {0}),
                         doctest::Contains("logsumexp: expected a floating-point"), Error);
    CHECK_THROWS_WITH_AS(var(zeros({2, 3}), {1, -1}), doctest::Contains("var: a dim appears twice"),
                         Error);
    CHECK_THROWS_WITH_AS(logsumexp(zeros({2, 3}), {3}),
                         doctest::Contains("logsumexp: dim 3 is out of range"), Error);
}

TEST_CASE("lane_sum adds term j into running sum j mod 4, then (s0 + s1) + (s2 + s3)") {
    // Terms whose sum depends on the order: 1e16 swallows a 1 added to it alone.
    const std::vector<double> terms = {1e16, 1, -1e16, 1, 1, 1, 2, 3, 5, 8, 13};
    for (std::int64_t n = 0; n <= static_cast<std::int64_t>(terms.size()); ++n) {
        double lanes[4] = {0, 0, 0, 0};
        for (std::int64_t j = 0; j < n; ++j) lanes[j % 4] += terms[j];
        const double expected = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        const auto term = [&](std::int64_t j) { return terms[j]; };
        CHECK(lane_sum(n, term) == expected);
        const SumPair pair =
            lane_sum_pair(n, [&](std::int64_t j) { return SumPair{terms[j], 2 * terms[j]}; });
        CHECK(pair.a == expected);
        CHECK(pair.b == lane_sum(n, [&](std::int64_t j) { return 2 * terms[j]; }));
    }
    // With these terms the order shows: one running sum over the first four gives 1 (1e16 + 1
    // rounds to 1e16), the four lanes give 0 ((1e16 + 1) + (-1e16 + 1), each rounding away its 1).
    CHECK(lane_sum(4, [&](std::int64_t j) { return terms[j]; }) == 0.0);
}
