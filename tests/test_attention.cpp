// tests/test_attention.cpp: the fused attention op (engine/ops/attention.h, its kernels in
// engine/kernels/attention.h) against softmax(scale q k^T) v composed from matmul and softmax:
// values and gradients in float64 to round-off, finite differences, float32 at ViT sizes, extreme
// scores, the same bits on 1 and 2 threads, and a ViT whose layers take the fused path.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/random.h"
#include "gradcheck.h"
#include "models/registry.h"

using namespace retort;

namespace {

Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    const Tensor s = mul(matmul(q, transpose(k, -2, -1)), scalar_tensor(scale, q.dtype()));
    return matmul(softmax(s, -1), v);
}

double max_relative(const Tensor& a, const Tensor& b) {
    const auto x = a.to_vector<double>(), y = b.to_vector<double>();
    REQUIRE(x.size() == y.size());
    double diff = 0, scale = 1e-300;
    for (std::size_t i = 0; i < x.size(); ++i) {
        diff = std::max(diff, std::abs(x[i] - y[i]));
        scale = std::max(scale, std::abs(y[i]));
    }
    return diff / scale;
}

// Forward and the three gradients of both paths, for one upstream gradient.
struct Both {
    Tensor out_fused, out_ref;
    std::vector<Tensor> grad_fused, grad_ref;
};
Both run_both(const Shape& qs, const Shape& ks, DType dtype, double scale, double magnitude, std::uint64_t seed) {
    Generator gen(seed);
    auto make = [&](const Shape& s) {
        return mul(randn(s, dtype, &gen), scalar_tensor(magnitude, dtype)).set_requires_grad(true);
    };
    Tensor q = make(qs), k = make(ks), v = make(ks);
    Both r;
    r.out_fused = scaled_dot_product_attention(q, k, v, scale);
    const Tensor up = randn(r.out_fused.shape(), dtype, &gen);
    r.out_fused.backward(up);
    for (Tensor* t : {&q, &k, &v}) {
        r.grad_fused.push_back(t->grad());
        t->zero_grad();
    }
    r.out_ref = composed(q, k, v, scale);
    r.out_ref.backward(up);
    for (Tensor* t : {&q, &k, &v}) r.grad_ref.push_back(t->grad());
    return r;
}

TEST_CASE("attention op: fused equals matmul + softmax + matmul in float64, forward and backward") {
    // leading dims (2, 3), 5 queries over 7 keys, D = 4; and a single head of 1 query over 1 key
    for (auto [qs, ks] : {std::pair<Shape, Shape>{{2, 3, 5, 4}, {2, 3, 7, 4}}, {{1, 1, 4}, {1, 1, 4}},
                          {{4, 6, 8}, {4, 6, 8}}}) {
        CAPTURE(shape_str(qs));
        const Both r = run_both(qs, ks, DType::f64, 0.37, 1.0, 5);
        CHECK(max_relative(r.out_fused, r.out_ref) < 1e-13);
        for (int i = 0; i < 3; ++i) CHECK(max_relative(r.grad_fused[i], r.grad_ref[i]) < 1e-12);
    }
}

TEST_CASE("attention op: gradcheck in float64") {
    Generator gen(8);
    const Tensor q = randn({2, 3, 4}, DType::f64, &gen).set_requires_grad(true);
    const Tensor k = randn({2, 5, 4}, DType::f64, &gen).set_requires_grad(true);
    const Tensor v = randn({2, 5, 4}, DType::f64, &gen).set_requires_grad(true);
    CHECK(retort::testing::gradcheck(
        [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], 0.5); },
        {q, k, v}));
}

TEST_CASE("attention op: float32 at ViT sizes and with extreme scores stays at float32 round-off") {
    // vit_small: 197 tokens, 6 heads of 64 (one image); scores up to ~1e3 (no overflow: online max)
    const Both vit = run_both({1, 6, 197, 64}, {1, 6, 197, 64}, DType::f32, 0.125, 1.0, 9);
    CHECK(max_relative(vit.out_fused, vit.out_ref) < 2e-5);
    for (int i = 0; i < 3; ++i) CHECK(max_relative(vit.grad_fused[i], vit.grad_ref[i]) < 1e-4);
    const Both extreme = run_both({2, 9, 16}, {2, 11, 16}, DType::f32, 1.0, 8.0, 10);
    for (const Tensor& t : {extreme.out_fused, extreme.grad_fused[0], extreme.grad_fused[1], extreme.grad_fused[2]})
        for (float x : t.to_vector<float>()) REQUIRE(std::isfinite(x));
    CHECK(max_relative(extreme.out_fused, extreme.out_ref) < 1e-4);
}

TEST_CASE("attention op: the same bits on 1 and 2 threads, and bad shapes are refused") {
    Generator gen(12);
    const Tensor q = randn({3, 33, 8}, DType::f32, &gen), k = randn({3, 20, 8}, DType::f32, &gen),
                 v = randn({3, 20, 8}, DType::f32, &gen);
    const int threads = num_threads();
    set_num_threads(1);
    const auto one = scaled_dot_product_attention(q, k, v, 0.3).to_vector<float>();
    set_num_threads(2);
    const auto two = scaled_dot_product_attention(q, k, v, 0.3).to_vector<float>();
    set_num_threads(threads);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);

    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, randn({3, 20, 7}), v, 1.0),
                         doctest::Contains("k and v must have the same shape"), Error);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, randn({3, 20, 7}), randn({3, 20, 7}), 1.0),
                         doctest::Contains("the same last dim D"), Error);
    CHECK_THROWS_WITH_AS(parse_attention_kernel("flash"), doctest::Contains("gemm or fused, got 'flash'"), Error);
}

TEST_CASE("attention op: a ViT on the fused path gives the gemm path's logits and gradients") {
    const std::string spec =
        "vit_tiny_patch16_224:img_size=16,patch_size=4,depth=2,embed_dim=48,num_heads=3,num_classes=5";
    manual_seed(2);
    auto model = create_model(spec);
    Generator gen(3);
    const Tensor x = randn({2, 3, 16, 16}, DType::f32, &gen);
    auto logits_and_grads = [&](AttentionKernel kernel) {
        set_attention_kernel(kernel);
        for (auto& [_, p] : model->named_parameters()) p.zero_grad();
        Tensor logits = model->forward(x);
        sum(mul(logits, logits)).backward();
        std::vector<Tensor> out{logits.detach()};
        for (const auto& [_, p] : model->named_parameters()) out.push_back(p.grad().clone());
        set_attention_kernel(AttentionKernel::gemm);
        return out;
    };
    const auto gemm = logits_and_grads(AttentionKernel::gemm);
    const auto fused = logits_and_grads(AttentionKernel::fused);
    REQUIRE(gemm.size() == fused.size());
    CHECK(max_relative(fused[0], gemm[0]) < 1e-5);
    for (std::size_t i = 1; i < gemm.size(); ++i) CHECK(max_relative(fused[i], gemm[i]) < 1e-3);
    // the attention probabilities (attn.L taps) still come from the gemm path
    set_attention_kernel(AttentionKernel::fused);
    Taps taps({"attn.1"});
    model->eval();
    model->forward(x, &taps);
    set_attention_kernel(AttentionKernel::gemm);
    CHECK(taps.at("attn.1").shape() == Shape{2, 3, 17, 17});
}

}  // namespace
