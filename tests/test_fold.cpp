// tests/test_fold.cpp: the inference path of a frozen teacher (layers/fold.h): BatchNorm folded
// into convolutions and the fused ReLU / ReLU6 give the same eval outputs as the plain network,
// for every model family; training mode is untouched; the fused epilogue refuses to record a
// graph.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "layers/fold.h"
#include "models/registry.h"

using namespace retort;

namespace {

// Overwrites dst's values with src's (same shape, float).
void assign(Tensor dst, const Tensor& src) {
    REQUIRE(dst.shape() == src.shape());
    const Tensor values = src.to(dst.dtype());
    std::copy(values.data<float>(), values.data<float>() + values.numel(), dst.data<float>());
}

// Running statistics and affine parameters that are far from the identity, so that a wrong
// fold cannot pass by accident.
void randomize_norms(Module& model) {
    Generator gen(7);
    for (auto& [name, t] : model.named_buffers()) {
        if (name.ends_with("running_mean")) assign(t, randn(t.shape(), t.dtype(), &gen) * 0.3);
        if (name.ends_with("running_var")) assign(t, uniform(t.shape(), 0.5, 2.0, t.dtype(), &gen));
    }
    for (auto& [name, t] : model.named_parameters())
        if (name.find("bn") != std::string::npos || name.ends_with(".1.weight") ||
            name.ends_with(".1.bias"))
            if (t.dim() == 1) assign(t, uniform(t.shape(), 0.5, 1.5, t.dtype(), &gen));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    return max(abs(a - b)).item<double>();
}

}  // namespace

TEST_CASE("fold: every model family gives the same eval logits and taps with BatchNorm folded") {
    const char* specs[] = {"resnet8:num_classes=7", "resnet8x4:num_classes=5",
                           "resnet18:num_classes=6,stem=cifar", "resnet50:num_classes=4",
                           "wrn_16_1:num_classes=5", "mobilenet_v2:num_classes=5,width_mult=0.25",
                           "mobilenet_v3_small:num_classes=5,width_mult=0.25",
                           "mobilenet_v3_large:num_classes=5,width_mult=0.25"};
    for (const char* spec : specs) {
        CAPTURE(spec);
        manual_seed(3);
        std::shared_ptr<Model> model = create_model(spec);
        randomize_norms(*model);
        model->eval();
        const Tensor x = randn({2, 3, 32, 32});
        NoGradGuard no_grad;
        Taps before_taps(model->tap_names());
        const Tensor before = model->forward(x, &before_taps);
        const int pairs = fold_batch_norms(*model);
        CHECK(pairs > 0);
        Taps after_taps(model->tap_names());
        const Tensor after = model->forward(x, &after_taps);
        const double scale = max(abs(before)).item<double>() + 1e-6;
        CHECK(max_abs_diff(before, after) / scale < 1e-4);
        for (const auto& [name, t] : before_taps.values()) {
            CAPTURE(name);
            const double s = max(abs(t)).item<double>() + 1e-6;
            CHECK(max_abs_diff(t, after_taps.at(name)) / s < 1e-4);
        }
    }
}

TEST_CASE("fold: the folded weights follow the formula and state_dict keeps the originals") {
    manual_seed(1);
    Conv2d conv({.in_channels = 3, .out_channels = 4, .kernel = 3, .padding = 1, .bias = true});
    BatchNorm2d norm(4);
    assign(norm.running_mean, from_vector(std::vector<float>{0.1f, -0.2f, 0.3f, 0.0f}, {4}));
    assign(norm.running_var, from_vector(std::vector<float>{1.5f, 0.5f, 2.0f, 1.0f}, {4}));
    assign(norm.weight, from_vector(std::vector<float>{0.5f, 2.0f, -1.0f, 1.0f}, {4}));
    assign(norm.bias, from_vector(std::vector<float>{0.2f, 0.0f, -0.3f, 1.0f}, {4}));
    const Tensor original = conv.weight.clone();
    conv.eval();
    norm.eval();
    const Tensor x = randn({2, 3, 5, 5});
    NoGradGuard no_grad;
    const Tensor reference = norm.forward(conv.forward(x));
    conv.fold(norm);
    CHECK(norm.folded);
    CHECK(max_abs_diff(conv.weight, original) == 0.0);  // what state_dict saves is unchanged
    CHECK(max_abs_diff(norm.forward(conv.forward(x)), reference) < 1e-5);
    const Tensor fused = conv_norm_act(conv, norm, x, ConvEpilogue::relu);
    CHECK(max_abs_diff(fused, relu(reference)) < 1e-5);
    const Tensor fused6 = conv_norm_act(conv, norm, x * 20.0, ConvEpilogue::relu6);
    CHECK(max(fused6).item<double>() <= 6.0);
}

TEST_CASE("fold: training mode ignores the fold and trains as before") {
    manual_seed(2);
    std::shared_ptr<Model> a = create_model("resnet8:num_classes=3");
    manual_seed(2);
    std::shared_ptr<Model> b = create_model("resnet8:num_classes=3");
    fold_batch_norms(*b);
    a->train();
    b->train();
    const Tensor x = randn({4, 3, 16, 16});
    const Tensor labels = from_vector(std::vector<std::int64_t>{0, 1, 2, 1}, {4});
    const Tensor la = cross_entropy(a->forward(x), labels);
    const Tensor lb = cross_entropy(b->forward(x), labels);
    la.backward();
    lb.backward();
    CHECK(la.item<double>() == lb.item<double>());
    const auto pa = a->named_parameters(), pb = b->named_parameters();
    for (std::size_t i = 0; i < pa.size(); ++i)
        CHECK(max_abs_diff(pa[i].second.grad(), pb[i].second.grad()) == 0.0);
}

TEST_CASE("fold: a fused activation refuses to record a graph") {
    const Tensor x = randn({1, 2, 4, 4});
    Tensor w = randn({3, 2, 3, 3});
    w.set_requires_grad(true);
    Conv2dOptions o;
    o.epilogue = ConvEpilogue::relu;
    CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), o), doctest::Contains("inference only"), Error);
    NoGradGuard no_grad;
    CHECK(max_abs_diff(conv2d(x, w, Tensor(), o), relu(conv2d(x, w))) < 1e-6);
}
