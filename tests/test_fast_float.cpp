// tests/test_fast_float.cpp: the vectorizable float exp and normal CDF (engine/math/fast_float.h)
// against the C library in double precision, on dense grids and at the edges, and the wide
// activation loops (engine/cpu/wide_unary.h) under every instruction set against double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include "engine/cpu/wide_unary.h"
#include "engine/math/fast_float.h"
#include "engine/engine.h"

using retort::math::exp_f32;
using retort::math::normal_cdf_f32;

namespace {

// Distance in units in the last place of the float nearest to `exact`.
double ulp_error(float got, double exact) {
    const float nearest = static_cast<float>(exact);
    const float next = std::nextafter(nearest, std::numeric_limits<float>::infinity());
    return std::fabs(static_cast<double>(got) - exact) / (static_cast<double>(next) - nearest);
}

}  // namespace

TEST_CASE("fast float: exp is within 2 ulp over the normal range") {
    double worst = 0;
    for (int i = 0; i <= 400000; ++i) {
        const float x = -87.0f + 175.5f * static_cast<float>(i) / 400000.0f;
        worst = std::max(worst, ulp_error(exp_f32(x), std::exp(static_cast<double>(x))));
    }
    CHECK(worst <= 2.0);
    for (float x : {0.0f, 1.0f, -1.0f, 1e-8f, -1e-8f, 88.5f, 88.7f, -87.2f})
        CHECK(ulp_error(exp_f32(x), std::exp(static_cast<double>(x))) <= 2.0);
}

TEST_CASE("fast float: exp at the edges: underflow to 0, overflow to inf, NaN stays NaN") {
    CHECK(exp_f32(-88.0f) == 0.0f);
    CHECK(exp_f32(-1000.0f) == 0.0f);
    CHECK(exp_f32(-std::numeric_limits<float>::infinity()) == 0.0f);
    CHECK(std::isinf(exp_f32(89.0f)));
    CHECK(std::isinf(exp_f32(std::numeric_limits<float>::infinity())));
    CHECK(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("fast float: normal CDF against 0.5 erfc(-x / sqrt 2) in double") {
    double worst_core = 0, worst_tail = 0;
    for (int i = 0; i <= 200000; ++i) {
        const float x = -14.0f + 24.0f * static_cast<float>(i) / 200000.0f;
        const double exact = 0.5 * std::erfc(-static_cast<double>(x) / std::sqrt(2.0));
        if (exact < 1.2e-38) {  // below float's normal range: tiny too (not checked relatively)
            CHECK(normal_cdf_f32(x) < 1.2e-38f);
            continue;
        }
        const double rel = std::fabs(normal_cdf_f32(x) / exact - 1.0);
        (x > -5.0f ? worst_core : worst_tail) = std::max(x > -5.0f ? worst_core : worst_tail, rel);
    }
    CHECK(worst_core < 2e-6);
    CHECK(worst_tail < 2e-5);
    CHECK(normal_cdf_f32(0.0f) == doctest::Approx(0.5).epsilon(1e-7));
    CHECK(normal_cdf_f32(40.0f) == 1.0f);
    CHECK(normal_cdf_f32(-40.0f) == 0.0f);
}

TEST_CASE("fast float: GELU, sigmoid and SiLU agree with double precision under every instruction set") {
    using retort::Tensor;
    const std::string initial = retort::cpu::wide_unary_isa();
    retort::Generator gen(11);
    // odd length: every variant's vector loop and its scalar tail both run
    const Tensor x = retort::randn({4099}, retort::DType::f32, &gen) * 4.0;
    const Tensor x64 = x.to(retort::DType::f64);
    const Tensor dy = retort::randn({4099}, retort::DType::f32, &gen);
    const Tensor dy64 = dy.to(retort::DType::f64);
    struct Case {
        const char* name;
        Tensor (*fn)(const Tensor&);
    };
    const Case cases[] = {{"gelu", [](const Tensor& t) { return retort::gelu(t); }},
                          {"sigmoid", [](const Tensor& t) { return retort::sigmoid(t); }},
                          {"silu", [](const Tensor& t) { return retort::silu(t); }}};
    for (const std::string& isa : retort::cpu::wide_unary_isas()) {
        retort::cpu::set_wide_unary_isa(isa);
        for (const Case& c : cases) {
            CAPTURE(isa);
            CAPTURE(c.name);
            Tensor a = x.detach().set_requires_grad(true);
            Tensor a64 = x64.detach().set_requires_grad(true);
            const Tensor y = c.fn(a), y64 = c.fn(a64);
            retort::sum(y * dy).backward();
            retort::sum(y64 * dy64).backward();
            const double scale = retort::max(retort::abs(y64)).item<double>();
            CHECK(retort::max(retort::abs(y.to(retort::DType::f64) - y64)).item<double>() / scale < 2e-6);
            const double gscale = retort::max(retort::abs(a64.grad())).item<double>();
            CHECK(retort::max(retort::abs(a.grad().to(retort::DType::f64) - a64.grad())).item<double>() /
                      gscale <
                  2e-6);
        }
    }
    CHECK_THROWS_WITH_AS(retort::cpu::set_wide_unary_isa("sse9"), doctest::Contains("not available"),
                         retort::Error);
    retort::cpu::set_wide_unary_isa(initial);
}
