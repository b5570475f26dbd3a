// tests/test_objectives_cnn_vit.cpp: the objectives between a ViT and a CNN (fourier, cakd):
// values and gradients against PyTorch fixtures (tests/fixtures/gen_objectives_cnn_vit.py),
// reference loops for the spectra, float64 gradient checks through the student's features and the
// connectors' parameters, the default taps on real models, `retort objective` end to end, and
// every error path.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "distill/objective.h"
#include "distill/objectives/cnn_vit.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::max_abs_diff;

namespace {

const Fixture& fixture() {
    static const Fixture f("objectives_cnn_vit.txt");
    return f;
}

// The section of `name`, declared, with "key=value" overrides applied.
Config config_for(const std::string& name, const std::vector<std::string>& overrides = {}) {
    Config c;
    find_objective(name).declare(c);
    for (const std::string& o : overrides) c.apply_override(name + "." + o);
    return c;
}

struct Features {
    std::vector<Tensor> students, teachers;
};

ObjectiveSetup setup_for(const Features& f) {
    ObjectiveSetup setup;
    for (std::size_t i = 0; i < f.students.size(); ++i)
        setup.pairs.push_back({"p" + std::to_string(i), f.students[i].shape(), f.teachers[i].shape()});
    setup.seed = 7;
    return setup;
}

ObjectiveInputs inputs_for(const std::vector<Tensor>& students, const std::vector<Tensor>& teachers) {
    ObjectiveInputs in;
    for (std::size_t i = 0; i < students.size(); ++i)
        in.features.push_back({"p" + std::to_string(i), students[i], teachers[i]});
    return in;
}

ObjectiveInputs inputs_for(const Features& f) { return inputs_for(f.students, f.teachers); }

std::map<std::string, Tensor> state_of(const Module& m) {
    std::map<std::string, Tensor> state;
    for (const auto& [k, v] : m.state_dict()) state[k] = v;
    return state;
}

// The case's features from the fixture in `dtype`, the student's requiring gradients.
Features fixture_features(const std::string& c, DType dtype) {
    const Fixture& fx = fixture();
    Features f;
    for (int i = 0; fx.has(c + ".s" + std::to_string(i)); ++i) {
        Tensor s = fx[c + ".s" + std::to_string(i)].to(dtype);
        s.set_requires_grad(true);
        f.students.push_back(s);
        f.teachers.push_back(fx[c + ".t" + std::to_string(i)].to(dtype));
    }
    REQUIRE(!f.students.empty());
    return f;
}

// Gives every floating parameter and buffer of m float64 storage in place (the module keeps the
// same tensor handles, so its layers see the change), for the float64 gradient checks.
void to_f64(Module& m) {
    for (const auto& [_, t] : m.state_dict()) {
        if (!t.is_floating_point() || t.dtype() == DType::f64) continue;
        Tensor wide = t.detach().to(DType::f64);
        TensorImpl& impl = t.impl();
        impl.storage = wide.impl().storage;
        impl.offset = wide.impl().offset;
        impl.dtype = DType::f64;
    }
}

// The loss and gradients of `name` (with `overrides`) on case c, computed in `dtype`, against the
// values stored under `expected` (c, or c + ".variant"). Gradients are compared relative to the
// largest entry of each expected gradient.
void check_fixture(const std::string& name, const std::string& c, const std::string& expected,
                   const std::vector<std::string>& overrides = {}, DType dtype = DType::f32) {
    CAPTURE(name);
    CAPTURE(expected);
    const Fixture& fx = fixture();
    Features f = fixture_features(c, dtype);
    auto objective = create_objective(name, config_for(name, overrides), setup_for(f));
    if (dtype == DType::f64) to_f64(*objective);
    std::map<std::string, Tensor> state;
    for (const auto& [key, _] : objective->state_dict()) state[key] = fx[c + ".param." + key];
    if (!state.empty()) objective->load_state_dict(state);
    objective->train();
    Tensor loss = objective->forward(inputs_for(f));
    REQUIRE(loss.shape() == Shape{});
    const double want = fx[expected + ".loss"].item();
    CHECK(std::abs(loss.item() - want) <= 1e-5 * std::abs(want));
    loss.backward();
    std::vector<std::pair<std::string, Tensor>> grads;
    for (std::size_t i = 0; i < f.students.size(); ++i)
        grads.emplace_back(expected + ".grad.s" + std::to_string(i), f.students[i].grad());
    for (const auto& [pname, p] : objective->named_parameters())
        grads.emplace_back(expected + ".grad.param." + pname, p.grad());
    for (const auto& [key, grad] : grads) {
        CAPTURE(key);
        REQUIRE(fx.has(key));
        REQUIRE(grad.defined());
        const Tensor e = fx[key];
        const double scale = std::max(max(abs(e)).item(), 1e-30);
        CHECK(max_abs_diff(grad, e) / scale < 1e-4);
    }
}

// Random float64 features of these shapes; teachers without a graph. Teacher i is made of
// softmax rows (an attention map) when attention[i] is set.
Features random_features(const std::vector<Shape>& students, const std::vector<Shape>& teachers,
                         std::uint64_t seed, const std::vector<bool>& attention = {}) {
    Features f;
    for (std::size_t i = 0; i < students.size(); ++i) {
        f.students.push_back(testing::leaf(students[i], seed + 2 * i));
        Tensor t = testing::leaf(teachers[i], seed + 2 * i + 1).detach();
        if (i < attention.size() && attention[i]) t = softmax(t * 2.0, -1);
        f.teachers.push_back(t);
    }
    return f;
}

// Finite differences in float64 through the student's features and every connector parameter.
void check_gradients(const std::string& name, const Features& f,
                     const std::vector<std::string>& overrides = {}) {
    CAPTURE(name);
    CAPTURE(overrides.empty() ? std::string() : overrides.front());
    auto objective = create_objective(name, config_for(name, overrides), setup_for(f));
    to_f64(*objective);
    objective->train();
    std::vector<Tensor> inputs;
    for (const Tensor& s : f.students) {
        Tensor x = s.detach().clone();
        x.set_requires_grad(true);
        inputs.push_back(x);
    }
    const std::size_t n = inputs.size();
    // Parameters moved off their initial values: a BatchNorm bias of exactly 0 puts a batch-1
    // sample's DC bin at 0, where |F| has a kink and finite differences cannot agree.
    Generator gen(99);
    for (auto [_, p] : objective->named_parameters()) {
        {
            NoGradGuard no_grad;
            const Tensor moved = p.detach() + uniform(p.shape(), -0.25, 0.25, DType::f64, &gen);
            std::copy_n(moved.data<double>(), p.numel(), p.data<double>());
        }
        inputs.push_back(p);
    }
    auto fn = [&](const std::vector<Tensor>& x) {
        std::vector<Tensor> students(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
        return objective->forward(inputs_for(students, f.teachers));
    };
    CHECK(gradcheck(fn, inputs));
}

// x shifted by one column, circularly (the last column first).
Tensor roll_columns(const Tensor& x) {
    const std::int64_t W = x.size(3);
    return concat({narrow(x, 3, W - 1, 1), narrow(x, 3, 0, W - 1)}, 3);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the table

TEST_CASE("objectives cnn_vit: the table's rows and their defaults") {
    for (const std::string name : {"fourier", "cakd"}) {
        CAPTURE(name);
        const ObjectiveEntry& e = find_objective(name);
        CHECK(!e.paper.empty());
        CHECK(!e.reference.empty());
        CHECK(!e.taps.empty());
        CHECK(!e.defaults.empty());
        CHECK(!e.uses_teacher_logits);
        CHECK(!e.uses_labels);
    }
    const ObjectiveEntry& fourier = find_objective("fourier");
    CHECK(fourier.min_pairs == 1);
    CHECK(fourier.max_pairs == -1);
    CHECK(fourier.default_taps == "feature_map:patch_tokens");
    const ObjectiveEntry& cakd = find_objective("cakd");
    CHECK(cakd.min_pairs == 2);
    CHECK(cakd.max_pairs == 2);
    CHECK(cakd.default_taps == "layer3:attn.11, layer3:tokens.11");

    Config f = config_for("fourier");
    CHECK(f.get_string("fourier.connector") == "conv");
    CHECK(f.get_string("fourier.component") == "amplitude");
    CHECK(f.get_int("fourier.keep") == 0);
    CHECK(f.get_int("fourier.prefix_tokens") == -1);
    Config c = config_for("cakd");
    CHECK(c.get_double("cakd.attn_weight") == 0.2);
    CHECK(c.get_double("cakd.value_weight") == 0.05);
    CHECK(c.get_double("cakd.feature_weight") == 0.05);
    CHECK(c.get_int("cakd.group_size") == 4);
    CHECK(c.get_string("cakd.heads") == "average");
    CHECK(c.get_int("cakd.prefix_tokens") == -1);
    CHECK(c.get_string("cakd.robust") == "off");
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures

TEST_CASE("objectives cnn_vit: fourier matches its PyTorch implementation") {
    // conv connectors; a CNN map against ViT tokens and a rectangular CNN pair, summed
    check_fixture("fourier", "fourier_conv", "fourier_conv");
    check_fixture("fourier", "fourier_conv", "fourier_conv.keep2", {"keep=2"});
    check_fixture("fourier", "fourier_conv", "fourier_conv.complex", {"component=complex"});
    // The phase term's gradient grows as |F_t| / |F_s|: with student bins down to 0.014 here,
    // float32 rounding of the BatchNorm statistics moves the BatchNorm gradients by ~1e-3 of
    // their size, so this case is compared in float64.
    check_fixture("fourier", "fourier_conv", "fourier_conv.phase_keep2", {"component=phase", "keep=2"},
                  DType::f64);
    // channel pooling; a DeiT-like student's tokens, and a student wider than its teacher
    check_fixture("fourier", "fourier_pool", "fourier_pool", {"connector=pool", "component=phase"});
    check_fixture("fourier", "fourier_pool", "fourier_pool.complex_keep2",
                  {"connector=pool", "component=complex", "keep=2"});
}

TEST_CASE("objectives cnn_vit: cakd matches its PyTorch implementation") {
    // the tokens pair first, the attention pair second: the objective tells them apart by shape
    check_fixture("cakd", "cakd", "cakd", {"group_size=2"});
    check_fixture("cakd", "cakd", "cakd.each",
                  {"group_size=2", "heads=each", "attn_weight=2", "value_weight=0.5", "feature_weight=0.25"});
}

// ---------------------------------------------------------------------------------------------
// reference loops and properties

TEST_CASE("objectives cnn_vit: fourier keep=1 compares the channel means (the DC bins)") {
    // With norm = ortho the DC bin is sum / sqrt(H W) = mean * sqrt(H W), so the amplitude loss
    // over the DC bins alone is mean over (b, c) of H W (|mean_s| - |mean_t|)^2.
    Features f = random_features({{3, 2, 4, 5}}, {{3, 2, 4, 5}}, 5);
    auto objective = create_objective("fourier", config_for("fourier", {"connector=pool", "keep=1"}),
                                      setup_for(f));
    const double loss = objective->forward(inputs_for(f)).item();
    const std::vector<double> s = f.students[0].to_vector<double>(), t = f.teachers[0].to_vector<double>();
    double expected = 0;
    const int B = 3, C = 2, HW = 20;
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < C; ++c) {
            double ms = 0, mt = 0;
            for (int i = 0; i < HW; ++i) {
                ms += s[(b * C + c) * HW + i] / HW;
                mt += t[(b * C + c) * HW + i] / HW;
            }
            const double d = std::abs(ms) - std::abs(mt);
            expected += HW * d * d / (B * C);
        }
    CHECK(loss == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("objectives cnn_vit: fourier's amplitude ignores a circular shift, the complex parts do not") {
    Features f = random_features({{2, 3, 4, 6}}, {{2, 3, 4, 6}}, 9);
    Features shifted{{roll_columns(f.teachers[0])}, {f.teachers[0]}};
    auto loss = [&](const std::string& component, const Features& g) {
        return create_objective("fourier", config_for("fourier", {"connector=pool", "component=" + component}),
                                setup_for(g))
            ->forward(inputs_for(g))
            .item();
    };
    CHECK(loss("amplitude", shifted) < 1e-12);
    CHECK(loss("complex", shifted) > 0.1);
    CHECK(loss("phase", shifted) > 0.1);
    // the same map: every component is zero (phase up to its eps: about eps^2 / (2 |F|) per bin)
    Features same{{f.teachers[0]}, {f.teachers[0]}};
    CHECK(loss("amplitude", same) == 0.0);
    CHECK(loss("complex", same) == 0.0);
    CHECK(loss("phase", same) < 1e-5);
    // a ViT student whose patch tokens (after a class token) are the teacher's map, flattened
    Tensor map = narrow(f.teachers[0], 3, 0, 4);  // (2, 3, 4, 4)
    Tensor tokens = concat({zeros({2, 1, 3}, DType::f64), transpose(map.reshape({2, 3, 16}), 1, 2)}, 1);
    Features vit{{tokens}, {map}};
    CHECK(loss("complex", vit) == 0.0);
}

TEST_CASE("objectives cnn_vit: fourier's connectors: names, shapes, initialization, pooling") {
    Features f = random_features({{2, 8, 4, 4}, {2, 3, 5, 5}}, {{2, 17, 6}, {2, 4, 5, 5}}, 3);
    auto conv = create_objective("fourier", config_for("fourier"), setup_for(f));
    std::map<std::string, Tensor> state = state_of(*conv);
    REQUIRE(state.size() == 10);
    CHECK(state.at("connectors.0.0.weight").shape() == Shape{6, 8, 1, 1});
    CHECK(state.at("connectors.1.0.weight").shape() == Shape{4, 3, 1, 1});
    CHECK(state.at("connectors.1.1.running_var").shape() == Shape{4});
    // PyTorch's default conv init: U(+-1/sqrt(fan_in)); BatchNorm 1 and 0
    const double bound = 1.0 / std::sqrt(8.0);
    CHECK(max(abs(state.at("connectors.0.0.weight"))).item() <= bound);
    CHECK(max(abs(state.at("connectors.0.1.weight") - 1.0)).item() == 0.0);
    CHECK(max(abs(state.at("connectors.0.1.bias"))).item() == 0.0);
    // the same seed, the same connector
    auto again = create_objective("fourier", config_for("fourier"), setup_for(f));
    CHECK(max_abs_diff(state_of(*again).at("connectors.0.0.weight"), state.at("connectors.0.0.weight")) == 0.0);
    CHECK(create_objective("fourier", config_for("fourier", {"connector=pool"}), setup_for(f))
              ->state_dict()
              .empty());

    // pool, channels 6 -> 4: windows [0, 2), [1, 3), [3, 5), [4, 6) (adaptive pooling's)
    std::vector<double> values(6);
    for (int c = 0; c < 6; ++c) values[c] = 1 << c;
    Tensor wide = from_vector(values, {1, 6, 1, 1});
    Tensor narrow_map = zeros({1, 4, 1, 1}, DType::f64);
    Features pooled{{narrow_map}, {wide}};
    // with one bin, complex loss = mean over channels and (re, im) of (s - t)^2 = mean t_c^2 / 2
    const double loss = create_objective("fourier", config_for("fourier", {"connector=pool", "component=complex"}),
                                         setup_for(pooled))
                            ->forward(inputs_for(pooled))
                            .item();
    const double w0 = 1.5, w1 = 3, w2 = 12, w3 = 24;  // (1+2)/2, (2+4)/2, (8+16)/2, (16+32)/2
    CHECK(loss == doctest::Approx((w0 * w0 + w1 * w1 + w2 * w2 + w3 * w3) / 8).epsilon(1e-12));
}

TEST_CASE("objectives cnn_vit: cakd's projectors, blocks, and the renormalized teacher attention") {
    // 14 x 14 grid, blocks of 4: 16 Linears as the released GLProj; 7 x 7: 4
    Features big = random_features({{1, 4, 14, 14}, {1, 4, 14, 14}}, {{1, 2, 197, 197}, {1, 197, 6}}, 1);
    auto objective = create_objective("cakd", config_for("cakd"), setup_for(big));
    std::map<std::string, Tensor> state = state_of(*objective);
    CHECK(state.at("query.weight").shape() == Shape{6, 4, 3, 3});
    CHECK(state.at("value.weight").shape() == Shape{6, 4, 3, 3});
    CHECK(state.count("group_linears.15.weight") == 1);
    CHECK(state.count("group_linears.16.weight") == 0);
    CHECK(state.at("group_linears.0.weight").shape() == Shape{6, 4});
    Features seven = random_features({{1, 4, 7, 7}, {1, 4, 7, 7}}, {{1, 2, 50, 50}, {1, 50, 6}}, 1);
    auto small = create_objective("cakd", config_for("cakd"), setup_for(seven));
    CHECK(state_of(*small).count("group_linears.3.bias") == 1);
    CHECK(state_of(*small).count("group_linears.4.bias") == 0);
    CHECK(state_of(*small).size() == 3 + 2 * 4);

    // Zero q and k give uniform student rows 1/N. A teacher uniform over N + 1 tokens (class token
    // included) is uniform over the N patch tokens once its rows are renormalized: loss 0.
    Features f = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 2, 10, 10}, {2, 10, 4}}, 4);
    f.teachers[0] = full({2, 2, 10, 10}, 0.1, DType::f64);
    auto attn_only = create_objective("cakd", config_for("cakd", {"value_weight=0", "feature_weight=0"}),
                                      setup_for(f));
    to_f64(*attn_only);
    std::map<std::string, Tensor> zero_qk = state_of(*attn_only);
    zero_qk["query.weight"] = zeros_like(zero_qk["query.weight"]);
    zero_qk["key.weight"] = zeros_like(zero_qk["key.weight"]);
    attn_only->load_state_dict(zero_qk);
    CHECK(attn_only->forward(inputs_for(f)).item() < 1e-30);
    // the same in float32, and with the pairs in the documented order (attention first)
    Features f32{{f.students[0].detach().to(DType::f32), f.students[1].detach().to(DType::f32)},
                 {f.teachers[0].to(DType::f32), f.teachers[1].to(DType::f32)}};
    auto again = create_objective("cakd", config_for("cakd", {"value_weight=0", "feature_weight=0"}),
                                  setup_for(f32));
    again->load_state_dict(zero_qk);
    CHECK(again->forward(inputs_for(f32)).item() < 1e-12);
}

// ---------------------------------------------------------------------------------------------
// float64 gradient checks: student features and connector parameters

TEST_CASE("objectives cnn_vit: gradcheck fourier (every component, both connectors, low pass)") {
    // a CNN map against ViT tokens (class token, 3 x 3), and a rectangular CNN pair
    const Features two = random_features({{2, 2, 4, 4}, {3, 3, 3, 5}}, {{2, 10, 3}, {3, 2, 4, 4}}, 11);
    for (const std::string component : {"amplitude", "complex", "phase"}) {
        check_gradients("fourier", two, {"component=" + component});
        check_gradients("fourier", two, {"component=" + component, "connector=pool"});
    }
    check_gradients("fourier", two, {"keep=2"});
    check_gradients("fourier", two, {"keep=2", "component=phase", "connector=pool"});
    // a ViT student (two prefix tokens, 2 x 2) against a CNN map; odd sizes, batch 1
    check_gradients("fourier", random_features({{1, 6, 3}}, {{1, 5, 3, 3}}, 12));
    check_gradients("fourier", random_features({{1, 6, 3}}, {{1, 5, 3, 3}}, 13), {"connector=pool", "component=phase"});
}

TEST_CASE("objectives cnn_vit: gradcheck cakd (both head modes, through both students)") {
    // attention first: 2 heads, d = 2, a class token and a 3 x 3 grid; the attention pair's
    // student is pooled 4 x 4 -> 3 x 3, the tokens pair's is on the grid already
    const Features f = random_features({{2, 2, 4, 4}, {2, 3, 3, 3}}, {{2, 2, 10, 10}, {2, 10, 4}}, 21,
                                       {true, false});
    check_gradients("cakd", f, {"group_size=2"});
    check_gradients("cakd", f, {"heads=each", "attn_weight=3", "value_weight=0.5"});
    // a DeiT-like teacher (two prefix tokens, 2 x 2 grid), one head, a student smaller than the
    // grid (repeated by the pooling), batch 1
    const Features deit = random_features({{1, 2, 6}, {1, 2, 1, 1}}, {{1, 6, 3}, {1, 1, 6, 6}}, 22,
                                          {false, true});
    check_gradients("cakd", deit, {"group_size=1"});
}

// ---------------------------------------------------------------------------------------------
// the default taps on real models

TEST_CASE("objectives cnn_vit: the default taps fit a CIFAR ResNet student and a ViT teacher") {
    auto student = create_model("resnet8:num_classes=10");
    auto teacher = create_model(
        "vit_tiny_patch16_224:num_classes=10,img_size=32,patch_size=4,embed_dim=24,num_heads=3");
    Generator gen(1);
    Tensor x = randn({2, 3, 32, 32}, DType::f32, &gen);
    for (const std::string name : {"fourier", "cakd"}) {
        CAPTURE(name);
        const ObjectiveEntry& entry = find_objective(name);
        std::vector<std::string> s_names, t_names;
        std::vector<std::pair<std::string, std::string>> pairs;
        std::string list = entry.default_taps;
        for (std::size_t start = 0; start < list.size();) {
            std::size_t comma = list.find(',', start);
            std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            while (!item.empty() && item.front() == ' ') item.erase(item.begin());
            const std::size_t colon = item.find(':');
            pairs.push_back({item.substr(0, colon), item.substr(colon + 1)});
            s_names.push_back(pairs.back().first);
            t_names.push_back(pairs.back().second);
            start = comma == std::string::npos ? list.size() : comma + 1;
        }
        Taps s_taps(s_names), t_taps(t_names);
        student->forward(x, &s_taps);
        {
            NoGradGuard no_grad;
            teacher->forward(x, &t_taps);
        }
        ObjectiveSetup setup;
        ObjectiveInputs in;
        for (const auto& [s, t] : pairs) {
            setup.pairs.push_back({s + ":" + t, s_taps.at(s).shape(), t_taps.at(t).shape()});
            in.features.push_back({s + ":" + t, s_taps.at(s), t_taps.at(t)});
        }
        auto objective = create_objective(name, config_for(name), setup);
        Tensor loss = objective->forward(in);
        REQUIRE(loss.shape() == Shape{});
        CHECK(std::isfinite(loss.item()));
        loss.backward();
        bool reached = false;
        for (const Tensor& p : student->parameters()) reached = reached || p.grad().defined();
        CHECK(reached);
    }
}

// ---------------------------------------------------------------------------------------------
// retort objective, end to end

TEST_CASE("objectives cnn_vit: retort objective runs fourier on a CNN map and ViT tokens") {
    using testing::run_retort;
    testing::TempDir dir;
    Generator gen(4);
    std::map<std::string, Tensor> file = {{"student.feat.x", randn({3, 4, 5, 5}, DType::f32, &gen)},
                                          {"teacher.feat.x", randn({3, 17, 6}, DType::f32, &gen)}};
    save_safetensors(dir / "in.safetensors", file);
    const std::string out_path = dir / "out.safetensors";
    testing::CliRun r = run_retort("objective --method fourier --inputs " + (dir / "in.safetensors") +
                                   " --output " + out_path + " --seed 3 --set component=phase --set keep=2");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto out = load_safetensors(out_path);
    REQUIRE(out.count("loss") == 1);
    REQUIRE(out.count("grad.student.feat.x") == 1);
    REQUIRE(out.count("grad.param.connectors.0.0.weight") == 1);

    // the library, called here with the same seed, gives the same numbers
    ObjectiveSetup setup;
    setup.seed = 3;
    setup.pairs.push_back({"x", file.at("student.feat.x").shape(), file.at("teacher.feat.x").shape()});
    auto objective = create_objective("fourier", config_for("fourier", {"component=phase", "keep=2"}), setup);
    Tensor s = file.at("student.feat.x").clone();
    s.set_requires_grad(true);
    ObjectiveInputs in;
    in.features.push_back({"x", s, file.at("teacher.feat.x")});
    Tensor loss = objective->forward(in);
    loss.backward();
    CHECK(out.at("loss").item() == doctest::Approx(loss.item()).epsilon(1e-6));
    CHECK(max_abs_diff(out.at("grad.student.feat.x"), s.grad()) <= 1e-6 * max(abs(s.grad())).item());

    // a token count that is no grid is refused, and nothing is written
    file["teacher.feat.x"] = randn({3, 15, 6}, DType::f32, &gen);
    save_safetensors(dir / "bad_in.safetensors", file);
    testing::check_refused(
        {{run_retort("objective --method fourier --inputs " + (dir / "bad_in.safetensors") + " --output " +
                     (dir / "bad.safetensors")),
          "15 tokens are neither a square grid nor a square grid after 1 or 2 prefix tokens"}},
        dir / "bad.safetensors");
}

// ---------------------------------------------------------------------------------------------
// errors

TEST_CASE("objectives cnn_vit: fourier's errors name the objective, the pair and the shapes") {
    const Features one = random_features({{2, 3, 4, 4}}, {{2, 17, 5}}, 1);
    const Features two = random_features({{2, 3, 4, 4}, {2, 3, 2, 2}}, {{2, 17, 5}, {2, 3, 2, 2}}, 2);
    CHECK_THROWS_WITH_AS(create_objective("fourier", config_for("fourier"), ObjectiveSetup{}),
                         doctest::Contains("objective fourier needs at least 1 feature pair(s), got 0"), Error);
    auto fourier = create_objective("fourier", config_for("fourier"), setup_for(two));
    CHECK_THROWS_WITH_AS(fourier->forward(inputs_for(one)),
                         doctest::Contains("fourier: expected 2 feature pair(s) (as at setup), got 1"), Error);
    // batch sizes
    auto single = create_objective("fourier", config_for("fourier"), setup_for(one));
    Features bad = random_features({{2, 3, 4, 4}}, {{3, 17, 5}}, 3);
    CHECK_THROWS_WITH_AS(single->forward(inputs_for(bad)),
                         doctest::Contains("fourier: pair 'p0': student batch 2 but teacher batch 3"), Error);
    // another shape than at setup
    Features other = random_features({{2, 3, 5, 5}}, {{2, 17, 5}}, 4);
    CHECK_THROWS_WITH_AS(single->forward(inputs_for(other)),
                         doctest::Contains("fourier: pair 'p0': the student feature has shape (2, 3, 5, 5) "
                                           "but the objective was built for (2, 3, 4, 4)"),
                         Error);
    // token counts that are no grid, at setup
    CHECK_THROWS_WITH_AS(
        create_objective("fourier", config_for("fourier"), setup_for(random_features({{2, 3, 4, 4}}, {{2, 15, 5}}, 5))),
        doctest::Contains("fourier: pair 'p0' teacher: 15 tokens are neither a square grid nor a square "
                          "grid after 1 or 2 prefix tokens"),
        Error);
    CHECK_THROWS_WITH_AS(create_objective("fourier", config_for("fourier", {"prefix_tokens=1"}),
                                          setup_for(random_features({{2, 3, 4, 4}}, {{2, 16, 5}}, 6))),
                         doctest::Contains("fourier: pair 'p0' teacher: 16 tokens less 1 prefix tokens are 15, "
                                           "not a square grid"),
                         Error);
    CHECK_THROWS_WITH_AS(
        create_objective("fourier", config_for("fourier"), setup_for(random_features({{2, 3}}, {{2, 17, 5}}, 7))),
        doctest::Contains("fourier: pair 'p0' student: expected a map (B, C, H, W) or tokens (B, N, C), got (2, 3)"),
        Error);
    // hyperparameters
    CHECK_THROWS_WITH_AS(config_for("fourier", {"component=power"}),
                         doctest::Contains("fourier.component must be one of amplitude, complex, phase"), Error);
    CHECK_THROWS_WITH_AS(config_for("fourier", {"connector=linear"}),
                         doctest::Contains("fourier.connector must be one of conv, pool"), Error);
    CHECK_THROWS_WITH_AS(config_for("fourier", {"keep=-1"}),
                         doctest::Contains("fourier.keep must be in [0, 4096], got -1"), Error);
    CHECK_THROWS_WITH_AS(config_for("fourier", {"prefix_tokens=-2"}),
                         doctest::Contains("fourier.prefix_tokens must be in [-1, 64], got -2"), Error);
    // the common grid of pair p0 is 4 x 4 (student 4 x 4, teacher 4 x 4): 3 frequencies per axis
    CHECK_THROWS_WITH_AS(create_objective("fourier", config_for("fourier", {"keep=4"}), setup_for(one)),
                         doctest::Contains("fourier: keep = 4 is more than the 3 frequencies per axis of "
                                           "pair 'p0''s common 4x4 grid"),
                         Error);
    CHECK_NOTHROW(create_objective("fourier", config_for("fourier", {"keep=3"}), setup_for(one)));
}

TEST_CASE("objectives cnn_vit: cakd's errors name the objective, the pair and the shapes") {
    const Features f = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 2, 10, 10}, {2, 10, 4}}, 1, {true});
    // pair counts
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd"), setup_for(Features{{f.students[0]}, {f.teachers[0]}})),
                         doctest::Contains("objective cakd needs 2 feature pair(s), got 1"), Error);
    auto cakd = create_objective("cakd", config_for("cakd"), setup_for(f));
    CHECK_THROWS_WITH_AS(cakd->forward(inputs_for(Features{{f.students[0]}, {f.teachers[0]}})),
                         doctest::Contains("cakd: expected 2 feature pair(s) (as at setup), got 1"), Error);
    // batch sizes
    Features bad = f;
    bad.teachers[1] = testing::leaf({3, 10, 4}, 2).detach();
    CHECK_THROWS_WITH_AS(cakd->forward(inputs_for(bad)),
                         doctest::Contains("cakd: pair 'p1': student batch 2 but teacher batch 3"), Error);
    // which pair is which
    Features maps = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 4, 3, 5}, {2, 10, 4}}, 3);
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd"), setup_for(maps)),
                         doctest::Contains("cakd: needs one pair whose teacher tap is an attention map (B, heads, "
                                           "N, N), e.g. layer3:attn.11, and one whose teacher tap is tokens "
                                           "(B, N, C) of the same block, e.g. layer3:tokens.11; got teacher "
                                           "shapes (2, 4, 3, 5) and (2, 10, 4)"),
                         Error);
    Features two_tokens = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 10, 4}, {2, 10, 4}}, 3);
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd"), setup_for(two_tokens)),
                         doctest::Contains("got teacher shapes (2, 10, 4) and (2, 10, 4)"), Error);
    // the attention's grid and the tokens' grid differ
    Features grids = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 2, 10, 10}, {2, 17, 4}}, 4, {true});
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd"), setup_for(grids)),
                         doctest::Contains("cakd: the attention map of pair 'p0' covers a 3x3 patch grid but the "
                                           "tokens of pair 'p1' a 4x4 one"),
                         Error);
    // channels that do not split into the heads
    Features heads = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 3, 10, 10}, {2, 10, 4}}, 5, {true});
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd"), setup_for(heads)),
                         doctest::Contains("cakd: the teacher's 4 token channels do not split into its 3 attention heads"),
                         Error);
    // an attention map whose token count is no grid
    Features odd = random_features({{2, 3, 3, 3}, {2, 3, 3, 3}}, {{2, 2, 12, 12}, {2, 10, 4}}, 6, {true});
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd"), setup_for(odd)),
                         doctest::Contains("cakd: pair 'p0': the teacher's attention map: 12 tokens are neither a "
                                           "square grid"),
                         Error);
    // hyperparameters
    CHECK_THROWS_WITH_AS(create_objective("cakd", config_for("cakd", {"robust=on"}), setup_for(f)),
                         doctest::Contains("cakd: robust = on (the paper's multi-view robust training) is not "
                                           "available"),
                         Error);
    CHECK_THROWS_WITH_AS(
        create_objective("cakd", config_for("cakd", {"attn_weight=0", "value_weight=0", "feature_weight=0"}), setup_for(f)),
        doctest::Contains("cakd: attn_weight, value_weight and feature_weight are all 0: nothing to distill"), Error);
    CHECK_THROWS_WITH_AS(config_for("cakd", {"group_size=0"}),
                         doctest::Contains("cakd.group_size must be in [1, 4096], got 0"), Error);
    CHECK_THROWS_WITH_AS(config_for("cakd", {"heads=max"}),
                         doctest::Contains("cakd.heads must be one of average, each"), Error);
    CHECK_THROWS_WITH_AS(config_for("cakd", {"attn_weight=-1"}),
                         doctest::Contains("cakd.attn_weight must be in [0, 1e+06], got -1"), Error);
    CHECK_THROWS_WITH_AS(config_for("cakd", {"robust=maybe"}),
                         doctest::Contains("cakd.robust must be one of on, off"), Error);
}
