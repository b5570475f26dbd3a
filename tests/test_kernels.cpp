// tests/test_kernels.cpp: the kernels of engine/kernels/, run on the CPU through for_each_cpu,
// against the CPU ops. These structs are exactly what the CUDA backend launches (one GPU thread
// per index), so this is where the GPU's arithmetic and indexing are tested on machines without
// a GPU; tests/test_cuda_ops.cpp compares the real launches when a GPU is there.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "engine/cpu/depthwise.h"
#include "engine/cpu/fft2.h"
#include "engine/cpu/im2col.h"
#include "engine/engine.h"
#include "engine/kernels/conv.h"
#include "engine/kernels/copy.h"
#include "engine/kernels/elementwise.h"
#include "engine/kernels/fft.h"
#include "engine/kernels/for_each.h"
#include "engine/kernels/indexing.h"
#include "engine/kernels/interpolate.h"
#include "engine/kernels/loss.h"
#include "engine/kernels/normalization.h"
#include "engine/kernels/pool.h"
#include "engine/kernels/random.h"
#include "engine/kernels/reduce.h"
#include "engine/kernels/softmax.h"
#include "engine/math/binary.h"
#include "engine/math/unary.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::max_abs_diff;

namespace {

Tensor random_values(const Shape& shape, std::uint64_t seed, DType dtype = DType::f32) {
    Generator gen(seed);
    if (dtype == DType::i32 || dtype == DType::i64) return randint(-5, 6, shape, dtype, &gen);
    return uniform(shape, -3, 3, dtype, &gen);
}

// The shape pairs every broadcasting kernel is tried on: equal, a row, a column, a scalar, a
// channel bias, leading dims added, both sides stretched.
const std::vector<std::pair<Shape, Shape>> kBroadcastCases = {
    {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}},        {{2, 3, 4}, {3, 1}},
    {{5, 7}, {}},           {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{3, 1, 5}, {1, 4, 1}},
    {{1}, {6, 2}},          {{2, 1, 3, 1, 2}, {4, 1, 1, 2}}};

template <class Op, class T>
Tensor run_binary(const Tensor& a, const Tensor& b) {
    const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), "test");
    Tensor out = Tensor::empty(out_shape, a.dtype());
    kernels::Binary<Op, T> kernel{a.data<T>(), b.data<T>(), out.data<T>(),
                                  kernels::make_broadcast_index<2>(out_shape,
                                                                   {&a.shape(), &b.shape()})};
    kernels::for_each_cpu(out.numel(), kernel);
    return out;
}

// Bitwise equality (NaN equal to NaN): the kernels compute each element with the same formula.
bool same_values(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!(x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i])))) return false;
    return true;
}

template <class T>
void check_all_binary_ops(DType dtype) {
    std::uint64_t seed = 1;
    for (const auto& [sa, sb] : kBroadcastCases) {
        CAPTURE(shape_str(sa));
        CAPTURE(shape_str(sb));
        Tensor a = random_values(sa, seed++, dtype), b = random_values(sb, seed++, dtype);
        CHECK(same_values(run_binary<math::Add, T>(a, b), add(a, b)));
        CHECK(same_values(run_binary<math::Sub, T>(a, b), sub(a, b)));
        CHECK(same_values(run_binary<math::Mul, T>(a, b), mul(a, b)));
        CHECK(same_values(run_binary<math::Minimum, T>(a, b), minimum(a, b)));
        CHECK(same_values(run_binary<math::Maximum, T>(a, b), maximum(a, b)));
        CHECK(same_values(run_binary<math::Eq, T>(a, b), eq(a, b)));
        CHECK(same_values(run_binary<math::Ne, T>(a, b), ne(a, b)));
        CHECK(same_values(run_binary<math::Lt, T>(a, b), lt(a, b)));
        CHECK(same_values(run_binary<math::Le, T>(a, b), le(a, b)));
        CHECK(same_values(run_binary<math::Gt, T>(a, b), gt(a, b)));
        CHECK(same_values(run_binary<math::Ge, T>(a, b), ge(a, b)));
        if constexpr (std::is_floating_point_v<T>) {
            CHECK(same_values(run_binary<math::Div, T>(a, b), div(a, b)));
            Tensor positive = abs(a) + 0.5;
            CHECK(same_values(run_binary<math::Pow, T>(positive, b), pow(positive, b)));
        }
    }
}

}  // namespace

TEST_CASE("kernels: the broadcast index finds every input element a broadcast reads") {
    // each output element's offsets, against the definition: output coordinates, with the
    // coordinate of every size-1 (or missing) input dim set to 0
    for (const auto& [sa, sb] : kBroadcastCases) {
        const Shape out = broadcast_shapes(sa, sb, "test");
        const auto index = kernels::make_broadcast_index<2>(out, {&sa, &sb});
        const std::int64_t n = shape_numel(out);
        for (std::int64_t i = 0; i < n; ++i) {
            std::int64_t got[2];
            index.offsets(i, got);
            std::int64_t rest = i;
            std::int64_t expected[2] = {0, 0};
            std::int64_t stride[2] = {1, 1};
            for (std::size_t d = out.size(); d-- > 0;) {
                const std::int64_t coord = rest % out[d];
                rest /= out[d];
                const Shape* shapes[2] = {&sa, &sb};
                for (int k = 0; k < 2; ++k) {
                    const Shape& s = *shapes[k];
                    const std::size_t lead = out.size() - s.size();
                    if (d < lead) continue;
                    const std::int64_t size = s[d - lead];
                    if (size != 1) expected[k] += coord * stride[k];
                    stride[k] *= size;
                }
            }
            REQUIRE(got[0] == expected[0]);
            REQUIRE(got[1] == expected[1]);
        }
    }
    // more independent dims than a kernel argument holds: a clear error, not a wrong result
    const Shape wide{2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1};
    const Shape other{1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2};
    const Shape out = broadcast_shapes(wide, other, "test");
    CHECK_THROWS_WITH_AS(kernels::make_broadcast_index<2>(out, {&wide, &other}),
                         doctest::Contains("GPU kernels take at most"), Error);
}

TEST_CASE("kernels: binary ops give the CPU loops' values for every dtype and broadcast") {
    check_all_binary_ops<float>(DType::f32);
    check_all_binary_ops<double>(DType::f64);
    check_all_binary_ops<std::int32_t>(DType::i32);
    check_all_binary_ops<std::int64_t>(DType::i64);
    // NaN: minimum and maximum propagate it from either side
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor a = from_vector<float>({nan, 1, 2, nan}), b = from_vector<float>({1, nan, 3, nan});
    CHECK(same_values(run_binary<math::Minimum, float>(a, b), minimum(a, b)));
    CHECK(same_values(run_binary<math::Maximum, float>(a, b), maximum(a, b)));
    CHECK(std::isnan(run_binary<math::Maximum, float>(a, b).to_vector<float>()[1]));
}

TEST_CASE("kernels: where and broadcast_to") {
    Tensor cond = gt(random_values({3, 1, 4}, 7), scalar_tensor(0.0));
    Tensor a = random_values({2, 1}, 8), b = random_values({3, 2, 4}, 9);
    const Shape out_shape{3, 2, 4};
    Tensor got = Tensor::empty(out_shape);
    kernels::for_each_cpu(got.numel(),
                          kernels::Where<float, float>{
                              cond.data<float>(), a.data<float>(), b.data<float>(),
                              got.data<float>(),
                              kernels::make_broadcast_index<3>(
                                  out_shape, {&cond.shape(), &a.shape(), &b.shape()})});
    CHECK(same_values(got, where(cond, a, b)));

    Tensor x = random_values({3, 1}, 10);
    const Shape big{2, 3, 5};
    Tensor expanded = Tensor::empty(big);
    kernels::for_each_cpu(expanded.numel(),
                          kernels::BroadcastCopy<float>{
                              x.data<float>(), expanded.data<float>(),
                              kernels::make_broadcast_index<1>(big, {&x.shape()})});
    CHECK(same_values(expanded, broadcast_to(x, big)));
}

namespace {

// The unary kernels against the CPU op, forward and backward (the backward from autograd).
template <class F>
void check_unary(F f, const std::function<Tensor(const Tensor&)>& op, double low, double high) {
    for (DType dtype : {DType::f32, DType::f64}) {
        Generator gen(42);
        Tensor x = uniform({1000}, low, high, dtype, &gen);
        x.set_requires_grad(true);
        Tensor y = op(x);
        Tensor dy = uniform({1000}, -1, 1, dtype, &gen);
        y.backward(dy);
        visit_floating(dtype, "test", [&]<class T>(Type<T>) {
            Tensor ky = Tensor::empty({1000}, dtype), kdx = Tensor::empty({1000}, dtype);
            kernels::for_each_cpu(1000, kernels::UnaryForward<F, T>{x.data<T>(), ky.data<T>(), f});
            kernels::for_each_cpu(1000, kernels::UnaryBackward<F, T>{
                                            x.data<T>(), y.detach().data<T>(), dy.data<T>(),
                                            kdx.data<T>(), f});
            // float GELU, sigmoid and SiLU run vectorized loops on the CPU whose rounding may
            // differ in the last place from the scalar formula; everything else is exact
            const double tolerance = dtype == DType::f32 ? 2e-6 : 0;
            CHECK(max_abs_diff(ky, y.detach()) <= tolerance);
            CHECK(max_abs_diff(kdx, x.grad()) <= tolerance);
        });
    }
}

}  // namespace

TEST_CASE("kernels: every unary functor, forward and backward, against the CPU ops") {
    check_unary(math::Neg{}, [](const Tensor& x) { return neg(x); }, -3, 3);
    check_unary(math::Exp{}, [](const Tensor& x) { return exp(x); }, -3, 3);
    check_unary(math::Log{}, [](const Tensor& x) { return log(x); }, 0.1, 3);
    check_unary(math::Sqrt{}, [](const Tensor& x) { return sqrt(x); }, 0.1, 3);
    check_unary(math::Rsqrt{}, [](const Tensor& x) { return rsqrt(x); }, 0.1, 3);
    check_unary(math::Abs{}, [](const Tensor& x) { return abs(x); }, -3, 3);
    check_unary(math::PowScalar{2.5}, [](const Tensor& x) { return pow(x, 2.5); }, 0.1, 3);
    check_unary(math::Clamp{-1, 0.5}, [](const Tensor& x) { return clamp(x, -1.0, 0.5); }, -3, 3);
    check_unary(math::Relu{}, [](const Tensor& x) { return relu(x); }, -3, 3);
    check_unary(math::Relu6{}, [](const Tensor& x) { return relu6(x); }, -3, 9);
    check_unary(math::LeakyRelu{0.1}, [](const Tensor& x) { return leaky_relu(x, 0.1); }, -3, 3);
    check_unary(math::GeluErf{}, [](const Tensor& x) { return gelu(x); }, -5, 5);
    check_unary(math::GeluTanh{}, [](const Tensor& x) { return gelu(x, "tanh"); }, -5, 5);
    check_unary(math::Sigmoid{}, [](const Tensor& x) { return sigmoid(x); }, -8, 8);
    check_unary(math::Silu{}, [](const Tensor& x) { return silu(x); }, -8, 8);
    check_unary(math::Tanh{}, [](const Tensor& x) { return tanh(x); }, -3, 3);
    check_unary(math::Hardswish{}, [](const Tensor& x) { return hardswish(x); }, -5, 5);
    check_unary(math::Hardsigmoid{}, [](const Tensor& x) { return hardsigmoid(x); }, -5, 5);
}

TEST_CASE("kernels: sums in chunks give the CPU's bits, for short, long and strided lines") {
    // sizes below, at and well above one chunk; inner 1 (contiguous) and inner > 1 (strided)
    for (const Shape& shape : {Shape{4, 7, 3}, Shape{2, 1024, 5}, Shape{3, 3000, 1},
                               Shape{1, 5000, 2}, Shape{6, 0, 2}}) {
        for (int dim = 0; dim < 3; ++dim) {
            CAPTURE(shape_str(shape));
            CAPTURE(dim);
            Tensor x = random_values(shape, 11 + dim);
            const DimSplit split = split_at_dim(shape, dim);
            const std::int64_t outputs = split.outer * split.inner;
            const std::int64_t chunks = std::max<std::int64_t>(1, kernels::reduce_chunks(split.size));
            Tensor partials = zeros({outputs * chunks});
            if (split.size > 0)
                kernels::for_each_cpu(outputs * chunks,
                                      kernels::SumChunks<float>{x.data<float>(),
                                                                partials.data<float>(), split,
                                                                chunks});
            Tensor got = Tensor::empty({outputs});
            kernels::for_each_cpu(outputs, kernels::SumPartials<float>{partials.data<float>(),
                                                                       got.data<float>(), chunks});
            Tensor expected = sum(x, {dim}).reshape({outputs});
            CHECK(same_values(got, expected));  // bit for bit
        }
    }
}

TEST_CASE("kernels: max/min along a dim with indices, NaN and ties, and the routed gradient") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // ties (first index wins), a NaN in the middle of a line (it wins and stays)
    Tensor x = from_vector<float>({1, 3, 3, 0, 2, nan, 5, 1, -1, -1, -2, -2}, {3, 4});
    x.set_requires_grad(true);
    for (bool want_max : {true, false}) {
        for (int dim : {0, 1}) {
            CAPTURE(want_max);
            CAPTURE(dim);
            ValuesIndices expected = want_max ? max(x, dim, true) : min(x, dim, true);
            const DimSplit split = split_at_dim(x.shape(), dim);
            const std::int64_t outputs = split.outer * split.inner;
            Tensor values = Tensor::empty({outputs});
            Tensor indices = Tensor::empty({outputs}, DType::i64);
            kernels::for_each_cpu(outputs, kernels::ExtremeAlong<float>{
                                               x.detach().data<float>(), values.data<float>(),
                                               indices.data<std::int64_t>(), split, want_max});
            CHECK(same_values(values, expected.values.reshape({outputs})));
            CHECK(same_values(indices, expected.indices.reshape({outputs})));

            Tensor g = random_values(expected.values.shape(), 5);
            x.zero_grad();
            expected.values.backward(g);
            Tensor routed = Tensor::empty(x.shape());
            kernels::for_each_cpu(x.numel(), kernels::RouteToIndices<float>{
                                                 g.data<float>(), indices.data<std::int64_t>(),
                                                 routed.data<float>(), split});
            CHECK(same_values(routed, x.grad()));
        }
    }
}

TEST_CASE("kernels: softmax and log_softmax lines, forward and backward, along any dim") {
    for (const Shape& shape : {Shape{4, 10}, Shape{2, 5, 3, 4}, Shape{1, 1000}}) {
        for (int dim = 0; dim < static_cast<int>(shape.size()); ++dim) {
            for (bool log : {false, true}) {
                CAPTURE(shape_str(shape));
                CAPTURE(dim);
                CAPTURE(log);
                Tensor x = random_values(shape, 21 + dim, DType::f64) * 4.0;
                x.set_requires_grad(true);
                Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
                Tensor dy = random_values(shape, 31, DType::f64);
                y.backward(dy);
                const DimSplit split = split_at_dim(shape, dim);
                Tensor ky = Tensor::empty(shape, DType::f64), kdx = Tensor::empty(shape, DType::f64);
                kernels::for_each_cpu(split.outer * split.inner,
                                      kernels::SoftmaxLine<double>{x.detach().data<double>(),
                                                                   ky.data<double>(), split, log});
                kernels::for_each_cpu(split.outer * split.inner,
                                      kernels::SoftmaxBackwardLine<double>{
                                          ky.data<double>(), dy.data<double>(),
                                          kdx.data<double>(), split, log});
                CHECK(max_abs_diff(ky, y.detach()) < 1e-13);
                CHECK(max_abs_diff(kdx, x.grad()) < 1e-13);
            }
        }
    }
}

TEST_CASE("kernels: permuted copies and slice copies give the CPU ops' tensors") {
    Tensor x = random_values({2, 3, 4, 5}, 41, DType::i64);
    for (const std::vector<std::int64_t>& order :
         {std::vector<std::int64_t>{0, 2, 3, 1}, {3, 2, 1, 0}, {0, 1, 3, 2}, {1, 0, 2, 3}}) {
        CAPTURE(shape_str(order));
        Tensor expected = permute(x, order);
        // the plan the op builds: merged output dims and their input strides
        Shape sizes, strides;
        const Shape in_strides = contiguous_strides(x.shape());
        for (std::int64_t d : order) {
            if (!sizes.empty() && strides.back() == in_strides[d] * x.shape()[d]) {
                sizes.back() *= x.shape()[d];
                strides.back() = in_strides[d];
            } else {
                sizes.push_back(x.shape()[d]);
                strides.push_back(in_strides[d]);
            }
        }
        kernels::PermuteCopy<std::int64_t> copy{x.data<std::int64_t>(), nullptr,
                                                static_cast<int>(sizes.size()), {}, {}};
        Tensor got = Tensor::empty(expected.shape(), DType::i64);
        copy.out = got.data<std::int64_t>();
        for (std::size_t d = 0; d < sizes.size(); ++d) {
            copy.sizes[d] = sizes[d];
            copy.in_strides[d] = strides[d];
        }
        kernels::for_each_cpu(got.numel(), copy);
        CHECK(same_values(got, expected));
    }

    // narrow's slices, copied into a zero tensor at an offset: narrow's backward
    const DimSplit from = split_at_dim(x.shape(), 2);
    Tensor piece = narrow(x, 2, 1, 2);
    Tensor back = zeros(x.shape(), DType::i64);
    kernels::for_each_cpu(from.outer * 2 * from.inner,
                          kernels::SliceCopy<std::int64_t>{
                              piece.data<std::int64_t>(), back.data<std::int64_t>(),
                              split_at_dim(piece.shape(), 2), from, 0, 1, 2});
    Tensor expected = concat({zeros({2, 3, 1, 5}, DType::i64), piece, zeros({2, 3, 1, 5}, DType::i64)}, 2);
    CHECK(same_values(back, expected));
}

TEST_CASE("kernels: batch norm and layer norm, forward and backward, against the CPU ops") {
    // batch norm in training (with running statistics) and in eval, on (B, C, H, W)
    for (bool training : {true, false}) {
        CAPTURE(training);
        Tensor x = random_values({4, 3, 5, 2}, 51, DType::f64);
        Tensor w = random_values({3}, 52, DType::f64), b = random_values({3}, 53, DType::f64);
        x.set_requires_grad(true);
        w.set_requires_grad(true);
        b.set_requires_grad(true);
        Tensor rm = random_values({3}, 54, DType::f64), rv = abs(random_values({3}, 55, DType::f64)) + 0.5;
        Tensor kernel_rm = rm.clone(), kernel_rv = rv.clone();
        Tensor y = batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
        Tensor dy = random_values(x.shape(), 56, DType::f64);
        y.backward(dy);

        const kernels::ChannelShape shape{4, 3, 10};
        Tensor mean = zeros({3}, DType::f64), var = zeros({3}, DType::f64);
        Tensor invstd = zeros({3}, DType::f64), scale = zeros({3}, DType::f64), shift = zeros({3}, DType::f64);
        const double* xs = x.detach().data<double>();
        if (training)
            kernels::for_each_cpu(3, kernels::ChannelMoments<double>{xs, shape, mean.data<double>(),
                                                                     var.data<double>()});
        kernels::for_each_cpu(3, kernels::BatchNormChannel<double>{
                                     mean.data<double>(), var.data<double>(), w.data<double>(),
                                     b.data<double>(), kernel_rm.data<double>(),
                                     kernel_rv.data<double>(), 0.1, 1e-5, 40.0, training,
                                     invstd.data<double>(), scale.data<double>(),
                                     shift.data<double>()});
        Tensor ky = Tensor::empty(x.shape(), DType::f64);
        kernels::for_each_cpu(x.numel(), kernels::ChannelAffine<double>{
                                             xs, ky.data<double>(), shape, scale.data<double>(),
                                             shift.data<double>()});
        CHECK(max_abs_diff(ky, y.detach()) < 1e-12);
        CHECK(max_abs_diff(kernel_rm, rm) < 1e-15);
        CHECK(max_abs_diff(kernel_rv, rv) < 1e-15);

        Tensor sum_dy = zeros({3}, DType::f64), sum_dy_xhat = zeros({3}, DType::f64);
        kernels::for_each_cpu(3, kernels::ChannelGradSums<double>{
                                     xs, dy.data<double>(), shape, mean.data<double>(),
                                     invstd.data<double>(), sum_dy.data<double>(),
                                     sum_dy_xhat.data<double>()});
        Tensor kdx = Tensor::empty(x.shape(), DType::f64);
        kernels::for_each_cpu(x.numel(), kernels::BatchNormInputGrad<double>{
                                             xs, dy.data<double>(), w.data<double>(), shape,
                                             mean.data<double>(), invstd.data<double>(),
                                             sum_dy.data<double>(), sum_dy_xhat.data<double>(),
                                             training, kdx.data<double>()});
        CHECK(max_abs_diff(kdx, x.grad()) < 1e-12);
        CHECK(max_abs_diff(sum_dy_xhat, w.grad()) < 1e-12);
        CHECK(max_abs_diff(sum_dy, b.grad()) < 1e-12);
    }

    // layer norm over the last two dims of (3, 4, 2, 5)
    Tensor x = random_values({3, 4, 2, 5}, 61, DType::f64);
    Tensor w = random_values({2, 5}, 62, DType::f64), b = random_values({2, 5}, 63, DType::f64);
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    Tensor y = layer_norm(x, {2, 5}, w, b, 1e-5);
    Tensor dy = random_values(x.shape(), 64, DType::f64);
    y.backward(dy);
    const std::int64_t M = 12, N = 10;
    Tensor mean = zeros({M}, DType::f64), invstd = zeros({M}, DType::f64);
    const double* xs = x.detach().data<double>();
    kernels::for_each_cpu(M, kernels::RowMoments<double>{xs, N, 1e-5, mean.data<double>(),
                                                         invstd.data<double>()});
    Tensor ky = Tensor::empty(x.shape(), DType::f64), kdx = Tensor::empty(x.shape(), DType::f64);
    Tensor kdw = Tensor::empty({2, 5}, DType::f64), kdb = Tensor::empty({2, 5}, DType::f64);
    kernels::for_each_cpu(x.numel(), kernels::LayerNormApply<double>{
                                         xs, ky.data<double>(), N, w.data<double>(),
                                         b.data<double>(), mean.data<double>(),
                                         invstd.data<double>()});
    kernels::for_each_cpu(M, kernels::LayerNormInputGrad<double>{
                                 xs, dy.data<double>(), w.data<double>(), N, mean.data<double>(),
                                 invstd.data<double>(), kdx.data<double>()});
    kernels::for_each_cpu(N, kernels::LayerNormParamGrad<double>{
                                 xs, dy.data<double>(), M, N, mean.data<double>(),
                                 invstd.data<double>(), kdw.data<double>(), kdb.data<double>()});
    CHECK(max_abs_diff(ky, y.detach()) < 1e-12);
    CHECK(max_abs_diff(kdx, x.grad()) < 1e-12);
    CHECK(max_abs_diff(kdw, w.grad()) < 1e-12);
    CHECK(max_abs_diff(kdb, b.grad()) < 1e-12);
}

TEST_CASE("kernels: the class-weight matrix of cross_entropy, with smoothing and ignored items") {
    Tensor target = from_vector<std::int64_t>({2, -100, 0, 1, 2, 0}, {2, 3});  // (B, d1)
    const DimSplit split = split_at_dim({2, 4, 3}, 1);                       // scores (B, K, d1)
    Tensor q = Tensor::empty({2, 4, 3});
    kernels::for_each_cpu(q.numel(), kernels::ClassWeights<float, std::int64_t>{
                                         target.data<std::int64_t>(), q.data<float>(), split,
                                         0.85f, 0.05f, -100});
    const std::vector<float> v = q.to_vector<float>();
    for (std::int64_t o = 0; o < 2; ++o)
        for (std::int64_t k = 0; k < 4; ++k)
            for (std::int64_t i = 0; i < 3; ++i) {
                const std::int64_t c = target.to_vector<std::int64_t>()[o * 3 + i];
                const float expected = c == -100 ? 0.0f : (k == c ? 0.85f : 0.05f);
                CHECK(v[(o * 4 + k) * 3 + i] == expected);
            }
}

TEST_CASE("kernels: im2col and col2im, as gathers, against the CPU's loops") {
    // strides, padding and dilation that leave some taps outside the image, two images
    struct Case {
        std::int64_t C, H, W, kh, kw, sh, sw, ph, pw, dh, dw;
    };
    for (const Case& c : {Case{3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1}, Case{2, 9, 8, 3, 2, 2, 3, 2, 1, 1, 2},
                          Case{4, 5, 5, 1, 1, 2, 2, 0, 0, 1, 1}}) {
        const std::int64_t OH = (c.H + 2 * c.ph - c.dh * (c.kh - 1) - 1) / c.sh + 1;
        const std::int64_t OW = (c.W + 2 * c.pw - c.dw * (c.kw - 1) - 1) / c.sw + 1;
        const kernels::ConvWindow g{c.C, c.H, c.W, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, OH, OW};
        const cpu::ConvGeometry geometry{c.C, c.H, c.W, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, OH, OW};
        const std::int64_t taps = g.taps(), P = g.positions(), plane = c.C * c.H * c.W;
        Tensor x = random_values({2, c.C, c.H, c.W}, 71);
        Tensor col = Tensor::empty({2, taps, P}), expected = Tensor::empty({2, taps, P});
        kernels::for_each_cpu(col.numel(), kernels::Im2Col<float>{x.data<float>(), col.data<float>(), g, plane});
        for (int i = 0; i < 2; ++i)
            cpu::im2col(x.data<float>() + i * plane, geometry, expected.data<float>() + i * taps * P, P);
        CHECK(same_values(col, expected));

        Tensor back = Tensor::empty(x.shape()), expected_back = Tensor::empty(x.shape());
        kernels::for_each_cpu(back.numel(), kernels::Col2Im<float>{col.data<float>(), back.data<float>(), g, plane});
        for (int i = 0; i < 2; ++i)
            cpu::col2im(col.data<float>() + i * taps * P, geometry, expected_back.data<float>() + i * plane, P);
        CHECK(max_abs_diff(back, expected_back) < 1e-5);
    }
}

TEST_CASE("kernels: depthwise convolution, forward and both gradients, against conv2d") {
    for (std::int64_t multiplier : {1, 2}) {
        CAPTURE(multiplier);
        Conv2dOptions options;
        options.stride = {2, 1};
        options.padding = {1, 2};
        options.dilation = {1, 2};
        options.groups = 3;
        Tensor x = random_values({2, 3, 7, 6}, 81, DType::f64);
        Tensor w = random_values({3 * multiplier, 1, 3, 3}, 82, DType::f64);
        Tensor b = random_values({3 * multiplier}, 83, DType::f64);
        x.set_requires_grad(true);
        w.set_requires_grad(true);
        Tensor y = conv2d(x, w, b, options);
        Tensor dy = random_values(y.shape(), 84, DType::f64);
        y.backward(dy);
        const kernels::DepthwiseLayout l{2, 3, multiplier,
                                         {1, 7, 6, 3, 3, 2, 1, 1, 2, 1, 2, y.size(2), y.size(3)}};
        Tensor ky = Tensor::empty(y.shape(), DType::f64), kdx = Tensor::empty(x.shape(), DType::f64);
        Tensor kdw = Tensor::empty(w.shape(), DType::f64);
        const double* xs = x.detach().data<double>();
        const double* ws = w.detach().data<double>();
        kernels::for_each_cpu(ky.numel(), kernels::DepthwiseForward<double>{xs, ws, b.data<double>(), ky.data<double>(), l});
        kernels::for_each_cpu(kdx.numel(), kernels::DepthwiseGradInput<double>{dy.data<double>(), ws, kdx.data<double>(), l});
        kernels::for_each_cpu(kdw.numel(), kernels::DepthwiseGradWeight<double>{xs, dy.data<double>(), kdw.data<double>(), l});
        CHECK(max_abs_diff(ky, y.detach()) < 1e-12);
        CHECK(max_abs_diff(kdx, x.grad()) < 1e-12);
        CHECK(max_abs_diff(kdw, w.grad()) < 1e-12);
    }
}

TEST_CASE("kernels: pooling windows computed per thread agree with the CPU's tables") {
    Tensor x = random_values({2, 3, 7, 9}, 91, DType::f64);
    x.set_requires_grad(true);
    Pool2dOptions sliding;
    sliding.kernel = {3, 2};
    sliding.stride = {2, 3};
    sliding.padding = {1, 1};
    sliding.ceil_mode = true;
    struct Case {
        const char* name;
        std::function<Tensor(const Tensor&)> op;
        kernels::PoolAxisRule rows, cols;
        int kind;  // 0 max, 1 avg counting padding, 2 avg not counting it
    };
    const std::int64_t oh = max_pool2d(x.detach(), sliding).size(2);
    const std::int64_t ow = max_pool2d(x.detach(), sliding).size(3);
    Pool2dOptions no_pad_count = sliding;
    no_pad_count.count_include_pad = false;
    const std::vector<Case> cases = {
        {"max", [&](const Tensor& t) { return max_pool2d(t, sliding); },
         {7, oh, 3, 2, 1, false}, {9, ow, 2, 3, 1, false}, 0},
        {"avg", [&](const Tensor& t) { return avg_pool2d(t, sliding); },
         {7, oh, 3, 2, 1, false}, {9, ow, 2, 3, 1, false}, 1},
        {"avg without padding", [&](const Tensor& t) { return avg_pool2d(t, no_pad_count); },
         {7, oh, 3, 2, 1, false}, {9, ow, 2, 3, 1, false}, 2},
        {"adaptive", [](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 4}); },
         {7, 3, 0, 0, 0, true}, {9, 4, 0, 0, 0, true}, 1},
        {"adaptive upsampling", [](const Tensor& t) { return adaptive_avg_pool2d(t, {10, 11}); },
         {7, 10, 0, 0, 0, true}, {9, 11, 0, 0, 0, true}, 1}};
    for (const Case& c : cases) {
        CAPTURE(c.name);
        x.zero_grad();
        Tensor y = c.op(x);
        Tensor dy = random_values(y.shape(), 92, DType::f64);
        y.backward(dy);
        const kernels::PoolShape shape{6, 7, 9, c.rows, c.cols};
        Tensor ky = Tensor::empty(y.shape(), DType::f64), kdx = Tensor::empty(x.shape(), DType::f64);
        const double* xs = x.detach().data<double>();
        if (c.kind == 0) {
            Tensor winner = Tensor::empty(y.shape(), DType::i64);
            kernels::for_each_cpu(ky.numel(), kernels::MaxPoolForward<double>{
                                                  xs, ky.data<double>(), winner.data<std::int64_t>(), shape});
            kernels::for_each_cpu(kdx.numel(), kernels::MaxPoolBackward<double>{
                                                   dy.data<double>(), winner.data<std::int64_t>(),
                                                   kdx.data<double>(), shape});
        } else {
            kernels::for_each_cpu(ky.numel(), kernels::AvgPoolForward<double>{xs, ky.data<double>(), shape, c.kind == 1});
            kernels::for_each_cpu(kdx.numel(), kernels::AvgPoolBackward<double>{
                                                   dy.data<double>(), kdx.data<double>(), shape, c.kind == 1});
        }
        CHECK(same_values(ky, y.detach()));
        CHECK(same_values(kdx, x.grad()));
    }
}

TEST_CASE("kernels: dropout's mask from the Philox stream equals the CPU's") {
    Generator cpu_gen(5), kernel_gen(5);
    Tensor y = dropout(ones({3, 1001}), 0.3, true, &cpu_gen);  // y = the scaled mask
    const std::uint64_t blocks = (3 * 1001 + 3) / 4;
    const std::uint64_t seed = kernel_gen.seed(), offset = kernel_gen.reserve(blocks * 4);
    Tensor mask = Tensor::empty({3, 1001});
    kernels::for_each_cpu(mask.numel(), kernels::BernoulliScaled<float>{
                                            mask.data<float>(), seed, offset, 0.7f,
                                            1.0f * static_cast<float>(1.0 / 0.7)});
    CHECK(same_values(mask, y));
    CHECK(kernel_gen.offset() == cpu_gen.offset());  // both streams moved on alike
}

TEST_CASE("kernels: index_select, gather, scatter_add and pad, forward and backward") {
    Tensor x = random_values({3, 5, 4}, 101, DType::f64);
    x.set_requires_grad(true);
    const double* xs = x.detach().data<double>();

    // index_select along dim 1 with a repeated row: the backward adds both gradients
    Tensor index = from_vector<std::int64_t>({4, 0, 4, 2});
    Tensor y = index_select(x, 1, index);
    Tensor dy = random_values(y.shape(), 102, DType::f64);
    y.backward(dy);
    const DimSplit split = split_at_dim(x.shape(), 1);
    Tensor ky = Tensor::empty(y.shape(), DType::f64), kdx = Tensor::empty(x.shape(), DType::f64);
    kernels::for_each_cpu(ky.numel(), kernels::IndexSelect<double, std::int64_t>{
                                          xs, index.data<std::int64_t>(), ky.data<double>(), split, 4});
    kernels::for_each_cpu(kdx.numel(), kernels::IndexAdd<double, std::int64_t>{
                                           dy.data<double>(), index.data<std::int64_t>(),
                                           kdx.data<double>(), split, 4});
    CHECK(same_values(ky, y.detach()));
    CHECK(same_values(kdx, x.grad()));

    // gather along dim 2 with an index smaller than x in dim 1, then scatter_add it back
    Tensor gidx = from_vector<std::int32_t>({3, 0, 1, 1, 2, 2, 0, 0, 3, 1, 1, 2,
                                             0, 3, 3, 2, 1, 0, 2, 2, 3, 0, 1, 3}, {3, 2, 4});
    Tensor gathered = gather(x.detach(), 2, gidx);
    Tensor kg = Tensor::empty(gathered.shape(), DType::f64);
    kernels::for_each_cpu(kg.numel(), kernels::Gather<double, std::int32_t>{
                                          xs, gidx.data<std::int32_t>(), kg.data<double>(),
                                          kernels::make_layout(gidx.shape()),
                                          kernels::make_layout(x.shape()), 2});
    CHECK(same_values(kg, gathered));
    Tensor src = random_values({3, 3, 4}, 103, DType::f64);  // larger than the index in dim 1
    Tensor scattered = scatter_add(x.detach(), 2, gidx, src);
    Tensor ks = Tensor::empty(x.shape(), DType::f64);
    kernels::for_each_cpu(ks.numel(), kernels::ScatterAdd<double, std::int32_t>{
                                          xs, gidx.data<std::int32_t>(), src.data<double>(),
                                          ks.data<double>(), kernels::make_layout(x.shape()),
                                          kernels::make_layout(gidx.shape()),
                                          kernels::make_layout(src.shape()), 2});
    CHECK(same_values(ks, scattered));

    // pad: constant (also cropping), reflect and replicate, forward
    struct Case {
        const char* mode;
        kernels::PadKind kind;
        std::vector<std::int64_t> pads;
    };
    for (const Case& c : {Case{"constant", kernels::PadKind::constant, {2, -1, 1, 3}},
                          Case{"reflect", kernels::PadKind::reflect, {3, 2, 1, 4}},
                          Case{"replicate", kernels::PadKind::replicate, {5, 0, 2, 2}}}) {
        CAPTURE(c.mode);
        Tensor padded = pad(x.detach(), c.pads, c.mode, 1.5);
        Tensor kp = Tensor::empty(padded.shape(), DType::f64);
        kernels::Pad<double> kernel{xs, kp.data<double>(), kernels::make_layout(padded.shape()),
                                    kernels::make_layout(x.shape()), {}, c.kind, 1.5};
        kernel.left[2] = c.pads[0];
        kernel.left[1] = c.pads[2];
        kernels::for_each_cpu(kp.numel(), kernel);
        CHECK(same_values(kp, padded));
        if (c.kind == kernels::PadKind::constant) continue;  // its backward is a crop
        // the backward gathered per input element, against the CPU's scatter
        Tensor leaf = x.detach().clone();
        leaf.set_requires_grad(true);
        Tensor g = random_values(padded.shape(), 124, DType::f64);
        pad(leaf, c.pads, c.mode).backward(g);
        Tensor kgx = Tensor::empty(x.shape(), DType::f64);
        kernels::PadBackward<double> back{g.data<double>(), kgx.data<double>(),
                                          kernels::make_layout(padded.shape()),
                                          kernels::make_layout(x.shape()), {}, c.kind};
        back.left[2] = c.pads[0];
        back.left[1] = c.pads[2];
        kernels::for_each_cpu(kgx.numel(), back);
        CHECK(same_values(kgx, leaf.grad()));
    }
    // a one-wide dim replicated on both sides: every output of that dim comes from it
    Tensor thin = random_values({2, 1, 3}, 125, DType::f64);
    thin.set_requires_grad(true);
    Tensor g = random_values({2, 6, 3}, 126, DType::f64);
    pad(thin, {0, 0, 2, 3}, "replicate").backward(g);
    Tensor kgx = Tensor::empty(thin.shape(), DType::f64);
    kernels::PadBackward<double> back{g.data<double>(), kgx.data<double>(), kernels::make_layout({2, 6, 3}),
                                      kernels::make_layout(thin.shape()), {}, kernels::PadKind::replicate};
    back.left[1] = 2;
    kernels::for_each_cpu(kgx.numel(), back);
    CHECK(same_values(kgx, thin.grad()));
}

namespace {

// One axis's resize table written from PyTorch's formulas (bilinear with align_corners, or
// nearest), with the output range of every input index, as the GPU path builds them.
struct AxisTables {
    std::vector<std::int64_t> i0, i1, first, last;
    std::vector<double> w0, w1;
};

AxisTables axis_tables(std::int64_t in, std::int64_t out, bool bilinear) {
    AxisTables t;
    for (std::int64_t dst = 0; dst < out; ++dst) {
        if (bilinear) {
            const double src = static_cast<double>(dst) * (in - 1) / (out - 1);
            const auto i0 = static_cast<std::int64_t>(src);
            t.i0.push_back(i0);
            t.i1.push_back(std::min(i0 + 1, in - 1));
            t.w1.push_back(src - i0);
            t.w0.push_back(1 - (src - i0));
        } else {
            const float scale = static_cast<float>(in) / static_cast<float>(out);
            const auto i0 = std::min(static_cast<std::int64_t>(std::floor(dst * scale)), in - 1);
            t.i0.push_back(i0);
            t.i1.push_back(i0);
            t.w0.push_back(1);
            t.w1.push_back(0);
        }
    }
    t.first.assign(in, 0);
    t.last.assign(in, -1);
    for (std::int64_t o = 0; o < out; ++o)
        for (std::int64_t src : {t.i0[o], t.i1[o]}) {
            if (t.last[src] < 0) t.first[src] = o;
            t.last[src] = o;
        }
    return t;
}

}  // namespace

TEST_CASE("kernels: bilinear and nearest resizing, forward and the gathered backward") {
    for (bool bilinear : {true, false}) {
        CAPTURE(bilinear);
        Tensor x = random_values({2, 3, 4, 5}, 111, DType::f64);
        x.set_requires_grad(true);
        InterpolateOptions options;
        options.size = std::array<std::int64_t, 2>{7, 3};
        options.mode = bilinear ? "bilinear" : "nearest";
        options.align_corners = bilinear;
        Tensor y = interpolate(x, options);
        Tensor dy = random_values(y.shape(), 112, DType::f64);
        y.backward(dy);
        const AxisTables rows = axis_tables(4, 7, bilinear), cols = axis_tables(5, 3, bilinear);
        const kernels::ResizeTables<double> tables{
            rows.i0.data(), rows.i1.data(), rows.w0.data(), rows.w1.data(),
            cols.i0.data(), cols.i1.data(), cols.w0.data(), cols.w1.data(),
            rows.first.data(), rows.last.data(), cols.first.data(), cols.last.data()};
        const kernels::ResizeShape shape{4, 5, 7, 3, bilinear};
        Tensor ky = Tensor::empty(y.shape(), DType::f64), kdx = Tensor::empty(x.shape(), DType::f64);
        kernels::for_each_cpu(ky.numel(), kernels::ResizeForward<double>{
                                              x.detach().data<double>(), ky.data<double>(), shape, tables});
        kernels::for_each_cpu(kdx.numel(), kernels::ResizeBackward<double>{
                                               dy.data<double>(), kdx.data<double>(), shape, tables});
        CHECK(max_abs_diff(ky, y.detach()) < 1e-12);
        CHECK(max_abs_diff(kdx, x.grad()) < 1e-12);
    }
}

TEST_CASE("kernels: the GPU's way to rfft2 and irfft2 (complex FFTs around padding kernels) gives the ops' results") {
    // the GPU runs irfft2 as re(IDFT(padded, mirrored columns doubled)) * scale, and rfft2's
    // adjoint the same way undoubled; here the complex FFT is the CPU's, the rest the kernels
    for (const auto& [H, W] : {std::pair<std::int64_t, std::int64_t>{7, 6}, {5, 13}, {4, 1}}) {
        CAPTURE(H);
        CAPTURE(W);
        const std::int64_t K = W / 2 + 1, B = 3;
        const kernels::HalfSpectrum s{H, K, W};
        Tensor z = random_values({B, H, K, 2}, 121, DType::f64);
        for (bool mirrored : {true, false}) {
            CAPTURE(mirrored);
            Tensor full = Tensor::empty({B, H, W, 2}, DType::f64);
            kernels::for_each_cpu(full.numel(), kernels::PadHalfSpectrum<double>{
                                                    z.data<double>(), full.data<double>(), s, mirrored});
            cpu::fft2_complex(full.data<double>(), cpu::Fft2Size{B, H, W}, /*inverse=*/true, 1.0);
            Tensor x = Tensor::empty({B, H, W}, DType::f64);
            const double scale = 1.0 / static_cast<double>(H * W);
            kernels::for_each_cpu(x.numel(), kernels::RealPart<double>{full.data<double>(), x.data<double>(), scale});
            Tensor expected;
            if (mirrored) {
                expected = irfft2(z, W, FftNorm::backward);
            } else {  // rfft2's adjoint, with rfft2's forward scale (norm = forward: 1 / (H W))
                Tensor signal = random_values({B, H, W}, 122, DType::f64);
                signal.set_requires_grad(true);
                rfft2(signal, FftNorm::forward).backward(z);
                expected = signal.grad();
            }
            CHECK(max_abs_diff(x, expected) < 1e-12);
        }
        // rfft2 = the first K columns of the complex DFT, scaled (and, for irfft2's adjoint,
        // the mirrored columns doubled)
        Tensor signal = random_values({B, H, W}, 123, DType::f64);
        Tensor complex = stack({signal, zeros({B, H, W}, DType::f64)}, -1);
        Tensor spectrum = fft2(complex, FftNorm::ortho);
        Tensor half = narrow(spectrum, 2, 0, K).clone();
        const double ortho = 1.0 / std::sqrt(static_cast<double>(H * W));
        Tensor unscaled = narrow(fft2(complex, FftNorm::backward), 2, 0, K).clone();
        kernels::for_each_cpu(unscaled.numel(), kernels::HalfSpectrumScale<double>{
                                                    unscaled.data<double>(), s, ortho, false});
        CHECK(max_abs_diff(unscaled, rfft2(signal, FftNorm::ortho)) < 1e-12);
        CHECK(max_abs_diff(half, rfft2(signal, FftNorm::ortho)) < 1e-12);
    }
}
