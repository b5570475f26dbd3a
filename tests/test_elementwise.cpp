// tests/test_elementwise.cpp: arithmetic with broadcasting, unary math, activations, sum/mean.
// Forward against reference loops and PyTorch fixtures; backward by gradient checks in float64.
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
// Reference broadcasting: computes f(a[idx_a], b[idx_b]) by explicit index arithmetic.
template <class F>
std::vector<double> broadcast_reference(const Tensor& a, const Tensor& b, F f) {
    Shape out = broadcast_shapes(a.shape(), b.shape(), "ref");
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), r;
    const std::int64_t n = shape_numel(out);
    for (std::int64_t i = 0; i < n; ++i) {
        auto offset_in = [&](const Shape& s) {
            std::int64_t rest = i, off = 0, stride = 1;
            for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
                std::int64_t idx = rest % out[d];
                rest /= out[d];
                int sd = d - static_cast<int>(out.size() - s.size());
                if (sd >= 0) {
                    if (s[sd] != 1) off += idx * stride;
                    stride *= s[sd];
                }
            }
            return off;
        };
        r.push_back(f(av[offset_in(a.shape())], bv[offset_in(b.shape())]));
    }
    return r;
}
}  // namespace

TEST_CASE("elementwise: broadcasting forward matches index arithmetic") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{2, 1, 4, 1}, {3, 1, 5}}, {{7}, {1}}, {{}, {2, 3}},
        {{4, 1}, {1, 6}},             {{1, 1, 1}, {1}},          {{3, 5}, {3, 5}}, {{2, 3, 4}, {4}}};
    for (auto [sa, sb] : cases) {
        Tensor a = leaf(sa, 1), b = leaf(sb, 2);
        CHECK(mul(a, b).to_vector<double>() ==
              broadcast_reference(a, b, [](double x, double y) { return x * y; }));
        CHECK(sub(a, b).to_vector<double>() ==
              broadcast_reference(a, b, [](double x, double y) { return x - y; }));
        CHECK(sub(a, b).shape() == broadcast_shapes(sa, sb, "sub"));
    }
}

TEST_CASE("elementwise: gradients of binary ops with broadcasting") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{3, 1, 4}, {2, 4}}, {{1}, {5}}, {{7}, {7}}, {{}, {2, 3}}, {{2, 3}, {2, 1}}};
    for (auto [sa, sb] : cases) {
        CAPTURE(shape_str(sa));
        CAPTURE(shape_str(sb));
        Tensor a = leaf(sa, 3, 0.5, 2.0), b = leaf(sb, 4, 0.5, 2.0);
        CHECK(gradcheck([](auto& v) { return add(v[0], v[1]); }, {a, b}));
        CHECK(gradcheck([](auto& v) { return sub(v[0], v[1]); }, {a, b}));
        CHECK(gradcheck([](auto& v) { return mul(v[0], v[1]); }, {a, b}));
        CHECK(gradcheck([](auto& v) { return div(v[0], v[1]); }, {a, b}));
        CHECK(gradcheck([](auto& v) { return pow(v[0], v[1]); }, {a, b}));
        CHECK(gradcheck([](auto& v) { return minimum(v[0], v[1]); }, {a, b}));
        CHECK(gradcheck([](auto& v) { return maximum(v[0], v[1]); }, {a, b}));
        Tensor cond = gt(leaf(sa, 5).detach(), scalar_tensor(0.0, DType::f64));
        CHECK(gradcheck([&](auto& v) { return where(cond, v[0], v[1]); }, {a, b}));
    }
}

TEST_CASE("elementwise: maximum/minimum split the gradient on ties, as PyTorch") {
    Tensor a = from_vector<double>({1, 2, 3}).set_requires_grad();
    Tensor b = from_vector<double>({1, 5, 0}).set_requires_grad();
    sum(maximum(a, b)).backward();
    CHECK(a.grad().to_vector<double>() == std::vector<double>{0.5, 0, 1});
    CHECK(b.grad().to_vector<double>() == std::vector<double>{0.5, 1, 0});
}

TEST_CASE("elementwise: gradients of unary math and activations") {
    Tensor x = leaf({2, 3, 5}, 7, -3.5, 3.5);
    Tensor pos = leaf({4, 3}, 8, 0.2, 3.0);
    using F = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<const char*, F>> on_reals = {
        {"neg", [](auto& t) { return neg(t); }},
        {"exp", [](auto& t) { return exp(t); }},
        {"abs", [](auto& t) { return abs(t); }},
        {"square", [](auto& t) { return square(t); }},
        {"clamp", [](auto& t) { return clamp(t, -1.0, 2.0); }},
        {"clamp_lo", [](auto& t) { return clamp(t, 0.5, std::nullopt); }},
        {"pow3", [](auto& t) { return pow(t, 3.0); }},
        {"relu", [](auto& t) { return relu(t); }},
        {"relu6", [](auto& t) { return relu6(t * 3.0); }},
        {"leaky_relu", [](auto& t) { return leaky_relu(t, 0.1); }},
        {"gelu", [](auto& t) { return gelu(t); }},
        {"gelu_tanh", [](auto& t) { return gelu(t, "tanh"); }},
        {"silu", [](auto& t) { return silu(t); }},
        {"sigmoid", [](auto& t) { return sigmoid(t); }},
        {"tanh", [](auto& t) { return tanh(t); }},
        {"hardswish", [](auto& t) { return hardswish(t); }},
        {"hardsigmoid", [](auto& t) { return hardsigmoid(t); }},
        {"broadcast_to", [](auto& t) { return broadcast_to(t.reshape({2, 1, 3, 5}), {2, 4, 3, 5}); }},
        {"scalar_ops", [](auto& t) { return (2.0 - t) * 3.0 / 4.0 + 1.0 - 2.0 / (t * t + 1.0); }},
    };
    for (auto& [name_c, f] : on_reals) {
        std::string name = name_c;
        CAPTURE(name);
        CHECK(gradcheck([&](auto& v) { return f(v[0]); }, {x}));
    }
    const std::vector<std::pair<const char*, F>> on_positive = {
        {"log", [](auto& t) { return log(t); }},
        {"sqrt", [](auto& t) { return sqrt(t); }},
        {"rsqrt", [](auto& t) { return rsqrt(t); }},
        {"pow_frac", [](auto& t) { return pow(t, 1.7); }},
    };
    for (auto& [name_c, f] : on_positive) {
        std::string name = name_c;
        CAPTURE(name);
        CHECK(gradcheck([&](auto& v) { return f(v[0]); }, {pos}));
    }
}

TEST_CASE("elementwise: activations and math match PyTorch") {
    Fixture fx("elementwise.txt");
    Tensor up = arange(1.0, 24.0, 1.0, DType::f64) / 10.0;
    using F = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<const char*, F>> ops = {
        {"relu", [](auto& t) { return relu(t); }},
        {"relu6", [](auto& t) { return relu6(t); }},
        {"leaky_relu", [](auto& t) { return leaky_relu(t, 0.2); }},
        {"gelu", [](auto& t) { return gelu(t); }},
        {"gelu_tanh", [](auto& t) { return gelu(t, "tanh"); }},
        {"silu", [](auto& t) { return silu(t); }},
        {"sigmoid", [](auto& t) { return sigmoid(t); }},
        {"tanh", [](auto& t) { return tanh(t); }},
        {"hardswish", [](auto& t) { return hardswish(t); }},
        {"hardsigmoid", [](auto& t) { return hardsigmoid(t); }},
        {"abs", [](auto& t) { return abs(t); }},
        {"exp", [](auto& t) { return exp(t); }},
        {"clamp", [](auto& t) { return clamp(t, -1.5, 2.0); }},
    };
    for (auto& [name_c, f] : ops) {
        std::string name = name_c;
        CAPTURE(name);
        Tensor x = fx["x"].set_requires_grad();
        Tensor y = f(x);
        y.backward(up);
        CHECK(max_abs_diff(y, fx[name]) < 1e-12);
        // PyTorch's hardsigmoid backward multiplies by the float constant 1.0f/6 even in double
        double grad_tol = name == "hardsigmoid" ? 1e-7 : 1e-12;
        CHECK(max_abs_diff(x.grad(), fx[name + ".grad"]) < grad_tol);
        // float32 runs the same formulas in single precision (relative tolerance)
        double scale = 1 + max_abs_diff(fx[name], zeros_like(fx[name]));
        CHECK(max_abs_diff(f(fx.f32("x")).to(DType::f64), fx[name]) < 1e-6 * scale);
    }
    const std::vector<std::pair<const char*, F>> on_p = {
        {"log", [](auto& t) { return log(t); }}, {"sqrt", [](auto& t) { return sqrt(t); }},
        {"rsqrt", [](auto& t) { return rsqrt(t); }}, {"pow2.5", [](auto& t) { return pow(t, 2.5); }}};
    for (auto& [name_c, f] : on_p) {
        std::string name = name_c;
        CAPTURE(name);
        Tensor p = fx["p"].set_requires_grad();
        Tensor y = f(p);
        sum(y).backward();
        CHECK(max_abs_diff(y, fx[name]) < 1e-12);
        CHECK(max_abs_diff(p.grad(), fx[name + ".grad"]) < 1e-11);
    }
    using G = std::function<Tensor(const Tensor&, const Tensor&)>;
    const std::vector<std::pair<const char*, G>> binary = {
        {"add", [](auto& a, auto& b) { return add(a, b); }}, {"sub", [](auto& a, auto& b) { return sub(a, b); }},
        {"mul", [](auto& a, auto& b) { return mul(a, b); }}, {"div", [](auto& a, auto& b) { return div(a, b); }},
        {"pow", [](auto& a, auto& b) { return pow(a, b); }},
        {"maximum", [](auto& a, auto& b) { return maximum(a, b); }}};
    Tensor w = arange(0.0, 24.0, 1.0, DType::f64).reshape({2, 3, 4}) * (2.0 / 23.0) - 1.0;
    for (auto& [name_c, f] : binary) {
        std::string name = name_c;
        CAPTURE(name);
        Tensor a = fx["a"].set_requires_grad(), b = fx["b"].set_requires_grad();
        Tensor y = f(a, b);
        sum(y * w).backward();
        CHECK(max_abs_diff(y, fx[name]) < 1e-12);
        CHECK(max_abs_diff(a.grad(), fx[name + ".grad_a"]) < 1e-11);
        CHECK(max_abs_diff(b.grad(), fx[name + ".grad_b"]) < 1e-11);
    }
}

TEST_CASE("elementwise: errors name the op and the shapes") {
    Tensor a = zeros({2, 3}), b = zeros({4, 3});
    CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes (2, 3) and (4, 3) cannot be broadcast"), Error);
    CHECK_THROWS_WITH_AS(mul(a, zeros({2, 3}, DType::f64)), doctest::Contains("mul: dtype mismatch"), Error);
    CHECK_THROWS_WITH_AS(exp(arange(3)), doctest::Contains("exp: expected a floating-point"), Error);
    CHECK_THROWS_WITH_AS(gelu(a, "fast"), doctest::Contains("approximate"), Error);
    CHECK_THROWS_WITH_AS(clamp(a, 2.0, 1.0), doctest::Contains("clamp: min"), Error);
    CHECK_THROWS_WITH_AS(broadcast_to(a, {3, 3}), doctest::Contains("broadcast_to"), Error);
    CHECK_THROWS_WITH_AS(a.reshape({4, 2}), doctest::Contains("reshape: cannot reshape (2, 3)"), Error);
}

TEST_CASE("elementwise: integer tensors compute exactly, comparisons give 0/1") {
    Tensor a = from_vector<std::int64_t>({1, 2, 3}), b = from_vector<std::int64_t>({3, 2, 1});
    CHECK((a + b).to_vector<std::int64_t>() == std::vector<std::int64_t>{4, 4, 4});
    CHECK((a * b).dtype() == DType::i64);
    CHECK(eq(a, b).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 0});
    CHECK(lt(a, b).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 0, 0});
    CHECK(ge(a, b).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 1});
    CHECK(neg(a).to_vector<std::int64_t>() == std::vector<std::int64_t>{-1, -2, -3});
}

TEST_CASE("sum/mean: values, dims, keepdim, gradients") {
    Tensor x = leaf({2, 3, 4}, 11);
    std::vector<double> v = x.to_vector<double>();
    Tensor s1 = sum(x, {1});
    REQUIRE(s1.shape() == Shape{2, 4});
    for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) {
            double r = 0;
            for (int j = 0; j < 3; ++j) r += v[(i * 3 + j) * 4 + k];
            CHECK(s1.to_vector<double>()[i * 4 + k] == doctest::Approx(r).epsilon(1e-14));
        }
    CHECK(sum(x, {0, 2}, true).shape() == Shape{1, 3, 1});
    CHECK(sum(x, {-1}).shape() == Shape{2, 3});
    CHECK(sum(x).shape() == Shape{});
    CHECK(mean(x).item() == doctest::Approx(sum(x).item() / 24).epsilon(1e-14));
    CHECK(gradcheck([](auto& t) { return sum(t[0], {1}); }, {x}));
    CHECK(gradcheck([](auto& t) { return sum(t[0], {0, 2}, true); }, {x}));
    CHECK(gradcheck([](auto& t) { return mean(t[0], {-1}); }, {x}));
    CHECK(gradcheck([](auto& t) { return mean(t[0]); }, {x}));
    CHECK_THROWS_WITH_AS(sum(x, {3}), doctest::Contains("sum: dim 3 is out of range"), Error);
    CHECK_THROWS_WITH_AS(sum(x, {1, -2}), doctest::Contains("twice"), Error);
}

TEST_CASE("sum: long reductions are chunked and accurate") {
    Tensor x = ones({1000003}, DType::f32);
    CHECK(sum(x).item() == 1000003.0);  // exact: every partial sum is an integer below 2^24
    Tensor y = ones({3, 5000, 2}, DType::f32);
    CHECK(sum(y, {1}).to_vector<float>() == std::vector<float>(6, 5000.0f));
}
