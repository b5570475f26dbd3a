// tests/test_models_resnet.cpp: torchvision's ResNets (models/resnet.cpp) and RepDistiller's CIFAR
// ResNets and wide ResNets (models/cifar_resnet.cpp) against PyTorch.
//
// Fixtures (tests/fixtures/gen_models_resnet.py, which documents each one):
//   models_resnet_names.txt       every model's parameter count and state_dict names and shapes
//   models_resnet_formula.txt     logits with "formula weights" (below), so full-size models need
//                                 no stored weights
//   resnet8_c10 / wrn_16_1_c10    random PyTorch weights (.safetensors, loaded strictly), and
//   models_resnet_io.safetensors  the logits, every tap, train-mode logits and running statistics
//
// Formula weights, as the generator computes them: the state-dict names (no num_batches_tracked)
// sorted by byte order; tensor k, flat element i gets a value made from b(i, k), a pseudo-random
// number in [-1, 1) from a 32-bit integer hash (exact, so both sides agree to the bit):
//   x = (i + 2654435769 k) mod 2^32; x ^= x >> 16; x *= 73244475; x ^= x >> 16; x *= 73244475;
//   x ^= x >> 16 (products mod 2^32); b = 2 x / 2^32 - 1.
// Then, in double, rounded to float: running_var 0.5 + |b|, running_mean 0.1 b, other 1-D weights
// 1 + 0.2 b, other 1-D tensors 0.1 b, conv / linear weights b sqrt(3 / fan_in). Input: b(i, 7777).
// With these the logits depend strongly on the input and on every layer (zeroing the input moves
// them by 55-90 %), so a wrong stride, shortcut or name order shows up far above the tolerance.
//
// Tolerance: max |ours - PyTorch| / max |PyTorch| < 1e-4 in float32.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"
#include "tests/model_check.h"

using namespace retort;
using doctest::Contains;
using retort::testing::Fixture;
using retort::testing::max_abs_diff;

using retort::testing::fixture_path;
using retort::testing::relative_error;

namespace {

constexpr double kTolerance = 1e-4;

// ---- formula weights and input (see the header comment) ----

// b(i, k) of the header comment.
double formula_b(std::uint64_t i, std::uint64_t k) {
    constexpr std::uint64_t mask = 0xFFFFFFFFu, mult = 73244475;
    std::uint64_t x = (i + 2654435769u * k) & mask;
    x ^= x >> 16;
    x = (x * mult) & mask;
    x ^= x >> 16;
    x = (x * mult) & mask;
    x ^= x >> 16;
    return 2.0 * (static_cast<double>(x) / 4294967296.0) - 1.0;
}

Tensor formula_tensor(const std::string& name, const Tensor& like, std::size_t k) {
    std::vector<float> v(static_cast<std::size_t>(like.numel()));
    const bool one_dim = like.dim() == 1;
    auto ends_with = [&](const std::string& suffix) {
        return name.size() >= suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const double weight_scale =
        one_dim ? 0.0 : std::sqrt(3.0 / static_cast<double>(like.numel() / like.size(0)));
    for (std::size_t i = 0; i < v.size(); ++i) {
        const double b = formula_b(i, k);
        double value;
        if (ends_with("running_var")) value = 0.5 + std::abs(b);
        else if (ends_with("running_mean")) value = 0.1 * b;
        else if (one_dim && ends_with("weight")) value = 1 + 0.2 * b;
        else if (one_dim) value = 0.1 * b;
        else value = b * weight_scale;
        v[i] = static_cast<float>(value);
    }
    return from_vector(v, like.shape());
}

void set_formula_weights(Model& model) {
    std::vector<std::pair<std::string, Tensor>> entries = model.state_dict();
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::map<std::string, Tensor> state;
    for (std::size_t k = 0; k < entries.size(); ++k)
        state[entries[k].first] = formula_tensor(entries[k].first, entries[k].second, k);
    model.load_state_dict(state);
}

Tensor formula_input(const Shape& shape) {
    std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(formula_b(i, 7777));
    return from_vector(v, shape);
}

// ---- models_resnet_names.txt ----

struct ReferenceModel {
    std::int64_t num_parameters = 0;
    std::vector<std::pair<std::string, Shape>> entries;  // sorted by name
};

std::map<std::string, ReferenceModel> read_reference_names() {
    std::ifstream in(fixture_path("models_resnet_names.txt"));
    REQUIRE_MESSAGE(in.good(), "cannot open models_resnet_names.txt");
    std::map<std::string, ReferenceModel> out;
    ReferenceModel* current = nullptr;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first == "model") {
            std::string spec;
            words >> spec;
            current = &out[spec];
            words >> current->num_parameters;
            continue;
        }
        REQUIRE(current != nullptr);
        Shape shape;
        for (std::int64_t s; words >> s;) shape.push_back(s);
        current->entries.emplace_back(first, shape);
    }
    for (auto& [_, m] : out) std::sort(m.entries.begin(), m.entries.end());
    return out;
}

std::vector<std::pair<std::string, Shape>> names_and_shapes(const Model& model) {
    std::vector<std::pair<std::string, Shape>> out;
    for (const auto& [name, t] : model.state_dict()) out.emplace_back(name, t.shape());
    std::sort(out.begin(), out.end());
    return out;
}

// Builds the model of `spec`, checks its names, shapes and parameter count against PyTorch's,
// then its logits with formula weights; returns the model and the taps it was asked for.
struct FormulaRun {
    std::shared_ptr<Model> model;
    Tensor logits;
    Taps taps;
};

FormulaRun check_against_pytorch(const std::string& spec, std::int64_t expected_parameters,
                                 const Shape& input_shape,
                                 const std::map<std::string, ReferenceModel>& reference,
                                 const Fixture& formula, std::vector<std::string> taps = {}) {
    INFO("model ", spec);
    FormulaRun run{create_model(spec), Tensor(), Taps(std::move(taps))};
    Model& model = *run.model;
    CHECK(model.num_parameters() == expected_parameters);
    REQUIRE(reference.count(spec));
    const ReferenceModel& ref = reference.at(spec);
    CHECK(ref.num_parameters == expected_parameters);
    CHECK(names_and_shapes(model) == ref.entries);

    set_formula_weights(model);
    model.eval();
    {
        NoGradGuard no_grad;
        run.logits = model(formula_input(input_shape), &run.taps);
    }
    const double rel = relative_error(run.logits, formula.f32(spec + "|logits"));
    MESSAGE(spec, ": formula-weight logits, max relative difference ", rel);
    CHECK(rel < kTolerance);
    return run;
}

// Checks the relations the taps of a ResNet promise: relu(layerN.pre) = layerN, feature_map is the
// last stage, pre_logits its spatial mean, and dense_logits averages to the logits.
void check_tap_relations(const FormulaRun& run, int stages, bool relu_after_pre) {
    const Taps& t = run.taps;
    for (int s = 1; s <= stages; ++s) {
        const std::string layer = "layer" + std::to_string(s);
        if (relu_after_pre) CHECK(max_abs_diff(relu(t.at(layer + ".pre")), t.at(layer)) == 0);
    }
    Tensor fmap = t.at("feature_map");
    CHECK(relative_error(t.at("pre_logits"), mean(fmap, {2, 3})) < 1e-6);
    Tensor dense = t.at("dense_logits");
    CHECK(dense.shape() == Shape{fmap.size(0), run.logits.size(1), fmap.size(2), fmap.size(3)});
    CHECK(relative_error(mean(dense, {2, 3}), run.logits) < 1e-5);
}

}  // namespace

// ---- full-size and CIFAR models: names, parameter counts and logits ----

TEST_CASE("resnet models: torchvision ResNets match PyTorch (names, parameter counts, logits, taps)") {
    const auto reference = read_reference_names();
    const Fixture formula("models_resnet_formula.txt");
    const std::vector<std::string> all_taps{
        "stem",       "layer1",     "layer2",     "layer3",      "layer4",     "layer1.pre",
        "layer2.pre", "layer3.pre", "layer4.pre", "feature_map", "pre_logits", "dense_logits"};
    // Parameter counts as torchvision 0.14 reports them (sum of p.numel(), 1000 classes):
    // resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032. The ImageNet stem runs at
    // 64 x 64 here: the same arithmetic as at 224, a twelfth of the work.
    FormulaRun r18 = check_against_pytorch("resnet18", 11'689'512, {1, 3, 64, 64}, reference,
                                           formula, all_taps);
    check_tap_relations(r18, 4, true);
    CHECK(r18.taps.at("stem").shape() == Shape{1, 64, 16, 16});
    CHECK(r18.taps.at("layer4").shape() == Shape{1, 512, 2, 2});
    CHECK(r18.model->info().img_size == 224);
    CHECK(r18.model->info().num_classes == 1000);
    CHECK(r18.model->tap_names() == all_taps);
    Taps wrong({"layer5.pre"});
    CHECK_THROWS_WITH_AS((*r18.model)(zeros({1, 3, 8, 8}), &wrong),
                         Contains("unknown tap 'layer5.pre' for model resnet18; valid taps: stem, "
                                  "layer1, layer2, layer3, layer4, layer1.pre"),
                         Error);

    check_against_pytorch("resnet34", 21'797'672, {1, 3, 64, 64}, reference, formula);

    FormulaRun r50 = check_against_pytorch("resnet50", 25'557'032, {1, 3, 64, 64}, reference,
                                           formula, all_taps);
    check_tap_relations(r50, 4, true);
    CHECK(r50.taps.at("layer1").shape() == Shape{1, 256, 16, 16});
    CHECK(r50.taps.at("layer4.pre").shape() == Shape{1, 2048, 2, 2});
    CHECK(r50.taps.at("pre_logits").shape() == Shape{1, 2048});

    // the CIFAR stem: conv1 3x3 stride 1 (64*3*9 weights instead of 64*3*49), no max-pool;
    // 11,173,962 parameters with 10 classes (torchvision's resnet18 with conv1 replaced)
    FormulaRun cifar = check_against_pytorch("resnet18:num_classes=10,stem=cifar", 11'173'962,
                                             {2, 3, 32, 32}, reference, formula, all_taps);
    check_tap_relations(cifar, 4, true);
    CHECK(cifar.taps.at("stem").shape() == Shape{2, 64, 32, 32});
    CHECK(cifar.taps.at("layer4").shape() == Shape{2, 512, 4, 4});
    CHECK(cifar.model->info().img_size == 32);
}

TEST_CASE("resnet models: RepDistiller's CIFAR ResNets and WRNs match PyTorch (names, counts, logits)") {
    const auto reference = read_reference_names();
    const Fixture formula("models_resnet_formula.txt");
    // Parameter counts of RepDistiller's definitions with 100 classes, as PyTorch 1.13 counts
    // them (gen_models_resnet.py prints them; they agree with the sizes the CRD paper lists, e.g.
    // resnet56 0.86M, resnet32x4 7.43M, wrn_40_2 2.26M).
    const std::vector<std::pair<std::string, std::int64_t>> counts{
        {"resnet8", 83'892},      {"resnet14", 181'108},    {"resnet20", 278'324},
        {"resnet32", 472'756},    {"resnet44", 667'188},    {"resnet56", 861'620},
        {"resnet110", 1'736'564}, {"resnet8x4", 1'233'540}, {"resnet32x4", 7'433'860},
        {"wrn_16_1", 180'916},    {"wrn_16_2", 703'284},    {"wrn_40_1", 569'780},
        {"wrn_40_2", 2'255'156},
    };
    for (const auto& [name, count] : counts) {
        const bool wide = name.rfind("wrn", 0) == 0;
        FormulaRun run = check_against_pytorch(
            name, count, {1, 3, 32, 32}, reference, formula,
            {"stem", "layer1", "layer2", "layer3", "layer1.pre", "layer2.pre", "layer3.pre",
             "feature_map", "pre_logits", "dense_logits"});
        check_tap_relations(run, 3, !wide);
        CHECK(run.model->info().num_classes == 100);
        CHECK(run.model->info().img_size == 32);
        CHECK(run.taps.at("layer3").size(2) == 8);
        if (wide) {  // feature_map = relu(bn1(layer3)) = relu(layer3.pre)
            CHECK(max_abs_diff(relu(run.taps.at("layer3.pre")), run.taps.at("feature_map")) == 0);
        } else {
            CHECK(run.taps.at("feature_map").same(run.taps.at("layer3")));
        }
    }
}

// ---- weights saved from PyTorch ----

TEST_CASE("resnet models: PyTorch checkpoints of resnet8 and wrn_16_1 load and give the same outputs") {
    const auto io = load_safetensors(fixture_path("models_resnet_io.safetensors"));
    auto get = [&](const std::string& name) {
        auto it = io.find(name);
        REQUIRE_MESSAGE(it != io.end(), "models_resnet_io.safetensors has no ", name);
        return it->second;
    };
    for (const std::string name : {"resnet8", "wrn_16_1"}) {
        INFO("model ", name);
        auto model = create_model(name + ":num_classes=10");
        model->load_state_dict(load_safetensors(fixture_path(name + "_c10.safetensors")));
        const Tensor x = get(name + ".input");

        model->eval();
        Taps taps(model->tap_names());
        {
            NoGradGuard no_grad;
            const double rel = relative_error((*model)(x, &taps), get(name + ".logits"));
            MESSAGE(name, ": eval logits, max relative difference ", rel);
            CHECK(rel < kTolerance);
        }
        for (const std::string& tap : model->tap_names()) {
            const double rel = relative_error(taps.at(tap), get(name + ".tap." + tap));
            MESSAGE(name, ": tap ", tap, ", max relative difference ", rel);
            CHECK(rel < kTolerance);
        }

        // train mode: batch statistics, and running statistics updated as PyTorch does
        model->train();
        {
            NoGradGuard no_grad;
            const double rel = relative_error((*model)(x), get(name + ".train_logits"));
            MESSAGE(name, ": train-mode logits, max relative difference ", rel);
            CHECK(rel < kTolerance);
        }
        double worst = 0;
        int compared = 0;
        for (const auto& [key, t] : model->named_buffers()) {
            worst = std::max(worst, relative_error(t, get(name + ".after_train." + key)));
            ++compared;
        }
        MESSAGE(name, ": running statistics after one train step, max relative difference ", worst);
        CHECK(compared > 0);
        CHECK(worst < kTolerance);
    }
}

// ---- training ----

TEST_CASE("resnet models: train-mode forward and backward give every parameter a gradient") {
    manual_seed(3);
    const std::vector<std::pair<std::string, Shape>> cases{
        {"resnet18:num_classes=10,stem=cifar", {2, 3, 16, 16}},
        {"resnet50:num_classes=7,in_chans=1", {2, 1, 32, 32}},
        {"resnet8x4:num_classes=5", {2, 3, 16, 16}},
        {"wrn_16_2:num_classes=5,drop_rate=0.3", {2, 3, 16, 16}},
    };
    for (const auto& [spec, shape] : cases) {
        INFO("model ", spec);
        auto model = create_model(spec);
        model->train();
        const auto before = model->named_buffers();
        std::vector<Tensor> running_before;
        for (const auto& [_, t] : before) running_before.push_back(t.clone());

        Taps taps({"layer2", "dense_logits"});
        Tensor logits = (*model)(randn(shape), &taps);
        CHECK(logits.shape() == Shape{shape[0], model->info().num_classes});
        Tensor weights = randn(logits.shape());
        Tensor loss = sum(logits * weights) + mean(taps.at("layer2")) + mean(taps.at("dense_logits"));
        loss.backward();
        for (const auto& [name, p] : model->named_parameters()) {
            INFO("parameter ", name);
            Tensor g = p.grad();
            REQUIRE(g.defined());
            CHECK(g.shape() == p.shape());
            double total = 0;
            bool finite = true;
            for (double v : g.to_vector<double>()) {
                finite = finite && std::isfinite(v);
                total += std::abs(v);
            }
            CHECK(finite);
            CHECK(total > 0);
        }
        // every BatchNorm moved its running statistics
        for (std::size_t i = 0; i < before.size(); ++i) {
            INFO("buffer ", before[i].first);
            CHECK(max_abs_diff(before[i].second, running_before[i]) > 0);
        }
    }
}

TEST_CASE("resnet models: dropout in a WRN is active in train mode only") {
    manual_seed(11);
    auto model = create_model("wrn_16_1:num_classes=4,drop_rate=0.5");
    Tensor x = randn({2, 3, 16, 16});
    model->eval();
    Tensor a = (*model)(x), b = (*model)(x);
    CHECK(max_abs_diff(a, b) == 0);
    // in train mode the BatchNorms use batch statistics either way; dropout makes two passes differ
    model->train();
    Tensor c = (*model)(x), d = (*model)(x);
    CHECK(max_abs_diff(c, d) > 0);
}

// ---- errors ----

TEST_CASE("resnet models: bad specs are clear errors") {
    CHECK_THROWS_WITH_AS(create_model("resnet18:stem=tiny"),
                         Contains("key 'stem' must be one of imagenet, cifar, got 'tiny'"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet18:num_classes=0"),
                         Contains("key 'num_classes' must be in [1, 100000], got 0"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet50:in_chans=65"),
                         Contains("key 'in_chans' must be in [1, 64], got 65"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet34:depth=3"),
                         Contains("model 'resnet34' has no key 'depth'; valid keys: num_classes, "
                                  "in_chans, stem, img_size"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("resnet18:img_size=big"),
                         Contains("key 'img_size' must be an integer, got 'big'; 'auto' is also accepted"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("resnet18:img_size=4"),
                         Contains("key 'img_size' must be in [8, 4096], got 4"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet8:stem=cifar"),
                         Contains("model 'resnet8' has no key 'stem'; valid keys: num_classes, "
                                  "in_chans, img_size"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("resnet56:drop_rate=0.1"),
                         Contains("model 'resnet56' has no key 'drop_rate'"), Error);
    CHECK_THROWS_WITH_AS(create_model("wrn_40_2:drop_rate=0.95"),
                         Contains("key 'drop_rate' must be in [0, 0.9], got 0.95"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet32x4:num_classes=100001"),
                         Contains("key 'num_classes' must be in [1, 100000]"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet19"), Contains("unknown model 'resnet19'"), Error);

    // img_size: a number is taken as given ("auto" follows the stem: see the first test case)
    CHECK(create_model("resnet18:img_size=96,num_classes=2")->info().img_size == 96);
    CHECK(create_model("wrn_16_1:img_size=64")->info().img_size == 64);
}

TEST_CASE("resnet models: unknown taps and bad inputs are clear errors") {
    auto model = create_model("resnet8:num_classes=3");
    Taps wrong({"layer4"});
    CHECK_THROWS_WITH_AS((*model)(zeros({1, 3, 8, 8}), &wrong),
                         Contains("unknown tap 'layer4' for model resnet8; valid taps: stem, layer1, "
                                  "layer2, layer3, layer1.pre, layer2.pre, layer3.pre, feature_map, "
                                  "pre_logits, dense_logits"),
                         Error);
    CHECK_THROWS_WITH_AS((*model)(zeros({1, 1, 8, 8})),
                         Contains("input has 1 channels, the model expects 3"), Error);
    CHECK_THROWS_WITH_AS((*model)(zeros({3, 8, 8})), Contains("input must be (B, C, H, W)"), Error);
    // a tap that was not requested
    Taps some({"layer1"});
    (*model)(zeros({1, 3, 8, 8}), &some);
    CHECK_THROWS_WITH_AS(some.at("layer2"), Contains("tap 'layer2' was not requested"), Error);
}

TEST_CASE("resnet models: load_state_dict names a missing, unexpected or mis-shaped tensor") {
    auto state = load_safetensors(fixture_path("resnet8_c10.safetensors"));
    auto model = create_model("resnet8:num_classes=10");

    auto missing = state;
    missing.erase("layer2.0.downsample.1.running_var");
    CHECK_THROWS_WITH_AS(model->load_state_dict(missing),
                         Contains("missing 1 tensor(s): 'layer2.0.downsample.1.running_var'"), Error);

    auto extra = state;
    extra["layer3.1.conv1.weight"] = zeros({64, 64, 3, 3});  // resnet8 has one block per stage
    CHECK_THROWS_WITH_AS(model->load_state_dict(extra),
                         Contains("unexpected tensor 'layer3.1.conv1.weight'"), Error);

    // a 10-class checkpoint into the default 100-class model
    auto hundred = create_model("resnet8");
    CHECK_THROWS_WITH_AS(hundred->load_state_dict(state),
                         Contains("'fc.weight' has shape (10, 64) in the file but (100, 64) in the model"),
                         Error);

    // nothing changes when a load fails: the model still gives the checkpoint's outputs
    model->load_state_dict(state);
    model->eval();
    Tensor x = randn({1, 3, 8, 8});
    Tensor before = (*model)(x);
    auto bad = state;
    bad["fc.bias"] = zeros({11});
    bad["conv1.weight"] = zeros({16, 3, 3, 3});
    CHECK_THROWS_WITH_AS(model->load_state_dict(bad), Contains("'fc.bias' has shape (11,)"), Error);
    CHECK(max_abs_diff((*model)(x), before) == 0);
}
