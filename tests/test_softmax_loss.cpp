// tests/test_softmax_loss.cpp: softmax, log_softmax, the losses, cosine_similarity, normalize and
// dropout: reference loops, gradient checks, PyTorch fixtures (tests/fixtures/losses.txt, made by
// tests/fixtures/gen_losses.py) and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

using Ins = std::vector<Tensor>;

// softmax along `dim` by the textbook formula, on doubles.
std::vector<double> ref_softmax(const Tensor& x, int dim, bool log) {
    std::vector<double> v = x.to_vector<double>(), out(v.size());
    DimSplit s = split_at_dim(x.shape(), dim);
    for (std::int64_t o = 0; o < s.outer; ++o) {
        for (std::int64_t i = 0; i < s.inner; ++i) {
            auto at = [&](std::int64_t k) { return (o * s.size + k) * s.inner + i; };
            double m = -std::numeric_limits<double>::infinity(), total = 0;
            for (std::int64_t k = 0; k < s.size; ++k) m = std::max(m, v[at(k)]);
            for (std::int64_t k = 0; k < s.size; ++k) total += std::exp(v[at(k)] - m);
            for (std::int64_t k = 0; k < s.size; ++k)
                out[at(k)] = log ? v[at(k)] - m - std::log(total) : std::exp(v[at(k)] - m) / total;
        }
    }
    return out;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

// cross_entropy of index targets, item by item: (B, K, inner) scores, (B, inner) targets.
// Returns the per-item losses (0 for ignored items) and the number of items kept.
std::vector<double> ref_cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& target,
                                      double smoothing, std::int64_t ignore, int* kept) {
    std::vector<double> v = logits.to_vector<double>();
    DimSplit s = split_at_dim(logits.shape(), logits.dim() == 1 ? 0 : 1);
    std::vector<double> losses;
    *kept = 0;
    for (std::int64_t o = 0; o < s.outer; ++o) {
        for (std::int64_t i = 0; i < s.inner; ++i) {
            std::int64_t t = target[o * s.inner + i];
            if (t == ignore) {
                losses.push_back(0);
                continue;
            }
            ++*kept;
            auto at = [&](std::int64_t k) { return v[(o * s.size + k) * s.inner + i]; };
            double m = -1e300, total = 0, sum_logp = 0;
            for (std::int64_t k = 0; k < s.size; ++k) m = std::max(m, at(k));
            for (std::int64_t k = 0; k < s.size; ++k) total += std::exp(at(k) - m);
            double lse = m + std::log(total);
            for (std::int64_t k = 0; k < s.size; ++k) sum_logp += at(k) - lse;
            double nll = lse - at(t);
            losses.push_back((1 - smoothing) * nll - smoothing / s.size * sum_logp);
        }
    }
    return losses;
}

double total(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
}

Tensor targets(const std::vector<std::int64_t>& v, const Shape& shape) {
    return from_vector(v, shape);
}

}  // namespace

// ---- softmax / log_softmax ----

TEST_CASE("softmax: softmax and log_softmax along every dim match a reference loop") {
    Generator gen(1);
    for (DType dtype : {DType::f32, DType::f64}) {
        Tensor x = randn({2, 3, 5}, dtype, &gen) * 4.0;
        double tol = dtype == DType::f32 ? 1e-6 : 1e-14;
        for (int dim = -3; dim < 3; ++dim) {
            int d = dim < 0 ? dim + 3 : dim;
            CHECK(max_diff(softmax(x, dim).to_vector<double>(), ref_softmax(x, d, false)) < tol);
            CHECK(max_diff(log_softmax(x, dim).to_vector<double>(), ref_softmax(x, d, true)) <
                  tol * 10);
        }
    }
    // a wide inner dim (more lines than one block of columns) and a size-1 softmax dim
    Tensor wide = randn({2, 3, 150}, DType::f64, &gen);
    CHECK(max_diff(softmax(wide, 1).to_vector<double>(), ref_softmax(wide, 1, false)) < 1e-14);
    CHECK(softmax(wide.reshape({18, 1, 50}), 1).to_vector<double>() ==
          std::vector<double>(900, 1.0));
    CHECK(softmax(scalar_tensor(3.0), 0).item() == 1.0);
}

TEST_CASE("softmax: large logits do not overflow") {
    Tensor x = from_vector<float>({1000, 1001, 1002, -1000});
    std::vector<double> y = softmax(x, 0).to_vector<double>();
    double z = 1 + std::exp(-1.0) + std::exp(-2.0);
    CHECK(y[2] == doctest::Approx(1 / z));
    CHECK(y[3] == 0.0);
    CHECK(log_softmax(x, 0).to_vector<double>()[3] == doctest::Approx(-2002 - std::log(z)));
}

TEST_CASE("softmax: gradients along every dim and on edge sizes") {
    for (Shape shape : {Shape{2, 3, 4}, Shape{1, 7}, Shape{5, 1}, Shape{3}}) {
        for (int dim = 0; dim < static_cast<int>(shape.size()); ++dim) {
            Tensor x = leaf(shape, 40 + dim);
            CHECK(gradcheck([dim](const Ins& in) { return softmax(in[0], dim); }, {x}));
            CHECK(gradcheck([dim](const Ins& in) { return log_softmax(in[0], dim); }, {x}));
        }
    }
}

TEST_CASE("softmax: results are bitwise identical with 1 and 2 threads") {
    Generator gen(5);
    Tensor x = randn({64, 33, 70}, DType::f32, &gen);
    int saved = num_threads();
    set_num_threads(1);
    Tensor a = softmax(x, 1), b = log_softmax(x, 2);
    set_num_threads(2);
    Tensor c = softmax(x, 1), d = log_softmax(x, 2);
    set_num_threads(saved);
    CHECK(a.to_vector<float>() == c.to_vector<float>());
    CHECK(b.to_vector<float>() == d.to_vector<float>());
}

TEST_CASE("softmax: log_softmax matches PyTorch (fixture) - errors") {
    Fixture f("losses.txt");
    CHECK(max_abs_diff(log_softmax(f["log_softmax.x"], 1), f["log_softmax.y"]) < 1e-13);
    CHECK_THROWS_WITH_AS(softmax(zeros({2, 3}), 2),
                         doctest::Contains("softmax: dim 2 is out of range"), Error);
    CHECK_THROWS_WITH_AS(log_softmax(arange(3), 0),
                         doctest::Contains("log_softmax: expected a floating-point"), Error);
}

// ---- cross_entropy / nll_loss ----

TEST_CASE("loss: cross_entropy with class indices matches a reference loop") {
    Generator gen(2);
    Tensor logits = randn({6, 5}, DType::f64, &gen) * 2.0;
    std::vector<std::int64_t> t = {0, 4, -100, 2, 2, 1};
    for (double smoothing : {0.0, 0.25}) {
        int kept = 0;
        std::vector<double> ref = ref_cross_entropy(logits, t, smoothing, -100, &kept);
        Tensor target = targets(t, {6});
        CHECK(max_diff(cross_entropy(logits, target, "none", smoothing).to_vector<double>(), ref) <
              1e-12);
        CHECK(cross_entropy(logits, target, "sum", smoothing).item() ==
              doctest::Approx(total(ref)).epsilon(1e-12));
        CHECK(cross_entropy(logits, target, "mean", smoothing).item() ==
              doctest::Approx(total(ref) / kept).epsilon(1e-12));
        // int32 targets give the same, and so do float32 logits (to float precision)
        Tensor t32 = target.to(DType::i32);
        CHECK(cross_entropy(logits, t32, "mean", smoothing).item() ==
              doctest::Approx(total(ref) / kept).epsilon(1e-12));
        CHECK(cross_entropy(logits.to(DType::f32), target, "mean", smoothing).item() ==
              doctest::Approx(total(ref) / kept).epsilon(1e-6));
    }
}

TEST_CASE("loss: cross_entropy on (B, K, d1, d2) maps and unbatched (K) scores") {
    Generator gen(3);
    Tensor logits = randn({2, 4, 3, 2}, DType::f64, &gen);
    std::vector<std::int64_t> t = {0, 3, 1, 7, 2, 2, 3, 7, 0, 1, 1, 3};
    int kept = 0;
    std::vector<double> ref = ref_cross_entropy(logits, t, 0.1, 7, &kept);
    Tensor target = targets(t, {2, 3, 2});
    Tensor none = cross_entropy(logits, target, "none", 0.1, 7);
    CHECK(none.shape() == Shape{2, 3, 2});
    CHECK(max_diff(none.to_vector<double>(), ref) < 1e-12);
    CHECK(cross_entropy(logits, target, "mean", 0.1, 7).item() ==
          doctest::Approx(total(ref) / kept).epsilon(1e-12));

    Tensor single = from_vector<double>({1, 2, 3});
    double expected = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 2;
    CHECK(cross_entropy(single, targets({1}, {})).item() == doctest::Approx(expected));
}

TEST_CASE("loss: cross_entropy with probability targets") {
    Generator gen(4);
    Tensor logits = randn({3, 4}, DType::f64, &gen);
    Tensor probs = softmax(randn({3, 4}, DType::f64, &gen), 1);
    std::vector<double> lp = ref_softmax(logits, 1, true), p = probs.to_vector<double>();
    for (double smoothing : {0.0, 0.2}) {
        std::vector<double> ref(3, 0.0);
        for (int b = 0; b < 3; ++b)
            for (int k = 0; k < 4; ++k)
                ref[b] -= (p[b * 4 + k] * (1 - smoothing) + smoothing / 4) * lp[b * 4 + k];
        CHECK(max_diff(cross_entropy(logits, probs, "none", smoothing).to_vector<double>(), ref) <
              1e-12);
        CHECK(cross_entropy(logits, probs, "mean", smoothing).item() ==
              doctest::Approx(total(ref) / 3).epsilon(1e-12));
    }
}

TEST_CASE("loss: cross_entropy and nll_loss gradients (every reduction, smoothing, ignore)") {
    Tensor logits = leaf({5, 4}, 50);
    Tensor target = targets({1, -100, 3, 0, 3}, {5});
    for (const char* reduction : {"mean", "sum", "none"}) {
        for (double smoothing : {0.0, 0.3}) {
            CHECK(gradcheck(
                [&](const Ins& in) { return cross_entropy(in[0], target, reduction, smoothing); },
                {logits}));
        }
        CHECK(gradcheck([&](const Ins& in) { return nll_loss(in[0], target, reduction); },
                        {logits}));
    }
    Tensor map = leaf({2, 3, 4, 1}, 51);
    Tensor map_target = targets({0, 2, 2, 1, 1, 1, 0, 2}, {2, 4, 1});
    CHECK(gradcheck(
        [&](const Ins& in) { return cross_entropy(in[0], map_target, "mean", 0.1, 1); }, {map}));
    Tensor single = leaf({7}, 52);
    CHECK(gradcheck([](const Ins& in) { return cross_entropy(in[0], targets({6}, {})); },
                    {single}));
    // probability targets: gradients reach both the logits and the target
    Tensor probs = leaf({5, 4}, 53, 0.1, 1.0);
    for (const char* reduction : {"mean", "sum", "none"}) {
        CHECK(gradcheck([&](const Ins& in) { return cross_entropy(in[0], in[1], reduction, 0.2); },
                        {logits, probs}));
    }
}

TEST_CASE("loss: nll_loss picks -log_probs at the target") {
    Tensor lp = from_vector<double>({-1, -2, -3, -4, -5, -6}, {2, 3});
    CHECK(nll_loss(lp, targets({2, 0}, {2})).item() == doctest::Approx(3.5));
    CHECK(nll_loss(lp, targets({2, 0}, {2}), "sum").item() == doctest::Approx(7));
    CHECK(nll_loss(lp, targets({2, 0}, {2}), "mean", 0).item() == doctest::Approx(3));
    CHECK(nll_loss(lp, targets({1, 1}, {2}), "none").to_vector<double>() ==
          std::vector<double>{2, 5});
    // every item ignored: the mean is 0/0, nan, as in PyTorch
    CHECK(std::isnan(nll_loss(lp, targets({-100, -100}, {2})).item()));
}

TEST_CASE("loss: cross_entropy matches PyTorch (fixture)") {
    Fixture f("losses.txt");
    Tensor logits = f["ce.logits"].set_requires_grad();
    Tensor target = f["ce.target"];
    for (const char* reduction : {"mean", "sum", "none"}) {
        CHECK(max_abs_diff(cross_entropy(logits, target, reduction, 0.1),
                           f[std::string("ce.") + reduction]) < 1e-13);
    }
    cross_entropy(logits, target, "mean", 0.1).backward();
    CHECK(max_abs_diff(logits.grad(), f["ce.grad"]) < 1e-13);

    Tensor map = f["ce_map.logits"], map_target = f["ce_map.target"];
    CHECK(max_abs_diff(cross_entropy(map, map_target, "mean", 0.2, 1), f["ce_map.mean"]) < 1e-13);
    CHECK(max_abs_diff(cross_entropy(map, map_target, "none", 0.0, 1), f["ce_map.none"]) < 1e-13);
    CHECK(max_abs_diff(cross_entropy(f["ce_soft.logits"], f["ce_soft.target"], "mean", 0.3),
                       f["ce_soft.mean"]) < 1e-13);
}

TEST_CASE("loss: cross_entropy and nll_loss errors") {
    Tensor logits = zeros({4, 3});
    CHECK_THROWS_WITH_AS(cross_entropy(logits, targets({0, 1, 2, 3}, {4})),
                         doctest::Contains("target class 3 at position 3 is out of range [0, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(nll_loss(logits, targets({0, -1, 2, 0}, {4})),
                         doctest::Contains("nll_loss: target class -1"), Error);
    CHECK_THROWS_WITH_AS(
        cross_entropy(logits, targets({0, 1, 2}, {3})),
        doctest::Contains("cross_entropy: target shape (3,) does not match input shape (4, 3)"),
        Error);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, zeros({4})),
                         doctest::Contains("target shape (4,) does not match input shape (4, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, zeros({4, 3}, DType::f64)),
                         doctest::Contains("input is float32 but target is float64"), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, targets({0, 1, 2, 0}, {4}), "avg"),
                         doctest::Contains("cross_entropy: unknown reduction \"avg\""), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, targets({0, 1, 2, 0}, {4}), "mean", 1.5),
                         doctest::Contains("label_smoothing must be in [0, 1]"), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(arange(12).reshape({4, 3}), targets({0, 1, 2, 0}, {4})),
                         doctest::Contains("cross_entropy: input must be float32 or float64"),
                         Error);
    CHECK_THROWS_WITH_AS(cross_entropy(scalar_tensor(1.0), targets({0}, {})),
                         doctest::Contains("input must have a class dim"), Error);
    CHECK_THROWS_WITH_AS(nll_loss(logits, targets({0, 1, 2, 0}, {4}), "batchmean"),
                         doctest::Contains("nll_loss: unknown reduction"), Error);
}

// ---- kl_div, mse, l1, smooth_l1 ----

TEST_CASE("loss: kl_div values, reductions and gradients") {
    Tensor input = from_vector<double>({std::log(0.5), std::log(0.5), std::log(0.2), std::log(0.8)},
                                       {2, 2});
    Tensor target = from_vector<double>({0.25, 0.75, 0.0, 1.0}, {2, 2});
    std::vector<double> ref = {0.25 * std::log(0.25 / 0.5), 0.75 * std::log(0.75 / 0.5), 0.0,
                               std::log(1 / 0.8)};
    CHECK(max_diff(kl_div(input, target, "none").to_vector<double>(), ref) < 1e-15);
    CHECK(kl_div(input, target, "batchmean").item() == doctest::Approx(total(ref) / 2));
    CHECK(kl_div(input, target, "mean").item() == doctest::Approx(total(ref) / 4));
    CHECK(kl_div(input, target, "sum").item() == doctest::Approx(total(ref)));
    // log_target: the same from log-probabilities (a zero target would be exp(-inf) * -inf = nan,
    // in PyTorch too, so the last row is left out)
    Tensor in0 = from_vector<double>({std::log(0.5), std::log(0.5)});
    Tensor log_t0 = from_vector<double>({std::log(0.25), std::log(0.75)});
    CHECK(kl_div(in0, log_t0, "sum", true).item() == doctest::Approx(ref[0] + ref[1]));

    Tensor x = leaf({3, 4}, 60);
    Tensor p = leaf({3, 4}, 61, 0.05, 1.0);
    Tensor lp = leaf({3, 4}, 62, -3.0, 0.0);
    for (const char* reduction : {"mean", "sum", "none", "batchmean"}) {
        CHECK(gradcheck([&](const Ins& in) { return kl_div(in[0], in[1], reduction); }, {x, p}));
        CHECK(gradcheck([&](const Ins& in) { return kl_div(in[0], in[1], reduction, true); },
                        {x, lp}));
    }
    // a zero in the target: the value and the gradient stay finite
    Tensor t0 = from_vector<double>({0.0, 1.0}).set_requires_grad();
    Tensor i0 = from_vector<double>({-1.0, -2.0}).set_requires_grad();
    kl_div(i0, t0, "sum").backward();
    CHECK(std::isfinite(t0.grad().to_vector<double>()[0]));
    CHECK(i0.grad().to_vector<double>() == std::vector<double>{0.0, -1.0});
}

TEST_CASE("loss: mse, l1 and smooth_l1 match reference loops") {
    Generator gen(7);
    Tensor a = randn({3, 5}, DType::f64, &gen), b = randn({3, 5}, DType::f64, &gen);
    std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    std::vector<double> sq, ab, sm;
    const double beta = 0.7;
    for (std::size_t i = 0; i < va.size(); ++i) {
        double d = va[i] - vb[i];
        sq.push_back(d * d);
        ab.push_back(std::abs(d));
        sm.push_back(std::abs(d) < beta ? 0.5 * d * d / beta : std::abs(d) - 0.5 * beta);
    }
    CHECK(max_diff(mse_loss(a, b, "none").to_vector<double>(), sq) < 1e-15);
    CHECK(mse_loss(a, b).item() == doctest::Approx(total(sq) / 15));
    CHECK(l1_loss(a, b, "sum").item() == doctest::Approx(total(ab)));
    CHECK(max_diff(smooth_l1_loss(a, b, "none", beta).to_vector<double>(), sm) < 1e-15);
    CHECK(smooth_l1_loss(a, b, "mean", 0.0).item() == doctest::Approx(total(ab) / 15));
    CHECK(mse_loss(a.to(DType::f32), b.to(DType::f32)).item() ==
          doctest::Approx(total(sq) / 15).epsilon(1e-6));
}

TEST_CASE("loss: mse, l1 and smooth_l1 gradients") {
    Tensor a = leaf({4, 3}, 70), b = leaf({4, 3}, 71);
    for (const char* reduction : {"mean", "sum", "none"}) {
        CHECK(gradcheck([&](const Ins& in) { return mse_loss(in[0], in[1], reduction); }, {a, b}));
        CHECK(gradcheck([&](const Ins& in) { return l1_loss(in[0], in[1], reduction); }, {a, b}));
        for (double beta : {0.0, 0.5, 1.0, 3.0}) {
            CHECK(gradcheck(
                [&](const Ins& in) { return smooth_l1_loss(in[0], in[1], reduction, beta); },
                {a, b}));
        }
    }
}

TEST_CASE("loss: kl_div and smooth_l1 match PyTorch (fixture)") {
    Fixture f("losses.txt");
    CHECK(max_abs_diff(kl_div(f["kl.input"], f["kl.target"], "batchmean"), f["kl.batchmean"]) <
          1e-14);
    CHECK(max_abs_diff(kl_div(f["kl.input"], f["kl.target"], "mean"), f["kl.mean"]) < 1e-14);
    CHECK(max_abs_diff(kl_div(f["kl.input"], f["kl.log_target"], "sum", true),
                       f["kl.log_target_sum"]) < 1e-14);
    CHECK(max_abs_diff(smooth_l1_loss(f["sl1.a"], f["sl1.b"], "none", 0.5), f["sl1.none"]) <
          1e-14);
    CHECK(max_abs_diff(smooth_l1_loss(f["sl1.a"], f["sl1.b"], "mean", 0.5), f["sl1.mean"]) <
          1e-14);
}

TEST_CASE("loss: pointwise loss errors") {
    Tensor a = zeros({2, 3});
    CHECK_THROWS_WITH_AS(mse_loss(a, zeros({3, 2})),
                         doctest::Contains("mse_loss: target shape (3, 2) does not match input "
                                           "shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(l1_loss(a, zeros({2, 3}, DType::f64)),
                         doctest::Contains("l1_loss: input is float32 but target is float64"),
                         Error);
    CHECK_THROWS_WITH_AS(mse_loss(a, a, "batchmean"),
                         doctest::Contains("mse_loss: unknown reduction \"batchmean\""), Error);
    CHECK_THROWS_WITH_AS(kl_div(a, a, "avg"),
                         doctest::Contains("kl_div: unknown reduction \"avg\" (expected \"mean\", "
                                           "\"sum\", \"none\" or \"batchmean\")"),
                         Error);
    CHECK_THROWS_WITH_AS(kl_div(a, zeros({2})), doctest::Contains("kl_div: target shape (2,)"),
                         Error);
    CHECK_THROWS_WITH_AS(smooth_l1_loss(a, a, "mean", -1.0),
                         doctest::Contains("smooth_l1_loss: beta must be non-negative"), Error);
    CHECK_THROWS_WITH_AS(l1_loss(arange(3), arange(3)),
                         doctest::Contains("l1_loss: input must be float32 or float64, got int64"),
                         Error);
}

// ---- cosine_similarity, normalize ----

TEST_CASE("loss: cosine_similarity and normalize match reference loops") {
    Generator gen(8);
    Tensor a = randn({4, 3}, DType::f64, &gen), b = randn({4, 3}, DType::f64, &gen);
    std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    std::vector<double> cos, unit;
    for (int i = 0; i < 4; ++i) {
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < 3; ++k) {
            dot += va[i * 3 + k] * vb[i * 3 + k];
            na += va[i * 3 + k] * va[i * 3 + k];
            nb += vb[i * 3 + k] * vb[i * 3 + k];
        }
        cos.push_back(dot / std::sqrt(na * nb));
        for (int k = 0; k < 3; ++k) unit.push_back(va[i * 3 + k] / std::sqrt(na));
    }
    CHECK(max_diff(cosine_similarity(a, b).to_vector<double>(), cos) < 1e-14);
    CHECK(max_diff(normalize(a).to_vector<double>(), unit) < 1e-14);
    // p = 1 along dim 0
    Tensor n1 = normalize(a, 1.0, 0);
    for (int k = 0; k < 3; ++k) {
        double s = 0;
        for (int i = 0; i < 4; ++i) s += std::abs(va[i * 3 + k]);
        CHECK(n1.to_vector<double>()[k] == doctest::Approx(va[k] / s));
    }
    // zero vectors: the eps clamp keeps everything finite, and the result is 0
    Tensor z = zeros({2, 3}, DType::f64);
    CHECK(normalize(z).to_vector<double>() == std::vector<double>(6, 0.0));
    CHECK(cosine_similarity(z, ones({2, 3}, DType::f64)).to_vector<double>() ==
          std::vector<double>{0, 0});
}

TEST_CASE("loss: cosine_similarity and normalize gradients") {
    Tensor a = leaf({3, 1, 4}, 80), b = leaf({2, 4}, 81);
    CHECK(gradcheck([](const Ins& in) { return cosine_similarity(in[0], in[1], -1); }, {a, b}));
    Tensor c = leaf({4, 5}, 82), d = leaf({4, 5}, 83);
    CHECK(gradcheck([](const Ins& in) { return cosine_similarity(in[0], in[1], 0); }, {c, d}));
    for (double p : {1.0, 2.0, 3.0}) {
        CHECK(gradcheck([p](const Ins& in) { return normalize(in[0], p, 1); }, {c}));
        CHECK(gradcheck([p](const Ins& in) { return normalize(in[0], p, -2); }, {a}));
    }
    // a zero vector: gradient 1 / eps * (upstream), no nan from 0 / 0
    Tensor z = zeros({1, 3}, DType::f64).set_requires_grad();
    sum(normalize(z, 2.0, 1, 0.5)).backward();
    CHECK(z.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
}

TEST_CASE("loss: cosine_similarity matches PyTorch (fixture, with a norm below eps) - errors") {
    Fixture f("losses.txt");
    CHECK(max_abs_diff(cosine_similarity(f["cos.a"], f["cos.b"], -1, 1e-8), f["cos.y"]) < 1e-14);
    CHECK_THROWS_WITH_AS(cosine_similarity(zeros({2, 3}), zeros({4, 3})),
                         doctest::Contains("cosine_similarity: shapes (2, 3) and (4, 3) cannot be "
                                           "broadcast"),
                         Error);
    CHECK_THROWS_WITH_AS(cosine_similarity(zeros({2, 3}), zeros({2, 3}), 2),
                         doctest::Contains("cosine_similarity: dim 2 is out of range"), Error);
    CHECK_THROWS_WITH_AS(normalize(zeros({2, 3}), 0.0),
                         doctest::Contains("normalize: p must be positive and finite"), Error);
}

// ---- dropout ----

TEST_CASE("dropout: the mask is the same for 1 and 2 threads and keeps about 1 - p") {
    Tensor x = ones({1 << 20});
    int saved = num_threads();
    Generator g1(99), g2(99);
    set_num_threads(1);
    Tensor a = dropout(x, 0.3, true, &g1);
    set_num_threads(2);
    Tensor b = dropout(x, 0.3, true, &g2);
    set_num_threads(saved);
    std::vector<float> va = a.to_vector<float>();
    CHECK(va == b.to_vector<float>());
    std::int64_t kept = 0, odd = 0;
    const float scale = static_cast<float>(1 / 0.7);
    for (float v : va) {
        kept += v != 0.0f;
        odd += v != 0.0f && v != scale;
    }
    CHECK(odd == 0);
    double fraction = static_cast<double>(kept) / static_cast<double>(va.size());
    CHECK(fraction == doctest::Approx(0.7).epsilon(0.005));  // 1M draws: sigma is ~0.0005
    // the next call draws fresh numbers
    CHECK(dropout(x, 0.3, true, &g1).to_vector<float>() != va);
}

TEST_CASE("dropout: backward uses the same mask - p = 0, eval and p = 1") {
    Tensor x = leaf({6, 7}, 90);
    Generator gen(5);
    Tensor y = dropout(x, 0.5, true, &gen);
    Tensor upstream = full({6, 7}, 3.0, DType::f64);
    y.backward(upstream);
    std::vector<double> vx = x.detach().to_vector<double>(), vy = y.to_vector<double>();
    std::vector<double> g = x.grad().to_vector<double>();
    for (std::size_t i = 0; i < vx.size(); ++i) {
        bool kept = vy[i] != 0.0;
        CHECK(g[i] == (kept ? 6.0 : 0.0));
        if (kept) CHECK(vy[i] == doctest::Approx(2 * vx[i]));
    }
    CHECK(dropout(x, 0.0, true).same(x));
    CHECK(dropout(x, 0.9, false).same(x));
    Tensor dead = dropout(x, 1.0, true);
    CHECK(dead.to_vector<double>() == std::vector<double>(42, 0.0));
    CHECK_THROWS_WITH_AS(dropout(x, 1.5, true), doctest::Contains("dropout: p must be in [0, 1]"),
                         Error);
    CHECK_THROWS_WITH_AS(dropout(x, -0.1, false), doctest::Contains("dropout: p must be in"),
                         Error);
    CHECK_THROWS_WITH_AS(dropout(arange(4), 0.5, true),
                         doctest::Contains("dropout: expected a floating-point tensor"), Error);
}
