// tests/test_norm_interp.cpp: batch_norm, layer_norm and interpolate. Forward against PyTorch
// fixtures (tests/fixtures/gen_shape_norm.py) and reference loops; backward against PyTorch's
// gradients and by gradient checks in float64; thread-count independence; error messages.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

// A fresh leaf with the fixture's values (the fixture's own tensor stays untouched).
Tensor fixture_leaf(const Fixture& f, const std::string& name, DType dtype = DType::f64) {
    Tensor t = f[name].to(dtype).clone();
    t.set_requires_grad();
    return t;
}

InterpolateOptions by_size(std::int64_t h, std::int64_t w, const std::string& mode,
                           bool align_corners = false) {
    InterpolateOptions o;
    o.size = std::array<std::int64_t, 2>{h, w};
    o.mode = mode;
    o.align_corners = align_corners;
    return o;
}

InterpolateOptions by_scale(double sh, double sw, const std::string& mode, bool align_corners = false) {
    InterpolateOptions o;
    o.scale_factor = std::array<double, 2>{sh, sw};
    o.mode = mode;
    o.align_corners = align_corners;
    return o;
}

// Runs f with 1 and with 2 threads and returns both results.
template <class F>
std::pair<std::vector<Tensor>, std::vector<Tensor>> with_1_and_2_threads(F f) {
    const int saved = num_threads();
    set_num_threads(1);
    std::vector<Tensor> one = f();
    set_num_threads(2);
    std::vector<Tensor> two = f();
    set_num_threads(saved);
    return {one, two};
}

}  // namespace

// ---- batch_norm -------------------------------------------------------------------------------

TEST_CASE("normalization: batch_norm training matches PyTorch (output, running stats, gradients)") {
    Fixture f("shape_norm.txt");
    for (std::string name : {"bn4d", "bn2d"}) {
        for (DType dt : {DType::f64, DType::f32}) {
            const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
            Tensor x = fixture_leaf(f, name + ".x", dt);
            Tensor w = fixture_leaf(f, name + ".weight", dt), b = fixture_leaf(f, name + ".bias", dt);
            Tensor rm = f[name + ".running_mean"].to(dt).clone();
            Tensor rv = f[name + ".running_var"].to(dt).clone();
            Tensor y = batch_norm(x, rm, rv, w, b, /*training=*/true, 0.1, 1e-5);
            CHECK(max_abs_diff(y, f[name + ".train.y"].to(dt)) < tol);
            CHECK(max_abs_diff(rm, f[name + ".train.running_mean"].to(dt)) < tol);
            CHECK(max_abs_diff(rv, f[name + ".train.running_var"].to(dt)) < tol);
            y.backward(f[name + ".dy"].to(dt));
            CHECK(max_abs_diff(x.grad(), f[name + ".train.dx"].to(dt)) < tol * 10);
            CHECK(max_abs_diff(w.grad(), f[name + ".train.dweight"].to(dt)) < tol * 10);
            CHECK(max_abs_diff(b.grad(), f[name + ".train.dbias"].to(dt)) < tol * 10);
        }
    }
}

TEST_CASE("normalization: batch_norm eval matches PyTorch and leaves the running stats alone") {
    Fixture f("shape_norm.txt");
    for (std::string name : {"bn4d", "bn2d"}) {
        Tensor rm = f[name + ".running_mean"].clone(), rv = f[name + ".running_var"].clone();
        Tensor y = batch_norm(f[name + ".x"], rm, rv, f[name + ".weight"], f[name + ".bias"],
                              /*training=*/false);
        CHECK(max_abs_diff(y, f[name + ".eval.y"]) < 1e-12);
        CHECK(max_abs_diff(rm, f[name + ".running_mean"]) == 0);
        CHECK(max_abs_diff(rv, f[name + ".running_var"]) == 0);
    }
}

TEST_CASE("normalization: batch_norm matches a reference loop, without affine parameters") {
    Tensor x = leaf({3, 4, 5}, 11).detach();
    Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3);
    std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int c = 0; c < 4; ++c) {
        double mean = 0, var = 0;
        for (int b = 0; b < 3; ++b)
            for (int s = 0; s < 5; ++s) mean += xv[(b * 4 + c) * 5 + s] / 15;
        for (int b = 0; b < 3; ++b)
            for (int s = 0; s < 5; ++s) var += std::pow(xv[(b * 4 + c) * 5 + s] - mean, 2) / 15;
        for (int b = 0; b < 3; ++b)
            for (int s = 0; s < 5; ++s) {
                const int i = (b * 4 + c) * 5 + s;
                CHECK(yv[i] == doctest::Approx((xv[i] - mean) / std::sqrt(var + 1e-3)).epsilon(1e-12));
            }
    }
}

TEST_CASE("normalization: batch_norm gradients (training and eval, odd and size-1 shapes)") {
    auto train = [](auto& in) {
        return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true);
    };
    CHECK(gradcheck(train, {leaf({3, 2, 5}, 1), leaf({2}, 2), leaf({2}, 3)}));
    CHECK(gradcheck(train, {leaf({4, 3}, 4), leaf({3}, 5), leaf({3}, 6)}));
    CHECK(gradcheck(train, {leaf({1, 2, 3, 1}, 7), leaf({2}, 8), leaf({2}, 9)}));
    CHECK(gradcheck([](auto& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                    {leaf({2, 3, 2}, 10)}));
    Tensor rm = from_vector<double>({0.3, -0.2}), rv = from_vector<double>({0.5, 2.0});
    CHECK(gradcheck([&](auto& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); },
                    {leaf({1, 2, 3}, 11), leaf({2}, 12), leaf({2}, 13)}));
    // weight given but only the input differentiated
    Tensor w = from_vector<double>({1.5, -0.5});
    CHECK(gradcheck([&](auto& in) { return batch_norm(in[0], Tensor(), Tensor(), w, Tensor(), true); },
                    {leaf({3, 2}, 14)}));
}

TEST_CASE("normalization: batch_norm errors") {
    Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH_AS(batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                         doctest::Contains("batch_norm: expected more than 1 value per channel when training, got input of shape (1, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(zeros({1, 3, 1, 1}), zeros({3}), ones({3}), Tensor(), Tensor(), true),
                         doctest::Contains("more than 1 value per channel"), Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                         doctest::Contains("batch_norm: running_mean and running_var are needed in eval mode"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, zeros({3}), Tensor(), Tensor(), Tensor(), true),
                         doctest::Contains("batch_norm: give both running_mean and running_var, or neither"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), ones({4}), Tensor(), true),
                         doctest::Contains("batch_norm: weight has shape (4,), expected (3,) for input of shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, zeros({3}, DType::f64), ones({3}, DType::f64), Tensor(), Tensor(), true),
                         doctest::Contains("batch_norm: running_mean is float64 but the input is float32"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(zeros({3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                         doctest::Contains("batch_norm: expected an input of shape (B, C) or (B, C, ...), got (3,)"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(zeros({2, 3}, DType::i64), Tensor(), Tensor(), Tensor(), Tensor(), true),
                         doctest::Contains("batch_norm: expected a floating-point tensor, got int64"), Error);
}

// ---- layer_norm -------------------------------------------------------------------------------

TEST_CASE("normalization: layer_norm matches PyTorch over one and two dims") {
    Fixture f("shape_norm.txt");
    Tensor x = f["ln.x"];
    CHECK(max_abs_diff(layer_norm(x, {4}, f["ln.w1"], f["ln.b1"]), f["ln.y1"]) < 1e-12);
    CHECK(max_abs_diff(layer_norm(x, {3, 4}, f["ln.w2"], f["ln.b2"]), f["ln.y2"]) < 1e-12);
    CHECK(max_abs_diff(layer_norm(x, {4}), f["ln.y_plain"]) < 1e-12);
    CHECK(max_abs_diff(layer_norm(f.f32("ln.x"), {4}, f.f32("ln.w1"), f.f32("ln.b1")), f["ln.y1"]) < 1e-5);
}

TEST_CASE("normalization: layer_norm matches a reference loop") {
    Tensor x = leaf({3, 7}, 21).detach(), w = leaf({7}, 22).detach(), b = leaf({7}, 23).detach();
    std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(),
                        bv = b.to_vector<double>(), yv = layer_norm(x, {7}, w, b, 1e-3).to_vector<double>();
    for (int r = 0; r < 3; ++r) {
        double mean = 0, var = 0;
        for (int j = 0; j < 7; ++j) mean += xv[r * 7 + j] / 7;
        for (int j = 0; j < 7; ++j) var += std::pow(xv[r * 7 + j] - mean, 2) / 7;
        for (int j = 0; j < 7; ++j)
            CHECK(yv[r * 7 + j] ==
                  doctest::Approx((xv[r * 7 + j] - mean) / std::sqrt(var + 1e-3) * wv[j] + bv[j]).epsilon(1e-12));
    }
}

TEST_CASE("normalization: layer_norm gradients") {
    CHECK(gradcheck([](auto& in) { return layer_norm(in[0], {5}, in[1], in[2]); },
                    {leaf({2, 3, 5}, 1), leaf({5}, 2), leaf({5}, 3)}));
    CHECK(gradcheck([](auto& in) { return layer_norm(in[0], {3, 5}, in[1], in[2]); },
                    {leaf({2, 3, 5}, 4), leaf({3, 5}, 5), leaf({3, 5}, 6)}));
    CHECK(gradcheck([](auto& in) { return layer_norm(in[0], {3}); }, {leaf({1, 3}, 7)}));
    CHECK(gradcheck([](auto& in) { return layer_norm(in[0], {1}, in[1], in[2]); },
                    {leaf({4, 1}, 8), leaf({1}, 9), leaf({1}, 10)}));
    CHECK(gradcheck([](auto& in) { return layer_norm(in[0], {2, 3}, in[1]); },
                    {leaf({2, 3}, 11), leaf({2, 3}, 12)}));
}

TEST_CASE("normalization: layer_norm errors") {
    Tensor x = zeros({2, 3});
    CHECK_THROWS_WITH_AS(layer_norm(x, {2}),
                         doctest::Contains("layer_norm: normalized_shape (2,) does not match the last dims of input shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(layer_norm(x, {1, 2, 3}), doctest::Contains("layer_norm: normalized_shape (1, 2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(layer_norm(x, {}), doctest::Contains("layer_norm: normalized_shape ()"), Error);
    CHECK_THROWS_WITH_AS(layer_norm(x, {3}, ones({2})),
                         doctest::Contains("layer_norm: weight has shape (2,), expected (3,)"), Error);
    CHECK_THROWS_WITH_AS(layer_norm(x, {3}, Tensor(), ones({3}, DType::f64)),
                         doctest::Contains("layer_norm: bias is float64 but the input is float32"), Error);
}

TEST_CASE("normalization: backward does not depend on the thread count") {
    Generator gen(9);
    Tensor x0 = uniform({64, 40, 3, 3}, -1, 1, DType::f32, &gen);
    Tensor dy = uniform({64, 40, 3, 3}, -1, 1, DType::f32, &gen);
    auto [one, two] = with_1_and_2_threads([&] {
        Tensor x = x0.clone().detach().set_requires_grad();
        Tensor w = ones({40}).set_requires_grad(), b = zeros({40}).set_requires_grad();
        batch_norm(x, Tensor(), Tensor(), w, b, true).backward(dy);
        Tensor xl = x0.clone().detach().set_requires_grad();
        Tensor wl = ones({40, 3, 3}).set_requires_grad();
        layer_norm(xl, {40, 3, 3}, wl).backward(dy);
        return std::vector<Tensor>{x.grad(), w.grad(), b.grad(), xl.grad(), wl.grad()};
    });
    for (std::size_t k = 0; k < one.size(); ++k)
        CHECK(one[k].to_vector<float>() == two[k].to_vector<float>());
}

// ---- interpolate ------------------------------------------------------------------------------

TEST_CASE("interpolate: nearest and bilinear match PyTorch for sizes and scale factors") {
    Fixture f("shape_norm.txt");
    struct Case {
        std::string name, input;
        InterpolateOptions (*make)(const std::string&, bool);
    };
    const std::vector<Case> cases = {
        {"size14x3", "interp.x", [](const std::string& m, bool ac) { return by_size(14, 3, m, ac); }},
        {"scale2", "interp.x_small", [](const std::string& m, bool ac) { return by_scale(2, 2, m, ac); }},
        {"scale0.5", "interp.x_small", [](const std::string& m, bool ac) { return by_scale(0.5, 0.5, m, ac); }},
        {"scale1.7", "interp.x_small", [](const std::string& m, bool ac) { return by_scale(1.7, 1.7, m, ac); }},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        Tensor expected = f["interp.nearest." + c.name];
        CHECK(max_abs_diff(interpolate(f[c.input], c.make("nearest", false)), expected) == 0);
        CHECK(max_abs_diff(interpolate(f.f32(c.input), c.make("nearest", false)), expected) < 1e-6);
        for (bool ac : {false, true}) {
            CAPTURE(ac);
            expected = f[std::string("interp.bilinear") + (ac ? "1." : "0.") + c.name];
            CHECK(max_abs_diff(interpolate(f[c.input], c.make("bilinear", ac)), expected) < 1e-12);
            CHECK(max_abs_diff(interpolate(f.f32(c.input), c.make("bilinear", ac)), expected) < 1e-5);
        }
    }
}

TEST_CASE("interpolate: reference loops (nearest by 2 repeats pixels, corners align)") {
    Tensor x = leaf({2, 3, 4, 5}, 31).detach();
    std::vector<double> xv = x.to_vector<double>();
    Tensor up = interpolate(x, by_scale(2, 3, "nearest"));
    REQUIRE(up.shape() == Shape{2, 3, 8, 15});
    std::vector<double> uv = up.to_vector<double>();
    for (std::int64_t p = 0; p < 6; ++p)
        for (int h = 0; h < 8; ++h)
            for (int w = 0; w < 15; ++w) CHECK(uv[(p * 8 + h) * 15 + w] == xv[(p * 4 + h / 2) * 5 + w / 3]);

    // align_corners = true: src = dst * (in - 1) / (out - 1), bilinear between neighbours
    Tensor y = interpolate(x, by_size(7, 9, "bilinear", true));
    std::vector<double> yv = y.to_vector<double>();
    for (std::int64_t p = 0; p < 6; ++p)
        for (int h = 0; h < 7; ++h)
            for (int w = 0; w < 9; ++w) {
                double sh = h * 3.0 / 6.0, sw = w * 4.0 / 8.0;
                int h0 = static_cast<int>(sh), w0 = static_cast<int>(sw);
                int h1 = std::min(h0 + 1, 3), w1 = std::min(w0 + 1, 4);
                double fh = sh - h0, fw = sw - w0;
                auto at = [&](int i, int j) { return xv[(p * 4 + i) * 5 + j]; };
                double ref = (1 - fh) * ((1 - fw) * at(h0, w0) + fw * at(h0, w1)) +
                             fh * ((1 - fw) * at(h1, w0) + fw * at(h1, w1));
                CHECK(yv[(p * 7 + h) * 9 + w] == doctest::Approx(ref).epsilon(1e-12));
            }
    // same size is the identity in both modes
    CHECK(max_abs_diff(interpolate(x, by_size(4, 5, "bilinear")), x) == 0);
    CHECK(max_abs_diff(interpolate(x, by_size(4, 5, "nearest")), x) == 0);
}

TEST_CASE("interpolate: gradients of nearest and bilinear, up and down, size 1") {
    for (std::string mode : {"nearest", "bilinear"}) {
        CAPTURE(mode);
        auto check_with = [&](const InterpolateOptions& o, const Shape& shape, std::uint64_t seed) {
            CHECK(gradcheck([&](auto& in) { return interpolate(in[0], o); }, {leaf(shape, seed)}));
        };
        check_with(by_size(5, 7, mode), {2, 2, 3, 4}, 1);
        check_with(by_size(2, 3, mode), {1, 2, 5, 7}, 2);
        check_with(by_scale(1.5, 0.6, mode), {1, 1, 4, 5}, 3);
        check_with(by_size(3, 2, mode), {1, 1, 1, 1}, 4);
        check_with(by_size(1, 1, mode), {1, 1, 3, 2}, 5);
        if (mode == "bilinear") {
            check_with(by_size(5, 7, mode, true), {2, 1, 3, 4}, 6);
            check_with(by_size(2, 3, mode, true), {1, 2, 5, 7}, 7);
            check_with(by_size(1, 4, mode, true), {1, 1, 3, 2}, 8);
            check_with(by_scale(2, 2, mode, true), {1, 1, 1, 3}, 9);
        }
    }
}

TEST_CASE("interpolate: backward does not depend on the thread count") {
    Generator gen(4);
    Tensor x0 = uniform({3, 5, 33, 29}, -1, 1, DType::f32, &gen);
    auto [one, two] = with_1_and_2_threads([&] {
        std::vector<Tensor> grads;
        for (auto o : {by_size(12, 50, "bilinear"), by_size(70, 9, "nearest"),
                       by_scale(0.37, 1.3, "bilinear", true)}) {
            Tensor x = x0.clone().detach().set_requires_grad();
            Tensor y = interpolate(x, o);
            y.backward(ones_like(y));
            grads.push_back(x.grad());
        }
        return grads;
    });
    for (std::size_t k = 0; k < one.size(); ++k)
        CHECK(one[k].to_vector<float>() == two[k].to_vector<float>());
}

TEST_CASE("interpolate: errors") {
    Tensor x = zeros({1, 1, 4, 4});
    CHECK_THROWS_WITH_AS(interpolate(zeros({1, 4, 4}), by_size(2, 2, "nearest")),
                         doctest::Contains("interpolate: expected an input of shape (B, C, H, W), got (1, 4, 4)"),
                         Error);
    InterpolateOptions both = by_size(2, 2, "nearest");
    both.scale_factor = std::array<double, 2>{2, 2};
    CHECK_THROWS_WITH_AS(interpolate(x, both),
                         doctest::Contains("interpolate: give exactly one of size and scale_factor"), Error);
    CHECK_THROWS_WITH_AS(interpolate(x, InterpolateOptions{}),
                         doctest::Contains("interpolate: give exactly one of size and scale_factor"), Error);
    CHECK_THROWS_WITH_AS(interpolate(x, by_size(2, 2, "bicubic")),
                         doctest::Contains("interpolate: unknown mode \"bicubic\""), Error);
    CHECK_THROWS_WITH_AS(interpolate(x, by_size(2, 2, "nearest", true)),
                         doctest::Contains("interpolate: align_corners applies to mode \"bilinear\" only"),
                         Error);
    CHECK_THROWS_WITH_AS(interpolate(x, by_size(0, 2, "nearest")),
                         doctest::Contains("interpolate: output size (0, 2) must be positive"), Error);
    CHECK_THROWS_WITH_AS(interpolate(x, by_scale(0.1, 1, "bilinear")),
                         doctest::Contains("interpolate: output size (0, 4) must be positive"), Error);
    CHECK_THROWS_WITH_AS(interpolate(x, by_scale(-2, 1, "bilinear")),
                         doctest::Contains("interpolate: scale_factor must be positive, got (-2, 1)"), Error);
    CHECK_THROWS_WITH_AS(interpolate(zeros({1, 1, 4, 4}, DType::i32), by_size(2, 2, "nearest")),
                         doctest::Contains("interpolate: expected a floating-point tensor"), Error);
}
