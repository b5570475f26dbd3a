// tests/test_random.cpp: Philox against its published known answers, and the random tensors'
// distributions and reproducibility.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/math/philox.h"
#include "engine/engine.h"

using namespace retort;

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors") {
    using philox::Block;
    Block zero = philox::philox4x32_10(Block{{0, 0, 0, 0}}, 0, 0);
    CHECK(zero.v[0] == 0x6627e8d5u);
    CHECK(zero.v[1] == 0xe169c58du);
    CHECK(zero.v[2] == 0xbc57ac4cu);
    CHECK(zero.v[3] == 0x9b00dbd8u);
    Block ones = philox::philox4x32_10(Block{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
                                       0xffffffffu, 0xffffffffu);
    CHECK(ones.v[0] == 0x408f276du);
    CHECK(ones.v[1] == 0x41c83b0eu);
    CHECK(ones.v[2] == 0xa20bc7c6u);
    CHECK(ones.v[3] == 0x6d5451fdu);
    Block pi = philox::philox4x32_10(Block{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                                     0xa4093822u, 0x299f31d0u);
    CHECK(pi.v[0] == 0xd16cfe09u);
    CHECK(pi.v[1] == 0x94fdccebu);
    CHECK(pi.v[2] == 0x5001e420u);
    CHECK(pi.v[3] == 0x24126ea1u);
}

TEST_CASE("random: same seed, same numbers - the stream advances between draws") {
    Generator a(42), b(42), c(43);
    std::vector<float> a1 = randn({100}, DType::f32, &a).to_vector<float>();
    std::vector<float> b1 = randn({100}, DType::f32, &b).to_vector<float>();
    CHECK(a1 == b1);
    CHECK(a1 != randn({100}, DType::f32, &c).to_vector<float>());
    CHECK(a1 != randn({100}, DType::f32, &a).to_vector<float>());  // second draw differs
    manual_seed(7);
    Tensor x = rand({5});
    manual_seed(7);
    CHECK(rand({5}).to_vector<float>() == x.to_vector<float>());
}

TEST_CASE("random: distributions have the right moments and ranges") {
    Generator gen(1);
    const int n = 200000;
    std::vector<double> z = randn({n}, DType::f64, &gen).to_vector<double>();
    double m = 0, v = 0;
    for (double x : z) m += x;
    m /= n;
    for (double x : z) v += (x - m) * (x - m);
    v /= n;
    CHECK(std::abs(m) < 0.01);
    CHECK(std::abs(std::sqrt(v) - 1) < 0.01);

    std::vector<float> u = uniform({n}, -2, 3, DType::f32, &gen).to_vector<float>();
    CHECK(*std::min_element(u.begin(), u.end()) >= -2.0f);
    CHECK(*std::max_element(u.begin(), u.end()) < 3.0f);

    std::vector<float> mask = bernoulli({n}, 0.3, DType::f32, &gen).to_vector<float>();
    double kept = 0;
    for (float k : mask) kept += k;
    CHECK(std::abs(kept / n - 0.3) < 0.01);

    std::vector<std::int64_t> r = randint(-3, 4, {10000}, DType::i64, &gen).to_vector<std::int64_t>();
    CHECK(*std::min_element(r.begin(), r.end()) == -3);
    CHECK(*std::max_element(r.begin(), r.end()) == 3);

    std::vector<std::int64_t> p = randperm(1000, &gen).to_vector<std::int64_t>();
    std::vector<std::int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == arange(1000).to_vector<std::int64_t>());
    CHECK(p != sorted);
}

TEST_CASE("random: bad arguments are refused") {
    CHECK_THROWS_WITH_AS(bernoulli({3}, 1.5), doctest::Contains("bernoulli: p must be in [0, 1]"), Error);
    CHECK_THROWS_WITH_AS(randint(5, 5, {3}), doctest::Contains("randint"), Error);
    CHECK_THROWS_WITH_AS(normal({3}, 0, -1), doctest::Contains("stddev"), Error);
    CHECK_THROWS_WITH_AS(randn({3}, DType::i32), doctest::Contains("floating-point"), Error);
}
