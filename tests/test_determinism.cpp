// tests/test_determinism.cpp: the same computation with 1 and with 2 threads gives the same bits.
// Random numbers are counter-based and reductions use fixed chunks combined in a fixed order, so
// the thread count must not change a single bit of the forward values or the gradients.
#include <doctest/doctest.h>

#include <cstring>

#include "engine/engine.h"

using namespace retort;

namespace {
struct Outcome {
    std::vector<float> values, grad;
};

// A small computation that exercises random draws, broadcasting, activations, long reductions
// and the backward pass.
Outcome run_workload() {
    Generator gen(2024);
    Tensor x = randn({257, 1031}, DType::f32, &gen).set_requires_grad();
    Tensor bias = randn({1031}, DType::f32, &gen);
    Tensor h = gelu(x * 1.5 + bias);
    Tensor per_column = sum(h * h, {0});                 // 257-long reductions
    Tensor total = sum(exp(per_column * -0.001));        // one long reduction
    // a small convolutional network: conv (weight gradients summed over a batch of 20 in
    // partial runs), batch norm, relu, pooling, a linear layer, softmax cross-entropy
    Tensor images = randn({20, 3, 12, 12}, DType::f32, &gen);
    Tensor kernel = (randn({8, 3, 3, 3}, DType::f32, &gen) * 0.2).detach().set_requires_grad();
    Tensor fc = (randn({5, 8}, DType::f32, &gen) * 0.3).detach().set_requires_grad();
    Tensor labels = randint(0, 5, {20}, DType::i64, &gen);
    Conv2dOptions conv;
    conv.padding = {1, 1};
    Tensor features = relu(batch_norm(conv2d(images, kernel, Tensor(), conv), Tensor(), Tensor(),
                                      Tensor(), Tensor(), true));
    Tensor pooled = adaptive_avg_pool2d(features, {1, 1}).flatten(1);
    Tensor loss = total + mean(tanh(h)) + cross_entropy(matmul(pooled, transpose(fc, 0, 1)), labels);
    loss.backward();
    Outcome out;
    out.values = per_column.to_vector<float>();
    out.values.push_back(loss.item<float>());
    out.grad = x.grad().to_vector<float>();
    for (const Tensor& p : {kernel, fc})
        for (float g : p.grad().to_vector<float>()) out.grad.push_back(g);
    return out;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("determinism: 1 thread and 2 threads give identical bits") {
    const int before = num_threads();
    set_num_threads(1);
    Outcome one = run_workload();
    set_num_threads(2);
    Outcome two = run_workload();
    set_num_threads(before);
    CHECK(bitwise_equal(one.values, two.values));
    CHECK(bitwise_equal(one.grad, two.grad));
}
