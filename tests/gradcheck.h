// tests/gradcheck.h: checking a backward function against finite differences.
//
// For f: inputs -> output, gradcheck compares, for every input element x_j,
//     analytic  d<w, f(x)>/dx_j   (one backward pass with upstream gradient w)
//     numeric   (<w, f(x + h e_j)> - <w, f(x - h e_j)>) / (2h)
// where w is a fixed random weighting of the output (so every output element matters).
// Inputs must be float64: with h = 1e-6 the central difference is accurate to ~1e-9.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "engine/engine.h"

namespace retort::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

inline double weighted_sum(const Tensor& out, const Tensor& w) {
    std::vector<double> a = out.to_vector<double>(), b = w.to_vector<double>();
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Returns true when every gradient entry agrees within atol + rtol * |numeric|.
// Inputs that should not be differentiated (indices, masks) are passed with requires_grad false.
inline bool gradcheck(const Fn& f, std::vector<Tensor> inputs, double atol = 1e-6,
                      double rtol = 1e-5, double h = 1e-6) {
    Generator gen(1234);
    Tensor out = f(inputs);
    Tensor w = randn(out.shape(), DType::f64, &gen);
    for (Tensor& x : inputs)
        if (x.requires_grad()) x.zero_grad();
    out = f(inputs);
    out.backward(w);
    bool ok = true;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        Tensor& x = inputs[k];
        if (!x.requires_grad()) continue;
        REQUIRE_MESSAGE(x.dtype() == DType::f64, "gradcheck needs float64 inputs");
        Tensor analytic = x.grad();
        REQUIRE_MESSAGE(analytic.defined(), "input ", k, " got no gradient");
        double* p = x.data<double>();
        std::vector<double> a = analytic.to_vector<double>();
        for (std::int64_t j = 0; j < x.numel(); ++j) {
            double saved = p[j];
            double plus, minus;
            {
                NoGradGuard no_grad;
                p[j] = saved + h;
                plus = weighted_sum(f(inputs), w);
                p[j] = saved - h;
                minus = weighted_sum(f(inputs), w);
                p[j] = saved;
            }
            double numeric = (plus - minus) / (2 * h);
            if (std::abs(numeric - a[j]) > atol + rtol * std::abs(numeric)) {
                if (ok)  // report the first mismatch only, to keep the log readable
                    MESSAGE("input ", k, " element ", j, ": analytic ", a[j], " numeric ", numeric);
                ok = false;
            }
        }
    }
    return ok;
}

// A float64 leaf that requires grad, with values drawn from a seeded generator.
inline Tensor leaf(const Shape& shape, std::uint64_t seed, double low = -2, double high = 2) {
    Generator gen(seed);
    Tensor t = uniform(shape, low, high, DType::f64, &gen);
    t.set_requires_grad(true);
    return t;
}

// Max |a - b| over all elements (shapes must match).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    double m = 0;
    for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
    return m;
}

}  // namespace retort::testing
