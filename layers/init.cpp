// layers/init.cpp: the initialization formulas of torch.nn.init.
#include "layers/init.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/autograd.h"
#include "engine/error.h"

namespace retort::init {

namespace {
thread_local bool g_skip = false;
}  // namespace

SkipInitGuard::SkipInitGuard() : previous_(g_skip) { g_skip = true; }
SkipInitGuard::~SkipInitGuard() { g_skip = previous_; }
bool skipping() { return g_skip; }

namespace {
// Copies freshly drawn values into t's storage (t keeps its identity and requires_grad).
void assign(Tensor& t, const Tensor& values) {
    Tensor v = values.to(t.dtype());
    std::memcpy(t.raw_data(), v.raw_data(), static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
}

// Inverse of the error function, by Newton steps from a good start (Giles' approximation).
double erfinv(double y) {
    // the ends of the range map to infinities (the caller clamps them to its bounds)
    if (y <= -1.0) return -std::numeric_limits<double>::infinity();
    if (y >= 1.0) return std::numeric_limits<double>::infinity();
    double w = -std::log((1.0 - y) * (1.0 + y)), x;
    if (w < 5.0) {
        w -= 2.5;
        x = 2.81022636e-08;
        for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                         -0.00125372503, -0.00417768164, 0.246640727, 1.50140941})
            x = c + x * w;
    } else {
        w = std::sqrt(w) - 3.0;
        x = -0.000200214257;
        for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                         -0.0076224613, 0.00943887047, 1.00167406, 2.83297682})
            x = c + x * w;
    }
    x *= y;
    for (int i = 0; i < 2; ++i)  // Newton refinement to double precision
        x -= (std::erf(x) - y) / (2.0 / std::sqrt(M_PI) * std::exp(-x * x));
    return x;
}
}  // namespace

std::int64_t fan_in(const Tensor& w) {
    require(w.dim() >= 2, "init: fan_in needs a weight with at least 2 dims, got ",
            shape_str(w.shape()));
    return w.numel() / w.size(0);
}

std::int64_t fan_out(const Tensor& w) {
    require(w.dim() >= 2, "init: fan_out needs a weight with at least 2 dims, got ",
            shape_str(w.shape()));
    return w.size(0) * (w.numel() / (w.size(0) * w.size(1)));
}

Tensor& constant(Tensor& t, double value) {
    if (g_skip) return t;
    assign(t, full(t.shape(), value, t.dtype()));
    return t;
}

Tensor& uniform(Tensor& t, double low, double high, Generator* gen) {
    if (g_skip) return t;
    assign(t, retort::uniform(t.shape(), low, high, DType::f64, gen));
    return t;
}

Tensor& normal(Tensor& t, double mean, double stddev, Generator* gen) {
    if (g_skip) return t;
    assign(t, retort::normal(t.shape(), mean, stddev, DType::f64, gen));
    return t;
}

Tensor& trunc_normal(Tensor& t, double mean, double stddev, double low, double high,
                     Generator* gen) {
    if (g_skip) return t;
    require(stddev > 0 && low < high, "trunc_normal: need std > 0 and low < high");
    auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
    const double lo = cdf((low - mean) / stddev), hi = cdf((high - mean) / stddev);
    Tensor u = retort::uniform(t.shape(), 2 * lo - 1, 2 * hi - 1, DType::f64, gen);
    double* p = u.data<double>();
    for (std::int64_t i = 0; i < u.numel(); ++i)
        p[i] = std::clamp(mean + stddev * std::sqrt(2.0) * erfinv(p[i]), low, high);
    assign(t, u);
    return t;
}

Tensor& kaiming_uniform(Tensor& t, double a, bool use_fan_out, Generator* gen) {
    if (g_skip) return t;
    const double fan = static_cast<double>(use_fan_out ? fan_out(t) : fan_in(t));
    const double gain = std::sqrt(2.0 / (1.0 + a * a));
    const double bound = gain * std::sqrt(3.0 / fan);
    return uniform(t, -bound, bound, gen);
}

Tensor& kaiming_normal_relu(Tensor& t, bool use_fan_out, Generator* gen) {
    if (g_skip) return t;
    const double fan = static_cast<double>(use_fan_out ? fan_out(t) : fan_in(t));
    return normal(t, 0.0, std::sqrt(2.0 / fan), gen);
}

}  // namespace retort::init
