// tests/test_matmul.cpp: the CPU gemm (every micro-kernel this CPU has, all transpose cases, odd
// sizes, alpha/beta, thread-count independence) and the matmul / linear ops built on it
// (torch.matmul shapes, broadcasting, gradients, error messages).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "engine/cpu/gemm.h"
#include "engine/engine.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

// A row-major rows x cols matrix stored with leading dimension ld >= cols (the gap is filled
// with a sentinel that must never leak into a result).
template <class T>
std::vector<T> random_matrix(std::int64_t rows, std::int64_t cols, std::int64_t ld,
                             std::mt19937& rng) {
    std::uniform_real_distribution<double> dist(-1, 1);
    std::vector<T> m(static_cast<std::size_t>(std::max<std::int64_t>(rows * ld, 1)), T(1e30));
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j) m[i * ld + j] = static_cast<T>(dist(rng));
    return m;
}

struct GemmCase {
    bool ta, tb;
    std::int64_t M, N, K;
    double alpha, beta;
};

// Runs one gemm call against a triple loop in double precision. The tolerance is scaled by the
// sum of |terms| of each element, which bounds the rounding error of any summation order.
template <class T>
void check_gemm_case(const GemmCase& c, std::mt19937& rng) {
    CAPTURE(c.ta);
    CAPTURE(c.tb);
    CAPTURE(c.M);
    CAPTURE(c.N);
    CAPTURE(c.K);
    CAPTURE(c.alpha);
    CAPTURE(c.beta);
    // op(A) is M x K: stored M x K, or K x M when transposed; leading dims padded by 3
    const std::int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K, lda = a_cols + 3;
    const std::int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N, ldb = b_cols + 1;
    const std::int64_t ldc = c.N + 2;
    std::vector<T> A = random_matrix<T>(a_rows, a_cols, lda, rng);
    std::vector<T> B = random_matrix<T>(b_rows, b_cols, ldb, rng);
    std::vector<T> C = random_matrix<T>(c.M, c.N, ldc, rng);
    if (c.beta == 0)  // beta == 0 must not read C: NaN there must not leak out
        for (std::int64_t i = 0; i < c.M; ++i)
            for (std::int64_t j = 0; j < c.N; ++j)
                C[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
    const std::vector<T> C0 = C;
    cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, static_cast<T>(c.alpha), A.data(), lda, B.data(), ldb,
              static_cast<T>(c.beta), C.data(), ldc);

    const double eps = std::numeric_limits<T>::epsilon();
    int bad = 0;
    for (std::int64_t i = 0; i < c.M; ++i) {
        for (std::int64_t j = 0; j < c.N; ++j) {
            double sum = 0, magnitude = 0;
            for (std::int64_t k = 0; k < c.K; ++k) {
                double a = c.ta ? A[k * lda + i] : A[i * lda + k];
                double b = c.tb ? B[j * ldb + k] : B[k * ldb + j];
                sum += a * b;
                magnitude += std::abs(a * b);
            }
            double expected = c.alpha * sum, scale = std::abs(c.alpha) * magnitude;
            if (c.beta != 0) {
                expected += c.beta * C0[i * ldc + j];
                scale += std::abs(c.beta * C0[i * ldc + j]);
            }
            const double got = C[i * ldc + j];
            if (!(std::abs(got - expected) <= 4 * (c.K + 2) * eps * scale + 1e-300)) ++bad;
        }
        // the padding between rows of C is untouched
        for (std::int64_t j = c.N; j < ldc && i + 1 < c.M; ++j)
            if (std::memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(T)) != 0) ++bad;
    }
    CHECK(bad == 0);
}

template <class T>
void check_gemm_all_cases() {
    std::mt19937 rng(42);
    const std::vector<std::array<std::int64_t, 3>> sizes = {
        {1, 1, 1},   {7, 33, 100}, {100, 7, 33}, {33, 100, 7}, {1, 300, 17},
        {300, 1, 17}, {13, 17, 1}, {19, 23, 600},  // K spans 3 depth slices
        {5, 4200, 9},                             // N spans 2 column panels
        {150, 40, 30},                            // M spans 2 row blocks
    };
    const std::vector<std::pair<double, double>> scalings = {{1, 0}, {-0.5, 2}, {1.5, 1}};
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (const auto& s : sizes)
                for (const auto& [alpha, beta] : scalings)
                    check_gemm_case<T>({ta, tb, s[0], s[1], s[2], alpha, beta}, rng);
    // alpha == 0 and K == 0 reduce to C = beta C, without reading A and B
    check_gemm_case<T>({false, false, 9, 11, 5, 0.0, 3.0}, rng);
    check_gemm_case<T>({false, true, 9, 11, 0, 1.0, 0.0}, rng);
    check_gemm_case<T>({true, false, 9, 11, 0, 2.0, -1.0}, rng);
}

// Restores the gemm kernel and thread count a test changed.
struct GemmSettingsGuard {
    int threads = num_threads();
    std::string kernel = cpu::gemm_kernel_name();
    ~GemmSettingsGuard() {
        set_num_threads(threads);
        cpu::set_gemm_kernel(kernel);
    }
};

}  // namespace

TEST_CASE("gemm: every micro-kernel matches a triple loop (transposes, odd sizes, alpha, beta)") {
    GemmSettingsGuard restore;
    for (const std::string& kernel : cpu::gemm_kernels()) {
        CAPTURE(kernel);
        cpu::set_gemm_kernel(kernel);
        check_gemm_all_cases<float>();
        check_gemm_all_cases<double>();
    }
}

TEST_CASE("gemm: bitwise identical with 1 and 2 threads") {
    GemmSettingsGuard restore;
    std::mt19937 rng(7);
    const std::int64_t M = 301, N = 517, K = 600;
    for (bool ta : {false, true}) {
        std::vector<float> A = random_matrix<float>(M, K, K, rng);  // ta: read as K x M, same data
        std::vector<float> B = random_matrix<float>(K, N, N, rng);
        std::vector<float> C1(M * N), C2(M * N);
        set_num_threads(1);
        cpu::gemm(ta, false, M, N, K, 1.0f, A.data(), ta ? M : K, B.data(), N, 0.0f, C1.data(), N);
        set_num_threads(2);
        cpu::gemm(ta, false, M, N, K, 1.0f, A.data(), ta ? M : K, B.data(), N, 0.0f, C2.data(), N);
        CHECK(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("gemm: batched products sum the items that share an output, in order") {
    std::mt19937 rng(3);
    const std::int64_t M = 5, N = 6, K = 7;
    std::vector<double> A = random_matrix<double>(3 * M, K, K, rng);  // three M x K matrices
    std::vector<double> B = random_matrix<double>(K, N, N, rng);      // one shared K x N
    std::vector<double> C(2 * M * N, std::numeric_limits<double>::quiet_NaN());
    // items 0 and 2 write output 0, item 1 writes output 1; all share B
    std::vector<std::int64_t> a_off{0, M * K, 2 * M * K}, b_off{0, 0, 0}, c_off{0, M * N, 0};
    cpu::GemmBatch<double> g;
    g.M = M;
    g.N = N;
    g.K = K;
    g.A = A.data();
    g.lda = K;
    g.B = B.data();
    g.ldb = N;
    g.C = C.data();
    g.ldc = N;
    g.count = 3;
    g.a_offset = a_off.data();
    g.b_offset = b_off.data();
    g.c_offset = c_off.data();
    cpu::gemm_batched(g);
    for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j) {
            double out0 = 0, out1 = 0;
            for (std::int64_t k = 0; k < K; ++k) {
                out0 += (A[i * K + k] + A[(2 * M + i) * K + k]) * B[k * N + j];
                out1 += A[(M + i) * K + k] * B[k * N + j];
            }
            CHECK(C[i * N + j] == doctest::Approx(out0).epsilon(1e-12));
            CHECK(C[M * N + i * N + j] == doctest::Approx(out1).epsilon(1e-12));
        }
}

TEST_CASE("gemm: choosing an unknown micro-kernel is an error that lists the known ones") {
    CHECK_THROWS_WITH_AS(cpu::set_gemm_kernel("sse9"), doctest::Contains("portable"), Error);
}

// ---- matmul ----

namespace {

// torch.matmul by definition: promote 1-D operands, broadcast the batch dims, multiply each pair.
Tensor matmul_reference(const Tensor& a, const Tensor& b) {
    Shape as = a.dim() == 1 ? Shape{1, a.size(0)} : a.shape();
    Shape bs = b.dim() == 1 ? Shape{b.size(0), 1} : b.shape();
    const std::int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
    Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    Shape batch = broadcast_shapes(a_batch, b_batch, "reference");
    // the batch index of each operand, by explicit index arithmetic
    auto source = [&](const Shape& own, std::int64_t n) {
        std::vector<std::int64_t> position(batch.size());  // n as a multi-index, last dim fastest
        for (std::size_t d = batch.size(); d-- > 0;) {
            position[d] = n % batch[d];
            n /= batch[d];
        }
        const std::size_t lead = batch.size() - own.size();
        std::int64_t index = 0;
        for (std::size_t d = 0; d < own.size(); ++d)
            index = index * own[d] + (own[d] == 1 ? 0 : position[lead + d]);
        return index;
    };
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    const std::int64_t items = shape_numel(batch);
    std::vector<double> out(items * M * N, 0.0);
    for (std::int64_t n = 0; n < items; ++n) {
        const double* pa = av.data() + source(a_batch, n) * M * K;
        const double* pb = bv.data() + source(b_batch, n) * K * N;
        for (std::int64_t i = 0; i < M; ++i)
            for (std::int64_t j = 0; j < N; ++j)
                for (std::int64_t k = 0; k < K; ++k)
                    out[(n * M + i) * N + j] += pa[i * K + k] * pb[k * N + j];
    }
    Shape out_shape = batch;
    if (a.dim() > 1) out_shape.push_back(M);
    if (b.dim() > 1) out_shape.push_back(N);
    return from_vector(out, out_shape);
}

const std::vector<std::pair<Shape, Shape>> kMatmulShapes = {
    {{5}, {5}},                 // dot product -> ()
    {{4}, {4, 3}},              // vector @ matrix -> (3)
    {{3, 4}, {4}},              // matrix @ vector -> (3)
    {{3, 4}, {4, 5}},           // plain matrices
    {{2, 3, 4}, {4, 5}},        // batched @ matrix (rows folded into one product)
    {{4}, {2, 4, 5}},           // vector @ batched -> (2, 5)
    {{2, 3, 4}, {4}},           // batched @ vector -> (2, 3)
    {{3, 4}, {2, 4, 5}},        // matrix @ batched
    {{2, 1, 3, 4}, {5, 4, 6}},  // batch dims broadcast both ways -> (2, 5, 3, 6)
    {{1, 1, 4}, {3, 4, 2}},     // size-1 dims everywhere
    {{3, 4}, {1, 1, 4, 2}},     // b is one matrix with leading 1s -> (1, 1, 3, 2)
    {{2, 1, 3, 4}, {1, 4, 5}},  // b is one matrix, a has a size-1 batch dim
    {{2, 3, 1}, {2, 1, 3}},     // K = 1: outer products
};

}  // namespace

TEST_CASE("matmul: torch.matmul shapes and values, f64 and f32") {
    std::uint64_t seed = 100;
    for (const auto& [as, bs] : kMatmulShapes) {
        CAPTURE(shape_str(as));
        CAPTURE(shape_str(bs));
        Tensor a = leaf(as, seed++).detach(), b = leaf(bs, seed++).detach();
        Tensor expected = matmul_reference(a, b);
        Tensor got = matmul(a, b);
        REQUIRE(got.shape() == expected.shape());
        CHECK(max_abs_diff(got, expected) < 1e-12);
        Tensor got32 = matmul(a.to(DType::f32), b.to(DType::f32));
        CHECK(got32.dtype() == DType::f32);
        CHECK(max_abs_diff(got32, expected) < 1e-4);
    }
    CHECK(matmul(zeros({5}), zeros({5})).shape() == Shape{});
    CHECK(matmul(zeros({2, 1, 3, 4}), zeros({5, 4, 6})).shape() == Shape{2, 5, 3, 6});
}

TEST_CASE("matmul: empty dims give empty or zero results, and zero gradients") {
    CHECK(matmul(ones({0, 3}), ones({3, 4})).shape() == Shape{0, 4});
    Tensor z = matmul(ones({2, 0}), ones({0, 3}));  // K = 0: a sum of nothing
    CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
    Tensor a = leaf({1, 2, 3}, 1), b = leaf({0, 3, 2}, 2);
    Tensor y = matmul(a, b);
    CHECK(y.shape() == Shape{0, 2, 2});
    sum(y).backward();
    CHECK(a.grad().to_vector<double>() == std::vector<double>(6, 0.0));
}

TEST_CASE("matmul: gradients (dA = dC B^T, dB = A^T dC, summed over broadcast batch dims)") {
    std::uint64_t seed = 200;
    for (const auto& [as, bs] : kMatmulShapes) {
        CAPTURE(shape_str(as));
        CAPTURE(shape_str(bs));
        Tensor a = leaf(as, seed++), b = leaf(bs, seed++);
        CHECK(gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                        {a, b}));
    }
    // only one operand requires a gradient
    Tensor a = leaf({3, 4}, 1), b = leaf({4, 2}, 2).detach();
    CHECK(gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}));
}

TEST_CASE("matmul: error messages name the op and both shapes") {
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({4, 5})),
                         doctest::Contains("matmul: shapes (2, 3) and (4, 5) cannot be multiplied"),
                         Error);
    CHECK_THROWS_WITH_AS(matmul(zeros({3}), zeros({4})),
                         doctest::Contains("matmul: shapes (3,) and (4,)"), Error);
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                         doctest::Contains("matmul: the batch dims of shapes (2, 3, 4) and (3, 4, 5)"),
                         Error);
    CHECK_THROWS_WITH_AS(matmul(scalar_tensor(1), zeros({3})),
                         doctest::Contains("matmul: both arguments need at least 1 dim"), Error);
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 2}), zeros({2, 2}, DType::f64)),
                         doctest::Contains("matmul: dtype mismatch"), Error);
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 2}, DType::i64), zeros({2, 2}, DType::i64)),
                         doctest::Contains("matmul: expected floating-point"), Error);
    CHECK_THROWS_WITH_AS(matmul(Tensor(), zeros({2})),
                         doctest::Contains("matmul: undefined tensor argument"), Error);
}

// ---- linear ----

namespace {
Tensor linear_reference(const Tensor& x, const Tensor& w, const Tensor& bias) {
    const std::int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
    std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), y(rows * out);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t o = 0; o < out; ++o) {
            double s = bias.defined() ? bias.to_vector<double>()[o] : 0.0;
            for (std::int64_t i = 0; i < in; ++i) s += xv[r * in + i] * wv[o * in + i];
            y[r * out + o] = s;
        }
    Shape shape = x.shape();
    shape.back() = out;
    return from_vector(y, shape);
}
}  // namespace

TEST_CASE("linear: values and gradients for 1-D, 2-D and 3-D inputs, with and without bias") {
    const std::vector<Shape> inputs = {{5}, {3, 5}, {2, 3, 5}, {1, 1, 5}};
    std::uint64_t seed = 300;
    for (const Shape& xs : inputs) {
        for (bool with_bias : {true, false}) {
            CAPTURE(shape_str(xs));
            CAPTURE(with_bias);
            Tensor x = leaf(xs, seed++), w = leaf({4, 5}, seed++);
            Tensor b = with_bias ? leaf({4}, seed++) : Tensor();
            Tensor y = linear(x, w, b);
            CHECK(max_abs_diff(y, linear_reference(x, w, b)) < 1e-12);
            Tensor y32 = linear(x.detach().to(DType::f32), w.detach().to(DType::f32),
                                with_bias ? b.detach().to(DType::f32) : Tensor());
            CHECK(max_abs_diff(y32, y.detach()) < 1e-4);
            if (with_bias)
                CHECK(gradcheck([](const std::vector<Tensor>& in) {
                    return linear(in[0], in[1], in[2]);
                }, {x, w, b}));
            else
                CHECK(gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); },
                                {x, w}));
        }
    }
}

TEST_CASE("linear: error messages name the shapes") {
    CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 5})),
                         doctest::Contains("linear: input of shape (2, 3) and weight of shape (4, 5)"),
                         Error);
    CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({3})),
                         doctest::Contains("linear: expected a weight of shape (out_features, "
                                           "in_features), got (3,)"),
                         Error);
    CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})),
                         doctest::Contains("linear: expected a bias of shape (4,)"), Error);
    CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, DType::f64)),
                         doctest::Contains("linear: dtype mismatch, the input is float32 and the "
                                           "bias is float64"),
                         Error);
    CHECK_THROWS_WITH_AS(linear(scalar_tensor(1), zeros({4, 1})),
                         doctest::Contains("linear: the input needs at least 1 dim, got shape ()"),
                         Error);
}
