// tests/test_layers.cpp: Module bookkeeping (names, state dicts, train/eval) and the core layers
// (Linear, Conv2d, BatchNorm2d, LayerNorm, Dropout, DropPath, Activation, Sequential, init).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/engine.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/sequential.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::max_abs_diff;

namespace {
// A two-level module, shaped like a tiny CNN head, to check dotted names.
struct TinyNet : UnaryModule {
    std::shared_ptr<Sequential> features;
    std::shared_ptr<Linear> fc;
    TinyNet() : UnaryModule("TinyNet") {
        features = register_module("features", std::make_shared<Sequential>());
        features->push_back(std::make_shared<Conv2d>(Conv2dSpec{.in_channels = 3, .out_channels = 4, .kernel = 3, .padding = 1, .bias = false}));
        features->push_back(std::make_shared<BatchNorm2d>(4));
        features->push_back(std::make_shared<Activation>("relu"));
        fc = register_module("fc", std::make_shared<Linear>(4, 2));
    }
    Tensor forward(const Tensor& x) override {
        Tensor h = features->forward(x);
        return fc->forward(mean(h, {2, 3}));
    }
};

std::vector<std::string> names(const NamedTensors& list) {
    std::vector<std::string> out;
    for (auto& [n, _] : list) out.push_back(n);
    return out;
}

std::map<std::string, Tensor> as_map(const NamedTensors& list) {
    std::map<std::string, Tensor> out;
    for (auto& [n, t] : list) out[n] = t.clone().detach();
    return out;
}
}  // namespace

TEST_CASE("module: dotted names in PyTorch's order, parameters vs buffers, counts") {
    TinyNet net;
    CHECK(names(net.named_parameters()) ==
          std::vector<std::string>{"features.0.weight", "features.1.weight", "features.1.bias",
                                   "fc.weight", "fc.bias"});
    CHECK(names(net.named_buffers()) ==
          std::vector<std::string>{"features.1.running_mean", "features.1.running_var"});
    CHECK(net.state_dict().size() == 7);
    CHECK(net.num_parameters() == 3 * 4 * 9 + 4 + 4 + 4 * 2 + 2);
    for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
}

TEST_CASE("module: train/eval propagates, and BatchNorm uses running stats in eval") {
    TinyNet net;
    Tensor x = randn({2, 3, 5, 5});
    net.eval();
    CHECK_FALSE(net.features->is_training());
    Tensor before = net.features->named_buffers()[0].second.clone();
    net.forward(x);
    CHECK(max_abs_diff(before, net.features->named_buffers()[0].second) == 0);  // untouched in eval
    net.train();
    CHECK((*net.features)[1]->is_training());
    net.forward(x);
    CHECK(max_abs_diff(before, net.features->named_buffers()[0].second) > 0);  // updated in train
}

TEST_CASE("module: load_state_dict copies values in place and checks names and shapes") {
    TinyNet a, b;
    Tensor fc_weight = b.fc->weight;  // the handle an optimizer would hold
    auto state = as_map(a.state_dict());
    state["features.1.num_batches_tracked"] = scalar_tensor(3, DType::i64);  // PyTorch's extra
    b.load_state_dict(state);
    CHECK(b.fc->weight.same(fc_weight));
    CHECK(max_abs_diff(b.fc->weight, a.fc->weight) == 0);
    Tensor x = randn({1, 3, 4, 4});
    a.eval();
    b.eval();
    CHECK(max_abs_diff(a.forward(x), b.forward(x)) == 0);

    auto missing = state;
    missing.erase("fc.bias");
    CHECK_THROWS_WITH_AS(b.load_state_dict(missing), doctest::Contains("missing 1 tensor(s): 'fc.bias'"), Error);
    b.load_state_dict(missing, /*strict=*/false);

    auto extra = state;
    extra["fc.scale"] = ones({2});
    CHECK_THROWS_WITH_AS(b.load_state_dict(extra), doctest::Contains("unexpected tensor 'fc.scale'"), Error);

    auto wrong = state;
    wrong["fc.weight"] = zeros({2, 5});
    Tensor kept = b.fc->weight.clone();
    CHECK_THROWS_WITH_AS(b.load_state_dict(wrong), doctest::Contains("'fc.weight' has shape (2, 5) in the file but (2, 4)"), Error);
    CHECK(max_abs_diff(kept, b.fc->weight) == 0);  // a failed load changes nothing
}

TEST_CASE("layers: Linear and Conv2d compute the ops with their parameters, and train") {
    manual_seed(3);
    Linear fc(5, 3);
    Tensor x = randn({4, 5});
    CHECK(max_abs_diff(fc(x), matmul(x, transpose(fc.weight, 0, 1)) + fc.bias) < 1e-6);
    sum(fc(x)).backward();
    CHECK(fc.weight.grad().shape() == Shape{3, 5});
    CHECK(fc.bias.grad().to_vector<float>() == std::vector<float>(3, 4.0f));

    Conv2d conv(Conv2dSpec{.in_channels = 4, .out_channels = 6, .kernel = 3, .stride = 2, .padding = 1, .groups = 2});
    CHECK(conv.weight.shape() == Shape{6, 2, 3, 3});
    CHECK(conv(randn({2, 4, 7, 7})).shape() == Shape{2, 6, 4, 4});
    CHECK_THROWS_WITH_AS(Conv2d(Conv2dSpec{.in_channels = 3, .out_channels = 6, .groups = 2}), doctest::Contains("groups (2) must divide"), Error);
}

TEST_CASE("init: PyTorch's default bounds and the kaiming / truncated normal spreads") {
    manual_seed(0);
    Linear fc(400, 300);
    std::vector<float> w = fc.weight.to_vector<float>();
    float bound = 1.0f / 20.0f, most = 0;
    for (float v : w) most = std::max(most, std::abs(v));
    CHECK(most <= bound);
    CHECK(most > 0.99f * bound);  // U(-b, b) over 120k draws reaches close to b

    Tensor k = Tensor::empty({256, 128, 3, 3});
    init::kaiming_normal_relu(k, /*use_fan_out=*/true);
    double expected_std = std::sqrt(2.0 / (256 * 9));
    Tensor centered = k - mean(k);
    CHECK(std::sqrt(mean(centered * centered).item()) == doctest::Approx(expected_std).epsilon(0.01));

    Tensor t = Tensor::empty({100000}, DType::f64);
    init::trunc_normal(t, 0.0, 1.0, -2.0, 2.0);
    std::vector<double> v = t.to_vector<double>();
    double lo = 0, hi = 0, sq = 0;
    for (double x : v) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        sq += x * x;
    }
    CHECK(lo >= -2.0);
    CHECK(hi <= 2.0);
    // the variance of a standard normal truncated to [-2, 2] is 0.7737
    CHECK(sq / v.size() == doctest::Approx(0.7737).epsilon(0.02));
}

TEST_CASE("layers: LayerNorm, Dropout, DropPath and Activation") {
    LayerNorm ln(6);
    Tensor x = randn({2, 3, 6});
    Tensor y = ln(x);
    CHECK(std::abs(mean(y).item()) < 1e-5);

    Dropout drop(0.5);
    Tensor ones_in = ones({1000});
    CHECK(max_abs_diff(drop(ones_in), ones_in) > 0);
    drop.eval();
    CHECK(drop(ones_in).same(ones_in));

    DropPath path(0.5);
    Tensor samples = ones({64, 3, 2});
    std::vector<float> out = path(samples).to_vector<float>();
    for (int b = 0; b < 64; ++b)  // a whole sample is either dropped or scaled by 2
        for (int i = 1; i < 6; ++i) CHECK(out[b * 6 + i] == out[b * 6]);
    path.eval();
    CHECK(path(samples).same(samples));

    CHECK_THROWS_WITH_AS(Activation("swish"), doctest::Contains("unknown activation 'swish'; valid: relu"), Error);
    CHECK(max_abs_diff(Activation("hardswish")(x), hardswish(x)) == 0);
}
