// tests/test_models_mobilenet.cpp: MobileNetV2 and MobileNetV3 (models/mobilenet.cpp,
// layers/mobile_blocks.cpp) against torchvision 0.14 (tests/fixtures/gen_models_mobilenet.py):
//  - parameter counts of the full-size models as torchvision prints them;
//  - saved weights: small models (width_mult 0.25, 10 classes, stem=cifar) with random weights
//    and BatchNorm statistics load strictly from .safetensors and reproduce the logits and every
//    tap of the PyTorch reference on a 2x3x32x32 input;
//  - formula weights: the full-size models filled with the deterministic formula below reproduce
//    the reference logits and pre_logits on a 2x3x64x64 formula input;
//  - tap shapes, the dense_logits relation to the logits, stem=cifar's 4x4 map at 32px;
//  - train mode forward + backward reaches every parameter and updates running statistics;
//  - clear errors for unknown taps, bad specs, bad inputs and bad state dicts.
// Accuracy measure: max |retort - reference| / max |reference| < 1e-4, in float32.
//
// The formula (the same as the generator's): tensors are numbered k = 0, 1, ... in state-dict
// order (parameters, then buffers; module registration order as in PyTorch) and element i (row
// major) gets b = sin(0.7 i + 1.3 k), then
//   >= 2-dim weights  b * sqrt(3 / fan_in), fan_in = numel / size(0)
//   1-dim ...weight   1 + 0.2 b          (BatchNorm gamma)
//   1-dim ...bias     0.1 b
//   running_mean      0.1 b
//   running_var       1 + 0.5 |b|
// and input element i is sin(0.37 i).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/engine.h"
#include "layers/mobile_blocks.h"
#include "models/registry.h"
#include "tests/fixture.h"
#include "tests/model_check.h"

using namespace retort;
using doctest::Contains;

using retort::testing::fixture_path;
using retort::testing::relative_error;

namespace {

const std::vector<std::string> kAllTaps = {"stem",   "layer1",      "layer2",     "layer3",
                                           "layer4", "feature_map", "pre_logits", "dense_logits"};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void fill_with_formula(Module& model) {
    NamedTensors tensors = model.state_dict();
    for (std::size_t k = 0; k < tensors.size(); ++k) {
        auto& [name, t] = tensors[k];
        float* p = t.data<float>();
        const double fan_in = t.dim() >= 2 ? static_cast<double>(t.numel() / t.size(0)) : 1.0;
        for (std::int64_t i = 0; i < t.numel(); ++i) {
            const double b = std::sin(0.7 * static_cast<double>(i) + 1.3 * static_cast<double>(k));
            double v;
            if (ends_with(name, "running_var")) v = 1 + 0.5 * std::abs(b);
            else if (ends_with(name, "running_mean")) v = 0.1 * b;
            else if (t.dim() >= 2) v = b * std::sqrt(3.0 / fan_in);
            else if (ends_with(name, "weight")) v = 1 + 0.2 * b;
            else v = 0.1 * b;
            p[i] = static_cast<float>(v);
        }
    }
}

Tensor formula_input(const Shape& shape) {
    std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
    return from_vector(v, shape);
}

std::string small_spec(const std::string& name) {
    return name + ":width_mult=0.25,num_classes=10,stem=cifar,img_size=32";
}

}  // namespace

TEST_CASE("mobilenet: parameter counts equal torchvision's") {
    // torchvision 0.14, printed by gen_models_mobilenet.py (sum of p.numel() for p in parameters)
    CHECK(create_model("mobilenet_v2")->num_parameters() == 3504872);
    CHECK(create_model("mobilenet_v3_small")->num_parameters() == 2542856);
    CHECK(create_model("mobilenet_v3_large")->num_parameters() == 5483032);
    CHECK(create_model("mobilenet_v2:width_mult=1.4")->num_parameters() == 6108776);
    CHECK(create_model("mobilenet_v3_large:width_mult=0.75")->num_parameters() == 3377576);
    CHECK(create_model(small_spec("mobilenet_v2"))->num_parameters() == 250922);
    CHECK(create_model(small_spec("mobilenet_v3_small"))->num_parameters() == 119842);
    CHECK(create_model(small_spec("mobilenet_v3_large"))->num_parameters() == 299210);
    // in_chans only changes the stem conv (8 filters of 3x3 per input channel at width 0.25)
    CHECK(create_model(small_spec("mobilenet_v2") + ",in_chans=1")->num_parameters() ==
          250922 - 8 * 2 * 9);
    CHECK(create_model(small_spec("mobilenet_v3_small") + ",in_chans=5")->num_parameters() ==
          119842 + 8 * 2 * 9);
    // stem=cifar changes strides only (small_spec has stem=cifar)
    CHECK(create_model("mobilenet_v3_large:width_mult=0.25,num_classes=10")->num_parameters() ==
          299210);
}

TEST_CASE("mobilenet: make_divisible rounds as torchvision's _make_divisible") {
    // values printed by torchvision.models._utils._make_divisible(v, 8)
    CHECK(make_divisible(8.0) == 8);
    CHECK(make_divisible(6.0) == 8);
    CHECK(make_divisible(19.0) == 24);  // rounding down to 16 would lose more than 10%
    CHECK(make_divisible(33.6) == 32);
    CHECK(make_divisible(12.0) == 16);
    CHECK(make_divisible(1792.0) == 1792);
    CHECK(make_divisible(0.1) == 8);
}

TEST_CASE("mobilenet: saved PyTorch weights reproduce logits and taps (small, stem=cifar)") {
    for (const std::string name : {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}) {
        CAPTURE(name);
        auto model = create_model(small_spec(name));
        auto weights = load_safetensors(fixture_path(name + "_w025.safetensors"));
        CHECK(weights.size() == model->state_dict().size());
        model->load_state_dict(weights);  // strict: every name and shape must match
        model->eval();
        auto io = load_safetensors(fixture_path(name + "_w025_io.safetensors"));
        Taps taps(kAllTaps);
        Tensor logits;
        {
            NoGradGuard no_grad;
            logits = model->forward(io.at("input"), &taps);
        }
        const double err = relative_error(logits, io.at("logits"));
        MESSAGE(name, " logits: max rel diff ", err);
        CHECK(err < 1e-4);
        for (const std::string& tap : kAllTaps) {
            CAPTURE(tap);
            const double tap_err = relative_error(taps.at(tap), io.at(tap));
            MESSAGE(name, " ", tap, ": max rel diff ", tap_err);
            CHECK(tap_err < 1e-4);
        }
        CHECK(taps.at("feature_map").size(2) == 4);  // stem=cifar: 32 / 8
        CHECK(taps.at("feature_map").size(3) == 4);
    }
}

TEST_CASE("mobilenet: full-size models with formula weights match torchvision (64x64 input)") {
    testing::Fixture fx("mobilenet_formula.txt");
    for (const std::string name : {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}) {
        CAPTURE(name);
        auto model = create_model(name);
        fill_with_formula(*model);
        model->eval();
        Taps taps({"pre_logits"});
        NoGradGuard no_grad;
        Tensor logits = model->forward(formula_input({2, 3, 64, 64}), &taps);
        const double err = relative_error(logits, fx[name + ".logits"]);
        const double pre_err = relative_error(taps.at("pre_logits"), fx[name + ".pre_logits"]);
        MESSAGE(name, " formula logits: max rel diff ", err, ", pre_logits ", pre_err);
        CHECK(err < 1e-4);
        CHECK(pre_err < 1e-4);
    }
}

TEST_CASE("mobilenet: tap shapes follow the documented stages (stride 2, 4, 8, 16, 32)") {
    struct Expect { std::string name; std::int64_t c1, c2, c3, c4, c_last; };
    const Expect models[] = {{"mobilenet_v2", 24, 32, 96, 320, 1280},
                             {"mobilenet_v3_small", 16, 24, 48, 96, 576},
                             {"mobilenet_v3_large", 24, 40, 112, 160, 960}};
    for (const Expect& m : models) {
        CAPTURE(m.name);
        auto model = create_model(m.name + ":num_classes=7");
        model->eval();
        Taps taps(kAllTaps);
        NoGradGuard no_grad;
        Tensor logits = model->forward(randn({1, 3, 64, 64}), &taps);
        CHECK(logits.shape() == Shape{1, 7});
        CHECK(taps.at("stem").size(2) == 32);
        CHECK(taps.at("layer1").shape() == Shape{1, m.c1, 16, 16});
        CHECK(taps.at("layer2").shape() == Shape{1, m.c2, 8, 8});
        CHECK(taps.at("layer3").shape() == Shape{1, m.c3, 4, 4});
        CHECK(taps.at("layer4").shape() == Shape{1, m.c4, 2, 2});
        CHECK(taps.at("feature_map").shape() == Shape{1, m.c_last, 2, 2});
        CHECK(taps.at("pre_logits").shape() == Shape{1, m.c_last});
        CHECK(taps.at("dense_logits").shape() == Shape{1, 7, 2, 2});
    }
}

TEST_CASE("mobilenet: stem=cifar keeps a 4x4 final map at 32x32 (imagenet: 1x1)") {
    // the strides do not depend on width_mult; a narrow model keeps the test fast
    for (const std::string name : {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}) {
        CAPTURE(name);
        for (const std::string stem : {"cifar", "imagenet"}) {
            auto model = create_model(name + ":width_mult=0.25,num_classes=10,stem=" + stem);
            model->eval();
            Taps taps({"stem", "layer1", "feature_map"});
            NoGradGuard no_grad;
            model->forward(randn({1, 3, 32, 32}), &taps);
            const std::int64_t s = stem == "cifar" ? 32 : 16;
            CHECK(taps.at("stem").size(3) == s);
            CHECK(taps.at("layer1").size(3) == (stem == "cifar" ? 32 : 8));
            CHECK(taps.at("feature_map").size(3) == (stem == "cifar" ? 4 : 1));
        }
    }
}

TEST_CASE("mobilenet: dense_logits averages to the logits for V2, not for V3 (hidden layer)") {
    auto check = [](const std::string& spec, bool mean_is_logits) {
        CAPTURE(spec);
        auto model = create_model(spec);
        model->load_state_dict(load_safetensors(
            fixture_path(parse_model_spec(spec).name + "_w025.safetensors")));
        model->eval();
        Taps taps({"dense_logits"});
        NoGradGuard no_grad;
        Tensor logits = model->forward(randn({2, 3, 32, 32}), &taps);
        const double err = relative_error(mean(taps.at("dense_logits"), {2, 3}), logits);
        if (mean_is_logits) CHECK(err < 1e-5);
        else CHECK(err > 1e-3);
    };
    check(small_spec("mobilenet_v2"), true);
    check(small_spec("mobilenet_v3_small"), false);
    check(small_spec("mobilenet_v3_large"), false);
}

TEST_CASE("mobilenet: a tap costs nothing unless requested, and dense_logits only on request") {
    auto model = create_model(small_spec("mobilenet_v3_small"));
    model->eval();
    Taps taps({"layer2"});
    NoGradGuard no_grad;
    model->forward(randn({1, 3, 32, 32}), &taps);
    CHECK(taps.values().size() == 1);
    CHECK(taps.at("layer2").shape() == Shape{1, 8, 16, 16});
    model->forward(randn({1, 3, 32, 32}));  // no taps at all
}

TEST_CASE("mobilenet: train mode forward and backward reach every parameter") {
    for (const std::string name : {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}) {
        CAPTURE(name);
        manual_seed(3);
        auto model = create_model(small_spec(name));
        model->train();
        Tensor last_buffer_before = model->state_dict().back().second.clone();
        Taps taps({"layer3", "dense_logits"});
        Tensor logits = model->forward(randn({2, 3, 32, 32}), &taps);
        Tensor loss = sum(logits * randn(logits.shape())) + sum(taps.at("layer3")) * 0.01 +
                      sum(taps.at("dense_logits")) * 0.01;
        loss.backward();
        std::int64_t with_grad = 0;
        for (auto& [pname, p] : model->named_parameters()) {
            CAPTURE(pname);
            REQUIRE(p.grad().defined());
            CHECK(p.grad().shape() == p.shape());
            std::vector<float> g = p.grad().to_vector<float>();
            bool finite = true, nonzero = false;
            for (float v : g) {
                finite = finite && std::isfinite(v);
                nonzero = nonzero || v != 0.0f;
            }
            CHECK(finite);
            CHECK(nonzero);
            ++with_grad;
        }
        CHECK(with_grad == static_cast<std::int64_t>(model->parameters().size()));
        // the last buffer is the last BatchNorm's running_var: training moved it
        CHECK(relative_error(model->state_dict().back().second, last_buffer_before) > 0);
    }
}

TEST_CASE("mobilenet: in_chans changes the stem and the expected input") {
    auto model = create_model("mobilenet_v3_small:in_chans=1,num_classes=4,stem=cifar");
    model->eval();
    NoGradGuard no_grad;
    CHECK(model->forward(randn({2, 1, 32, 32})).shape() == Shape{2, 4});
    CHECK_THROWS_WITH_AS(model->forward(randn({2, 3, 32, 32})),
                         Contains("input has 3 channels, the model expects 1"), Error);
    CHECK(model->info().in_chans == 1);
    CHECK(model->info().num_classes == 4);
}

TEST_CASE("mobilenet: an unknown tap is an error listing the valid ones") {
    auto model = create_model(small_spec("mobilenet_v2"));
    Taps taps({"layer5"});
    CHECK_THROWS_WITH_AS(model->forward(randn({1, 3, 32, 32}), &taps),
                         Contains("unknown tap 'layer5' for model mobilenet_v2; valid taps: stem, "
                                  "layer1, layer2, layer3, layer4, feature_map, pre_logits, "
                                  "dense_logits"),
                         Error);
}

TEST_CASE("mobilenet: bad specs give clear errors") {
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v2:depth=3"),
                         Contains("model 'mobilenet_v2' has no key 'depth'; valid keys: "
                                  "num_classes, in_chans, width_mult, stem, img_size"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v2:width_mult=0"),
                         Contains("mobilenet_v2: key 'width_mult' must be in (0, 4], got 0"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v3_small:width_mult=4.5"),
                         Contains("key 'width_mult' must be in (0, 4], got 4.5"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v3_large:width_mult=wide"),
                         Contains("key 'width_mult' must be a number, got 'wide'"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v2:stem=tiny"),
                         Contains("key 'stem' must be one of imagenet, cifar, got 'tiny'"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v2:num_classes=0"),
                         Contains("key 'num_classes' must be in [1, 100000], got 0"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v3_small:in_chans=65"),
                         Contains("key 'in_chans' must be in [1, 64], got 65"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v3_small:img_size=4"),
                         Contains("key 'img_size' must be in [8, 8192], got 4"), Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v4"), Contains("unknown model 'mobilenet_v4'"),
                         Error);
}

TEST_CASE("mobilenet: load_state_dict names a missing, unexpected or mis-shaped tensor") {
    auto model = create_model(small_spec("mobilenet_v3_small"));
    auto weights = load_safetensors(fixture_path("mobilenet_v3_small_w025.safetensors"));
    {
        auto w = weights;
        w.erase("features.1.block.1.fc1.weight");
        CHECK_THROWS_WITH_AS(model->load_state_dict(w),
                             Contains("missing 1 tensor(s): 'features.1.block.1.fc1.weight'"), Error);
    }
    {
        auto w = weights;
        w["features.1.block.1.fc3.weight"] = zeros({8, 8, 1, 1});
        CHECK_THROWS_WITH_AS(model->load_state_dict(w),
                             Contains("unexpected tensor 'features.1.block.1.fc3.weight'"), Error);
    }
    {
        auto w = weights;
        w["classifier.3.weight"] = zeros({10, 7});
        CHECK_THROWS_WITH_AS(model->load_state_dict(w),
                             Contains("'classifier.3.weight' has shape (10, 7) in the file"), Error);
    }
    {   // a V2 checkpoint does not fit a V3 model
        auto v2 = load_safetensors(fixture_path("mobilenet_v2_w025.safetensors"));
        CHECK_THROWS_AS(model->load_state_dict(v2), Error);
    }
}
