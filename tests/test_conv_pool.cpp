// tests/test_conv_pool.cpp: conv2d (stride, padding, dilation, groups, depthwise, 1x1) and 2-D
// pooling (max, average, adaptive average). Forward against direct reference loops and PyTorch
// fixtures (tests/fixtures/gen_conv.py); backward by gradient checks in float64 and by the
// fixtures' gradients; error messages; the same bits with 1 and 2 threads.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

// ---- reference loops, written from the definitions ----

// y[b][o][oh][ow] = bias[o] + sum over c in o's group, i, j of
//                   w[o][c][i][j] * x[b][c][oh * sh - ph + i * dh][ow * sw - pw + j * dw]
Tensor conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Conv2dOptions& o) {
    const std::int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    const std::int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3);
    const std::int64_t Og = O / o.groups;
    const std::int64_t OH = (H + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
    const std::int64_t OW = (W + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
    std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
    std::vector<double> bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(O, 0);
    std::vector<double> y(B * O * OH * OW);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t oc = 0; oc < O; ++oc)
            for (std::int64_t oh = 0; oh < OH; ++oh)
                for (std::int64_t ow = 0; ow < OW; ++ow) {
                    double s = bv[oc];
                    for (std::int64_t c = 0; c < Cg; ++c)
                        for (std::int64_t i = 0; i < kh; ++i)
                            for (std::int64_t j = 0; j < kw; ++j) {
                                std::int64_t ih =
                                    oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
                                std::int64_t iw =
                                    ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                std::int64_t ic = oc / Og * Cg + c;
                                s += wv[((oc * Cg + c) * kh + i) * kw + j] *
                                     xv[((b * C + ic) * H + ih) * W + iw];
                            }
                    y[((b * O + oc) * OH + oh) * OW + ow] = s;
                }
    return from_vector(y, {B, O, OH, OW});
}

// PyTorch's pooled size: floor or ceil of (n + 2p - k) / s, plus 1; in ceil mode the last window
// must start inside the input or the left padding.
std::int64_t pooled(std::int64_t n, std::int64_t k, std::int64_t s, std::int64_t p,
                    bool ceil_mode) {
    std::int64_t span = n + 2 * p - k;
    std::int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= n + p) --out;
    return out;
}

enum class PoolKind { max, avg };

// Max or average over each window [o s - p, o s - p + k), over planes of x (..., H, W).
Tensor pool_reference(const Tensor& x, const Pool2dOptions& o, PoolKind kind) {
    const std::int64_t H = x.size(-2), W = x.size(-1), planes = x.numel() / (H * W);
    const std::int64_t sh = o.stride[0] ? o.stride[0] : o.kernel[0];
    const std::int64_t sw = o.stride[1] ? o.stride[1] : o.kernel[1];
    const std::int64_t OH = pooled(H, o.kernel[0], sh, o.padding[0], o.ceil_mode);
    const std::int64_t OW = pooled(W, o.kernel[1], sw, o.padding[1], o.ceil_mode);
    std::vector<double> xv = x.to_vector<double>(), y;
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t oh = 0; oh < OH; ++oh)
            for (std::int64_t ow = 0; ow < OW; ++ow) {
                double best = -INFINITY, sum = 0;
                std::int64_t inside = 0, padded = 0;
                for (std::int64_t i = 0; i < o.kernel[0]; ++i)
                    for (std::int64_t j = 0; j < o.kernel[1]; ++j) {
                        std::int64_t h = oh * sh - o.padding[0] + i, w = ow * sw - o.padding[1] + j;
                        // the padded input is [-p, n + p): positions beyond it count for nothing
                        if (h < H + o.padding[0] && w < W + o.padding[1]) ++padded;
                        if (h < 0 || h >= H || w < 0 || w >= W) continue;
                        double v = xv[(p * H + h) * W + w];
                        best = std::max(best, v);
                        sum += v;
                        ++inside;
                    }
                if (kind == PoolKind::max) y.push_back(best);
                else y.push_back(sum / double(o.count_include_pad ? padded : inside));
            }
    Shape shape = x.shape();
    shape[shape.size() - 2] = OH;
    shape[shape.size() - 1] = OW;
    return from_vector(y, shape);
}

Tensor adaptive_reference(const Tensor& x, std::int64_t OH, std::int64_t OW) {
    const std::int64_t H = x.size(-2), W = x.size(-1), planes = x.numel() / (H * W);
    std::vector<double> xv = x.to_vector<double>(), y;
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t oh = 0; oh < OH; ++oh)
            for (std::int64_t ow = 0; ow < OW; ++ow) {
                std::int64_t h0 = static_cast<std::int64_t>(std::floor(double(oh * H) / OH));
                std::int64_t h1 = static_cast<std::int64_t>(std::ceil(double((oh + 1) * H) / OH));
                std::int64_t w0 = static_cast<std::int64_t>(std::floor(double(ow * W) / OW));
                std::int64_t w1 = static_cast<std::int64_t>(std::ceil(double((ow + 1) * W) / OW));
                double sum = 0;
                for (std::int64_t h = h0; h < h1; ++h)
                    for (std::int64_t w = w0; w < w1; ++w) sum += xv[(p * H + h) * W + w];
                y.push_back(sum / double((h1 - h0) * (w1 - w0)));
            }
    Shape shape = x.shape();
    shape[shape.size() - 2] = OH;
    shape[shape.size() - 1] = OW;
    return from_vector(y, shape);
}

Conv2dOptions conv_options(std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                           std::array<std::int64_t, 2> dilation, std::int64_t groups) {
    Conv2dOptions o;
    o.stride = stride;
    o.padding = padding;
    o.dilation = dilation;
    o.groups = groups;
    return o;
}

struct ConvCase {
    const char* name;
    Shape x, w;
    Conv2dOptions options;
    bool bias;
};

// Covers every path: im2col + gemm, the 1x1 shortcut, groups, the direct depthwise loops (also
// with a channel multiplier), stride, padding, dilation, non-square everything.
const std::vector<ConvCase> kConvCases = {
    {"3x3 pad 1", {2, 3, 6, 6}, {4, 3, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 1), true},
    {"stride 2", {1, 2, 7, 7}, {3, 2, 3, 3}, conv_options({2, 2}, {1, 1}, {1, 1}, 1), true},
    {"dilation 2", {1, 2, 7, 6}, {2, 2, 3, 3}, conv_options({1, 1}, {2, 1}, {2, 2}, 1), false},
    {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 2), true},
    {"depthwise", {2, 3, 6, 5}, {3, 1, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 3), true},
    {"depthwise x2 stride 2", {1, 2, 7, 7}, {4, 1, 3, 3}, conv_options({2, 2}, {1, 1}, {1, 1}, 2), false},
    {"depthwise dilated", {2, 3, 7, 6}, {3, 1, 3, 2}, conv_options({1, 2}, {2, 1}, {2, 1}, 3), true},
    {"depthwise x3 dilated unit stride", {2, 2, 7, 6}, {6, 1, 3, 2}, conv_options({1, 1}, {2, 0}, {2, 1}, 2), true},
    {"depthwise big padding", {1, 2, 3, 4}, {2, 1, 2, 2}, conv_options({1, 1}, {3, 2}, {1, 1}, 2), true},
    {"depthwise no padding", {2, 3, 6, 5}, {3, 1, 3, 3}, conv_options({1, 1}, {0, 0}, {1, 1}, 3), false},
    {"one input channel", {2, 1, 5, 5}, {3, 1, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1}, 1), true},
    {"1x1", {2, 5, 3, 4}, {3, 5, 1, 1}, conv_options({1, 1}, {0, 0}, {1, 1}, 1), true},
    {"1x1 stride 2", {1, 3, 5, 5}, {2, 3, 1, 1}, conv_options({2, 2}, {0, 0}, {1, 1}, 1), false},
    {"1x1 groups", {1, 4, 3, 3}, {6, 2, 1, 1}, conv_options({1, 1}, {0, 0}, {1, 1}, 2), true},
    {"non-square", {1, 2, 5, 8}, {3, 2, 2, 4}, conv_options({1, 2}, {1, 0}, {2, 1}, 1), true},
    {"kernel = input", {2, 2, 3, 4}, {3, 2, 3, 4}, conv_options({1, 1}, {0, 0}, {1, 1}, 1), true},
    {"big padding", {1, 1, 2, 3}, {2, 1, 2, 2}, conv_options({3, 1}, {2, 3}, {1, 1}, 1), true},
};

}  // namespace

TEST_CASE("conv2d: matches a direct loop (stride, padding, dilation, groups, depthwise, 1x1)") {
    std::uint64_t seed = 10;
    std::vector<ConvCase> cases = kConvCases;
    // more than 256 (input channel, tap) pairs: gemm sums over several depth slices
    cases.push_back({"many channels", {2, 40, 9, 9}, {24, 40, 3, 3},
                     conv_options({2, 2}, {1, 1}, {1, 1}, 1), true});
    cases.push_back({"many channels 1x1", {2, 300, 3, 5}, {7, 300, 1, 1},
                     conv_options({1, 1}, {0, 0}, {1, 1}, 1), true});
    for (const ConvCase& c : cases) {
        CAPTURE(c.name);
        Tensor x = leaf(c.x, seed++).detach(), w = leaf(c.w, seed++).detach();
        Tensor b = c.bias ? leaf({c.w[0]}, seed++).detach() : Tensor();
        Tensor expected = conv2d_reference(x, w, b, c.options);
        Tensor y = conv2d(x, w, b, c.options);
        REQUIRE(y.shape() == expected.shape());
        CHECK(max_abs_diff(y, expected) < 1e-12);
        Tensor y32 = conv2d(x.to(DType::f32), w.to(DType::f32), c.bias ? b.to(DType::f32) : Tensor(),
                            c.options);
        CHECK(max_abs_diff(y32, expected) < 1e-4);
    }
}

TEST_CASE("conv2d: gradient checks for input, weight and bias") {
    std::uint64_t seed = 50;
    for (const ConvCase& c : kConvCases) {
        CAPTURE(c.name);
        Tensor x = leaf(c.x, seed++), w = leaf(c.w, seed++);
        Conv2dOptions o = c.options;
        if (c.bias) {
            Tensor b = leaf({c.w[0]}, seed++);
            CHECK(gradcheck([o](const std::vector<Tensor>& in) {
                return conv2d(in[0], in[1], in[2], o);
            }, {x, w, b}));
        } else {
            CHECK(gradcheck([o](const std::vector<Tensor>& in) {
                return conv2d(in[0], in[1], Tensor(), o);
            }, {x, w}));
        }
    }
}

TEST_CASE("conv2d: an unbatched (C, H, W) input gives a (O, OH, OW) output") {
    Tensor x = leaf({2, 5, 5}, 1), w = leaf({3, 2, 3, 3}, 2);
    Conv2dOptions o = conv_options({2, 2}, {1, 1}, {1, 1}, 1);
    Tensor y = conv2d(x, w, Tensor(), o);
    CHECK(y.shape() == Shape{3, 3, 3});
    CHECK(max_abs_diff(y.unsqueeze(0), conv2d_reference(x.unsqueeze(0), w, Tensor(), o)) < 1e-12);
    CHECK(gradcheck([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), o); },
                    {x, w}));
}

TEST_CASE("conv2d: error messages name the op and the shapes") {
    Tensor x = zeros({2, 3, 8, 8}), w = zeros({4, 3, 3, 3});
    CHECK_THROWS_WITH_AS(conv2d(zeros({3, 8}), w),
                         doctest::Contains("conv2d: expected an input of shape (B, C, H, W) or "
                                           "(C, H, W), got (3, 8)"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(x, zeros({4, 3, 3})),
                         doctest::Contains("conv2d: expected a weight of shape (O, C/groups, kh, kw), "
                                           "got (4, 3, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(x, zeros({4, 2, 3, 3})),
                         doctest::Contains("conv2d: input (2, 3, 8, 8) has 3 channels but weight "
                                           "(4, 2, 3, 3) expects 2 per group x groups=1 = 2"),
                         Error);
    Conv2dOptions g2 = conv_options({1, 1}, {0, 0}, {1, 1}, 2);
    CHECK_THROWS_WITH_AS(conv2d(x, zeros({4, 1, 3, 3}), Tensor(), g2),
                         doctest::Contains("conv2d: groups=2 does not divide the 3 channels of the "
                                           "input (2, 3, 8, 8)"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(zeros({1, 4, 8, 8}), zeros({3, 2, 3, 3}), Tensor(), g2),
                         doctest::Contains("conv2d: groups=2 does not divide the 3 output channels"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(zeros({1, 3, 2, 8}), w),
                         doctest::Contains("conv2d: the output would be empty: input (1, 3, 2, 8)"),
                         Error);
    Conv2dOptions dilated = conv_options({1, 1}, {0, 0}, {4, 1}, 1);
    CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), dilated),  // span 9 > 8
                         doctest::Contains("conv2d: the output would be empty"), Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w, zeros({3})),
                         doctest::Contains("conv2d: expected a bias of shape (4,)"), Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), conv_options({0, 1}, {0, 0}, {1, 1}, 1)),
                         doctest::Contains("conv2d: stride must be positive"), Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), conv_options({1, 1}, {-1, 0}, {1, 1}, 1)),
                         doctest::Contains("conv2d: padding must be non-negative"), Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), conv_options({1, 1}, {0, 0}, {1, 1}, 0)),
                         doctest::Contains("conv2d: groups must be positive"), Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w.to(DType::f64)), doctest::Contains("conv2d: dtype mismatch"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w, zeros({4}, DType::f64)),
                         doctest::Contains("conv2d: dtype mismatch, input is float32 and bias is "
                                           "float64"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(x.to(DType::i64), w.to(DType::i64)),
                         doctest::Contains("conv2d: expected floating-point tensors, got int64"),
                         Error);
    CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), conv_options({1, 1}, {0, 0}, {1, 0}, 1)),
                         doctest::Contains("conv2d: dilation must be positive, got (1, 0)"), Error);
    CHECK_THROWS_WITH_AS(conv2d(Tensor(), w), doctest::Contains("conv2d: undefined tensor"), Error);
}

TEST_CASE("conv2d: forward and gradients are bitwise identical with 1 and 2 threads") {
    const int saved = num_threads();
    // Big enough to run in parallel: many (image, group) pairs split over threads, a single
    // image whose products are split inside gemm, and depthwise planes split over threads.
    auto run = [](int threads, Shape xs, Shape ws, std::int64_t groups) {
        set_num_threads(threads);
        Generator gen(5);
        Tensor x = randn(xs, DType::f32, &gen).set_requires_grad();
        Tensor w = randn(ws, DType::f32, &gen).set_requires_grad();
        Tensor b = randn({ws[0]}, DType::f32, &gen).set_requires_grad();
        Tensor y = conv2d(x, w, b, conv_options({1, 1}, {1, 1}, {1, 1}, groups));
        sum(y * y).backward();
        std::vector<float> bits = y.to_vector<float>();
        for (const Tensor& g : {x.grad(), w.grad(), b.grad()}) {
            std::vector<float> v = g.to_vector<float>();
            bits.insert(bits.end(), v.begin(), v.end());
        }
        return bits;
    };
    for (const auto& [xs, ws, groups] : std::vector<std::tuple<Shape, Shape, std::int64_t>>{
             {{4, 16, 16, 16}, {32, 8, 3, 3}, 2},
             {{1, 32, 32, 32}, {64, 32, 3, 3}, 1},
             {{4, 32, 16, 16}, {64, 1, 3, 3}, 32}}) {  // depthwise
        CAPTURE(shape_str(xs));
        std::vector<float> one = run(1, xs, ws, groups), two = run(2, xs, ws, groups);
        REQUIRE(one.size() == two.size());
        CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
    }
    set_num_threads(saved);
}

// ---- pooling ----

namespace {
Pool2dOptions pool_options(std::array<std::int64_t, 2> kernel, std::array<std::int64_t, 2> stride,
                           std::array<std::int64_t, 2> padding, bool ceil_mode,
                           bool count_include_pad = true) {
    Pool2dOptions o;
    o.kernel = kernel;
    o.stride = stride;
    o.padding = padding;
    o.ceil_mode = ceil_mode;
    o.count_include_pad = count_include_pad;
    return o;
}

struct PoolCase {
    const char* name;
    Shape x;
    Pool2dOptions options;
};

const std::vector<PoolCase> kPoolCases = {
    {"2x2 default stride", {2, 3, 6, 6}, pool_options({2, 2}, {0, 0}, {0, 0}, false)},
    {"3x3 stride 2 pad 1", {1, 2, 7, 7}, pool_options({3, 3}, {2, 2}, {1, 1}, false)},
    {"ceil mode, last window kept", {1, 2, 6, 6}, pool_options({3, 3}, {2, 2}, {1, 1}, true)},
    {"ceil mode, last window dropped", {1, 1, 5, 5}, pool_options({2, 2}, {3, 3}, {1, 1}, true)},
    {"non-square", {2, 1, 5, 8}, pool_options({3, 2}, {1, 3}, {1, 0}, true)},
    {"unbatched", {3, 5, 4}, pool_options({2, 2}, {1, 1}, {1, 1}, false)},
    {"kernel = input", {1, 2, 3, 3}, pool_options({3, 3}, {1, 1}, {0, 0}, false)},
};
}  // namespace

TEST_CASE("max_pool2d and avg_pool2d: match direct loops (padding, stride, ceil_mode, divisors)") {
    std::uint64_t seed = 70;
    for (const PoolCase& c : kPoolCases) {
        CAPTURE(c.name);
        Tensor x = leaf(c.x, seed++).detach();
        CHECK(max_abs_diff(max_pool2d(x, c.options), pool_reference(x, c.options, PoolKind::max)) ==
              0.0);
        for (bool include : {true, false}) {
            CAPTURE(include);
            Pool2dOptions o = c.options;
            o.count_include_pad = include;
            Tensor expected = pool_reference(x, o, PoolKind::avg);
            CHECK(max_abs_diff(avg_pool2d(x, o), expected) < 1e-12);
            CHECK(max_abs_diff(avg_pool2d(x.to(DType::f32), o), expected) < 1e-5);
        }
    }
}

TEST_CASE("max_pool2d: NaN wins a window, and ties send the gradient to the first element") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Tensor x = from_vector<double>({1, nan, 3, 4, 5, 5, 5, 5}, {1, 2, 2, 2});
    Tensor y = max_pool2d(x, pool_options({2, 2}, {0, 0}, {0, 0}, false));
    CHECK(std::isnan(y.to_vector<double>()[0]));
    CHECK(y.to_vector<double>()[1] == 5);
    Tensor t = from_vector<double>({2, 7, 7, 1}, {1, 1, 2, 2}).set_requires_grad();
    max_pool2d(t, pool_options({2, 2}, {0, 0}, {0, 0}, false)).backward(ones({1, 1, 1, 1}, DType::f64));
    CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
}

TEST_CASE("adaptive_avg_pool2d: PyTorch's windows floor(i H / OH) .. ceil((i + 1) H / OH)") {
    const std::vector<std::pair<Shape, std::array<std::int64_t, 2>>> cases = {
        {{2, 3, 7, 5}, {3, 2}},  // overlapping windows
        {{1, 2, 6, 6}, {3, 3}},  // even split
        {{1, 1, 4, 5}, {1, 1}},  // global average
        {{2, 3, 3}, {5, 4}},     // output larger than input, unbatched
    };
    std::uint64_t seed = 90;
    for (const auto& [shape, size] : cases) {
        CAPTURE(shape_str(shape));
        Tensor x = leaf(shape, seed++);
        Tensor y = adaptive_avg_pool2d(x, size);
        CHECK(max_abs_diff(y, adaptive_reference(x, size[0], size[1])) < 1e-12);
        CHECK(gradcheck([size](const std::vector<Tensor>& in) {
            return adaptive_avg_pool2d(in[0], size);
        }, {x}));
    }
}

TEST_CASE("pooling: gradient checks") {
    std::uint64_t seed = 110;
    for (const PoolCase& c : kPoolCases) {
        CAPTURE(c.name);
        Tensor x = leaf(c.x, seed++);  // continuous random values: no ties in max windows
        Pool2dOptions o = c.options;
        CHECK(gradcheck([o](const std::vector<Tensor>& in) { return max_pool2d(in[0], o); }, {x}));
        for (bool include : {true, false}) {
            o.count_include_pad = include;
            CHECK(gradcheck([o](const std::vector<Tensor>& in) { return avg_pool2d(in[0], o); },
                            {x}));
        }
    }
}

TEST_CASE("pooling: error messages") {
    Tensor x = zeros({1, 1, 4, 4});
    CHECK_THROWS_WITH_AS(max_pool2d(zeros({4, 4}), pool_options({2, 2}, {0, 0}, {0, 0}, false)),
                         doctest::Contains("max_pool2d: expected an input of shape (B, C, H, W) or "
                                           "(C, H, W), got (4, 4)"),
                         Error);
    CHECK_THROWS_WITH_AS(avg_pool2d(x, pool_options({2, 2}, {0, 0}, {2, 0}, false)),
                         doctest::Contains("avg_pool2d: padding (2, 0) must be between 0 and half "
                                           "the kernel size (2, 2)"),
                         Error);
    CHECK_THROWS_WITH_AS(max_pool2d(x, pool_options({5, 5}, {0, 0}, {0, 0}, false)),
                         doctest::Contains("max_pool2d: the output would be empty: input (1, 1, 4, 4)"),
                         Error);
    CHECK_THROWS_WITH_AS(max_pool2d(x, pool_options({0, 2}, {0, 0}, {0, 0}, false)),
                         doctest::Contains("max_pool2d: kernel size must be positive"), Error);
    CHECK_THROWS_WITH_AS(max_pool2d(x, pool_options({2, 2}, {-1, 1}, {0, 0}, false)),
                         doctest::Contains("max_pool2d: stride must be positive"), Error);
    CHECK_THROWS_WITH_AS(avg_pool2d(x.to(DType::i64), pool_options({2, 2}, {0, 0}, {0, 0}, false)),
                         doctest::Contains("avg_pool2d: expected a floating-point tensor"), Error);
    CHECK_THROWS_WITH_AS(max_pool2d(Tensor(), pool_options({2, 2}, {0, 0}, {0, 0}, false)),
                         doctest::Contains("max_pool2d: undefined tensor"), Error);
    CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, {0, 2}),
                         doctest::Contains("adaptive_avg_pool2d: output size must be positive"),
                         Error);
    CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(zeros({1, 0, 4}), {1, 1}),
                         doctest::Contains("adaptive_avg_pool2d: the input (1, 0, 4) has an empty plane"),
                         Error);
}

// ---- PyTorch fixtures ----

TEST_CASE("conv2d and pooling: PyTorch fixtures (values and gradients of sum(y^2)/2)") {
    Fixture f("conv.txt");
    auto check_grads = [&](const std::string& name, const std::vector<std::string>& inputs,
                           const std::vector<Tensor>& leaves, const Tensor& y) {
        CHECK(max_abs_diff(y, f[name + ".y"]) < 1e-10);
        sum(y * y * 0.5).backward();
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            CAPTURE(inputs[i]);
            CHECK(max_abs_diff(leaves[i].grad(), f[name + ".grad_" + inputs[i]]) < 1e-9);
        }
    };
    auto input = [&](const std::string& name) { return f[name].clone().set_requires_grad(); };

    const std::vector<std::pair<std::string, Conv2dOptions>> convs = {
        {"conv_strided", conv_options({2, 1}, {1, 0}, {1, 1}, 1)},
        {"conv_dilated_groups", conv_options({1, 1}, {1, 2}, {2, 2}, 2)},
        {"conv_depthwise", conv_options({2, 2}, {1, 1}, {1, 1}, 3)},
        {"conv_1x1", conv_options({1, 1}, {0, 0}, {1, 1}, 1)},
    };
    for (const auto& [name, options] : convs) {
        CAPTURE(name);
        Tensor x = input(name + ".x"), w = input(name + ".w");
        if (f.has(name + ".b")) {
            Tensor b = input(name + ".b");
            check_grads(name, {"x", "w", "b"}, {x, w, b}, conv2d(x, w, b, options));
        } else {
            check_grads(name, {"x", "w"}, {x, w}, conv2d(x, w, Tensor(), options));
        }
        // float32 forward against the float64 values
        Tensor b32 = f.has(name + ".b") ? f.f32(name + ".b") : Tensor();
        CHECK(max_abs_diff(conv2d(f.f32(name + ".x"), f.f32(name + ".w"), b32, options),
                           f[name + ".y"]) < 1e-4);
    }

    const std::vector<std::pair<std::string, Pool2dOptions>> pools = {
        {"max_ceil", pool_options({3, 2}, {2, 3}, {1, 1}, true)},
        {"max_default_stride", pool_options({2, 2}, {0, 0}, {0, 0}, false)},
        {"avg_ceil_pad", pool_options({3, 3}, {2, 2}, {1, 1}, true, true)},
        {"avg_ceil_nopad", pool_options({3, 3}, {2, 2}, {1, 1}, true, false)},
    };
    for (const auto& [name, options] : pools) {
        CAPTURE(name);
        Tensor x = input(name + ".x");
        Tensor y = name.rfind("max", 0) == 0 ? max_pool2d(x, options) : avg_pool2d(x, options);
        check_grads(name, {"x"}, {x}, y);
    }
    Tensor x = input("adaptive.x");
    check_grads("adaptive", {"x"}, {x}, adaptive_avg_pool2d(x, {3, 4}));
}
