// tests/test_objectives_feature_map.cpp: the feature-map distillation objectives (fitnet, at, sp,
// nst, fsp, ft, ab, ofd): values and gradients against PyTorch fixtures
// (tests/fixtures/gen_objectives_feature_map.py), float64 gradient checks through the student's
// features and the connectors' parameters, the two-stage behaviour, initialization, and every
// error path.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "distill/objective.h"
#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/ofd.h"
#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"
#include "tests/model_check.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::relative_error;

namespace {

const Fixture& fixture() {
    static const Fixture f("objectives_feature_map.txt");
    return f;
}

// Which of the objective's losses a check looks at.
using LossOf = std::function<Tensor(Objective&, const ObjectiveInputs&)>;
const LossOf main_loss = [](Objective& o, const ObjectiveInputs& in) { return o.forward(in); };
const LossOf pre_loss = [](Objective& o, const ObjectiveInputs& in) { return o.pre_stage_loss(in); };

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

// The case's features from the fixture, float32, the student's requiring gradients.
Features fixture_features(const std::string& c) {
    const Fixture& fx = fixture();
    Features f;
    for (int i = 0; fx.has(c + ".s" + std::to_string(i)); ++i) {
        Tensor s = fx.f32(c + ".s" + std::to_string(i));
        s.set_requires_grad(true);
        f.students.push_back(s);
        f.teachers.push_back(fx.f32(c + ".t" + std::to_string(i)));
    }
    REQUIRE(!f.students.empty());
    return f;
}

// Builds the objective for case c's shapes with the case's connector state (strict: the names
// must be PyTorch's).
std::shared_ptr<Objective> build_for_case(const std::string& name, const std::string& c,
                                          const Features& f,
                                          const std::vector<std::string>& overrides) {
    auto objective = create_objective(name, config_for(name, overrides), setup_for(f));
    std::map<std::string, Tensor> state;
    for (const auto& [key, _] : objective->state_dict()) state[key] = fixture()[c + ".param." + key];
    objective->load_state_dict(state);
    objective->train();
    return objective;
}

// max |actual - expected| relative to `scale`.
double error_at_scale(const Tensor& actual, const Tensor& expected, double scale) {
    REQUIRE(actual.defined());
    REQUIRE(actual.shape() == expected.shape());
    return testing::max_abs_diff(actual, expected) / std::max(scale, 1e-30);
}

// Float32 loss and gradients against the fixture's values stored under `expected` (case c, or
// c + ".p3" for a second loss of the same inputs). Each gradient is compared relative to the
// largest gradient entry of the whole case: a few are zero in exact arithmetic (a conv bias
// followed by BatchNorm in training mode), where only a case-wide scale makes sense.
void check_fixture(const std::string& name, const std::string& c, const std::string& expected,
                   const std::vector<std::string>& overrides = {}, const LossOf& loss_of = main_loss) {
    CAPTURE(name);
    CAPTURE(expected);
    const Fixture& fx = fixture();
    Features f = fixture_features(c);
    auto objective = build_for_case(name, c, f, overrides);
    Tensor loss = loss_of(*objective, inputs_for(f.students, f.teachers));
    REQUIRE(loss.shape() == Shape{});
    CHECK(relative_error(loss, fx[expected + ".loss"]) < 1e-5);
    loss.backward();
    // (key, gradient) for every student feature and parameter: undefined where none arrived
    std::vector<std::pair<std::string, Tensor>> grads;
    for (std::size_t i = 0; i < f.students.size(); ++i)
        grads.emplace_back(expected + ".grad.s" + std::to_string(i), f.students[i].grad());
    for (const auto& [pname, p] : objective->named_parameters())
        grads.emplace_back(expected + ".grad.param." + pname, p.grad());
    double scale = 0;
    for (const auto& [key, _] : grads)
        if (fx.has(key)) scale = std::max(scale, max(abs(fx[key])).item());
    for (const auto& [key, grad] : grads) {
        CAPTURE(key);
        if (fx.has(key))
            CHECK(error_at_scale(grad, fx[key], scale) < 1e-4);
        else
            CHECK(!grad.defined());  // e.g. FT's paraphraser in the main stage: frozen
    }
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

// Random float64 features of these shapes; teachers without a graph.
Features random_features(const std::vector<Shape>& students, const std::vector<Shape>& teachers,
                         std::uint64_t seed) {
    Features f;
    for (std::size_t i = 0; i < students.size(); ++i) {
        f.students.push_back(testing::leaf(students[i], seed + 2 * i));
        f.teachers.push_back(testing::leaf(teachers[i], seed + 2 * i + 1).detach());
    }
    return f;
}

// Finite differences in float64 through the student's features (when check_students) and every
// connector parameter whose name starts with one of `param_prefixes` ("" for all).
void check_gradients(const std::string& name, const Features& f,
                     const std::vector<std::string>& overrides = {}, const LossOf& loss_of = main_loss,
                     const std::vector<std::string>& param_prefixes = {""}, bool check_students = true) {
    CAPTURE(name);
    auto objective = create_objective(name, config_for(name, overrides), setup_for(f));
    to_f64(*objective);
    objective->train();
    std::vector<Tensor> inputs;
    for (const Tensor& s : f.students) {
        Tensor x = s.detach().clone();
        x.set_requires_grad(check_students);
        inputs.push_back(x);
    }
    const std::size_t n = inputs.size();
    for (const auto& [pname, p] : objective->named_parameters())
        for (const std::string& prefix : param_prefixes)
            if (pname.rfind(prefix, 0) == 0) {
                inputs.push_back(p);
                break;
            }
    auto fn = [&](const std::vector<Tensor>& x) {
        std::vector<Tensor> students(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
        return loss_of(*objective, inputs_for(students, f.teachers));
    };
    CHECK(gradcheck(fn, inputs));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the table

TEST_CASE("objectives feature_map: the table's rows") {
    const std::vector<std::string> names = {"fitnet", "at", "sp", "nst", "fsp", "ft", "ab", "ofd"};
    for (const std::string& name : names) {
        const ObjectiveEntry& e = find_objective(name);
        CHECK(!e.paper.empty());
        CHECK(!e.reference.empty());
        CHECK(!e.taps.empty());
        CHECK(!e.defaults.empty());
        CHECK(!e.uses_teacher_logits);
        CHECK(!e.uses_labels);
        CHECK(e.min_pairs >= 1);
    }
    CHECK(find_objective("fitnet").max_pairs == 1);
    CHECK(find_objective("ft").max_pairs == 1);
    CHECK(find_objective("fsp").min_pairs == 2);
    CHECK(find_objective("at").max_pairs == -1);
    Config c = config_for("fitnet");
    CHECK(c.get_string("fitnet.connector") == "conv");
    CHECK(c.get_int("fitnet.stage1_epochs") == 0);
    CHECK(config_for("at").get_double("at.p") == 2.0);
    CHECK(config_for("ab").get_double("ab.margin") == 1.0);
    CHECK(config_for("ab").get_int("ab.init_epochs") == 30);
    CHECK(config_for("ft").get_int("ft.paraphraser_epochs") == 30);
    CHECK(config_for("ft").get_double("ft.rate") == 0.5);
    CHECK(config_for("fsp").get_int("fsp.init_epochs") == 30);
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures

TEST_CASE("objectives feature_map: fitnet matches RepDistiller's HintLoss + ConvReg") {
    check_fixture("fitnet", "fitnet_down", "fitnet_down");  // conv 3x3 stride 2
    check_fixture("fitnet", "fitnet_up", "fitnet_up");      // transposed conv 4x4 stride 2
    check_fixture("fitnet", "fitnet_rect", "fitnet_rect");  // conv with a 2x3 kernel
    check_fixture("fitnet", "fitnet_identity", "fitnet_identity", {"connector=identity"});
    // the paper's two stages: the hint loss alone first, then a zero that keeps the graph
    check_fixture("fitnet", "fitnet_down", "fitnet_down", {"stage1_epochs=3"}, pre_loss);
    Features f = fixture_features("fitnet_down");
    auto two_stage = create_objective("fitnet", config_for("fitnet", {"stage1_epochs=3"}), setup_for(f));
    CHECK(two_stage->pre_stage_epochs() == 3);
    Tensor zero = two_stage->forward(inputs_for(f.students, f.teachers));
    CHECK(zero.item() == 0.0);
    zero.backward();
    CHECK(max(abs(f.students[0].grad())).item() == 0.0);
}

TEST_CASE("objectives feature_map: at, sp, nst and fsp match RepDistiller") {
    check_fixture("at", "at", "at");
    check_fixture("at", "at", "at.p3", {"p=3"});
    check_fixture("sp", "sp", "sp");
    check_fixture("nst", "nst", "nst");
    check_fixture("fsp", "fsp", "fsp", {"init_epochs=0"});
    check_fixture("fsp", "fsp", "fsp", {}, pre_loss);  // the default: FSP trains in the pre-stage
}

TEST_CASE("objectives feature_map: ft, ab and ofd match their references") {
    check_fixture("ft", "ft", "ft");                   // translator vs the frozen paraphraser
    check_fixture("ft", "ft", "ft.pre", {}, pre_loss);  // the paraphraser's reconstruction
    check_fixture("ab", "ab", "ab", {}, pre_loss);     // the initialization stage (default)
    check_fixture("ab", "ab", "ab", {"init_epochs=0"});
    check_fixture("ofd", "ofd", "ofd");
}

// ---------------------------------------------------------------------------------------------
// float64 gradient checks: student features and connector parameters

TEST_CASE("objectives feature_map: gradcheck fitnet (every regressor kind) and at") {
    check_gradients("fitnet", random_features({{3, 2, 4, 4}}, {{3, 3, 2, 2}}, 11));
    check_gradients("fitnet", random_features({{2, 2, 2, 3}}, {{2, 3, 4, 6}}, 12));
    check_gradients("fitnet", random_features({{3, 2, 4, 5}}, {{3, 3, 3, 3}}, 13));
    check_gradients("fitnet", random_features({{3, 5, 7}}, {{3, 5, 7}}, 14), {"connector=identity"});
    check_gradients("fitnet", random_features({{3, 2, 3, 3}}, {{3, 3, 3, 3}}, 15), {"stage1_epochs=2"},
                    pre_loss);
    const Features at = random_features({{3, 2, 4, 4}, {2, 3, 3, 3}, {1, 3, 2, 3}},
                                        {{3, 5, 2, 2}, {2, 2, 3, 3}, {1, 1, 4, 6}}, 21);
    check_gradients("at", at);
    check_gradients("at", at, {"p=3"});
}

TEST_CASE("objectives feature_map: fitnet and at read a ViT's tokens as the map of their patch grid") {
    // A ViT teacher's tokens (B, 1 + 3*3, C) against a CNN student's 3x3 map: the same loss as
    // with the teacher's map written out by hand (class token dropped, (B, C, 3, 3)).
    const Features with_tokens = random_features({{2, 3, 3, 3}}, {{2, 10, 5}}, 41);
    const Tensor tokens = with_tokens.teachers[0];
    const Tensor grid = transpose(narrow(tokens, 1, 1, 9), 1, 2).reshape({2, 5, 3, 3});
    const Features with_map{with_tokens.students, {grid}};
    for (const char* name : {"fitnet", "at"}) {
        CAPTURE(name);
        auto a = create_objective(name, config_for(name), setup_for(with_tokens));
        auto b = create_objective(name, config_for(name), setup_for(with_map));
        to_f64(*a);
        to_f64(*b);
        const double from_tokens = a->forward(inputs_for(with_tokens.students, with_tokens.teachers)).item();
        const double from_map = b->forward(inputs_for(with_map.students, with_map.teachers)).item();
        CHECK(from_tokens > 0);
        CHECK(from_tokens == from_map);
    }
    // tokens on the student's side too, and gradients through the reshaping
    check_gradients("fitnet", with_tokens);
    check_gradients("at", with_tokens);
    check_gradients("at", random_features({{2, 17, 4}}, {{2, 3, 4, 4}}, 42));  // student ViT, 4x4 grid
    // a token count that is no grid is refused, naming the objective and the side
    const Features odd = random_features({{2, 3, 3, 3}}, {{2, 7, 5}}, 43);
    CHECK_THROWS_WITH_AS(create_objective("at", config_for("at"), setup_for(odd)),
                         doctest::Contains("at: teacher feature 'p0': 7 tokens are neither a square grid"),
                         Error);
    CHECK_THROWS_WITH_AS(create_objective("fitnet", config_for("fitnet"), setup_for(odd)),
                         doctest::Contains("fitnet: the teacher feature: 7 tokens are neither"), Error);
}

TEST_CASE("objectives feature_map: gradcheck sp, nst and fsp") {
    check_gradients("sp", random_features({{4, 3, 2, 2}, {3, 5}}, {{4, 2, 3, 3}, {3, 7}}, 31));
    check_gradients("sp", random_features({{1, 3}}, {{1, 2}}, 32));
    check_gradients("nst", random_features({{3, 2, 4, 4}, {2, 3, 3, 3}}, {{3, 5, 2, 2}, {2, 1, 3, 3}}, 41));
    const Features fsp = random_features({{2, 2, 4, 4}, {2, 3, 4, 4}, {2, 3, 2, 2}},
                                         {{2, 2, 2, 2}, {2, 3, 4, 4}, {2, 3, 2, 2}}, 51);
    check_gradients("fsp", fsp, {"init_epochs=0"});
    check_gradients("fsp", fsp, {}, pre_loss);
}

TEST_CASE("objectives feature_map: gradcheck ft, ab and ofd") {
    const Features ft = random_features({{3, 3, 3, 3}}, {{3, 2, 3, 3}}, 61);
    check_gradients("ft", ft, {}, main_loss, {"translator."});
    check_gradients("ft", ft, {}, pre_loss, {"paraphraser."}, /*check_students=*/false);
    const Features ab = random_features({{3, 2, 4, 4}, {3, 3, 2, 2}}, {{3, 3, 2, 2}, {3, 3, 2, 2}}, 71);
    check_gradients("ab", ab, {}, pre_loss);
    check_gradients("ab", ab, {"init_epochs=0", "margin=0.5"});
    check_gradients("ofd", random_features({{3, 2, 3, 3}, {2, 3, 2, 2}}, {{3, 3, 3, 3}, {2, 4, 2, 2}}, 81));
}

// ---------------------------------------------------------------------------------------------
// stages, margins, initialization

TEST_CASE("objectives feature_map: stages: pre-stage epochs, and zero main losses that keep the graph") {
    const Features f = random_features({{2, 3, 2, 2}, {2, 3, 2, 2}}, {{2, 3, 2, 2}, {2, 3, 2, 2}}, 91);
    auto at = create_objective("at", config_for("at"), setup_for(f));
    CHECK(at->pre_stage_epochs() == 0);
    CHECK_THROWS_WITH_AS(at->pre_stage_loss(inputs_for(f.students, f.teachers)),
                         doctest::Contains("has no pre-training stage"), Error);
    CHECK(create_objective("ft", config_for("ft", {"paraphraser_epochs=5"}),
                           setup_for(random_features({{2, 3, 2, 2}}, {{2, 4, 2, 2}}, 1)))
              ->pre_stage_epochs() == 5);
    for (const std::string& name : {"ab", "fsp"}) {
        CAPTURE(name);
        auto objective = create_objective(name, config_for(name), setup_for(f));
        CHECK(objective->pre_stage_epochs() == 30);
        for (const Tensor& s : f.students) s.impl().grad.reset();
        Tensor zero = objective->forward(inputs_for(f.students, f.teachers));
        CHECK(zero.shape() == Shape{});
        CHECK(zero.item() == 0.0);
        zero.backward();
        CHECK(max(abs(f.students[0].grad())).item() == 0.0);
        CHECK(create_objective(name, config_for(name, {"init_epochs=0"}), setup_for(f))
                  ->pre_stage_epochs() == 0);
    }
}

TEST_CASE("objectives feature_map: ofd margins from the teacher's BatchNorm, and set_margins") {
    const Fixture& fx = fixture();
    Tensor m = OverhaulDistillation::margins_from_batch_norm(fx["ofd_margin.weight"], fx["ofd_margin.bias"]);
    CHECK(relative_error(m, fx["ofd_margin.margin"]) < 1e-12);
    CHECK(m.dtype() == DType::f64);
    // an untrained BatchNorm (weight 1, bias 0): -sqrt(2 / pi); a constant response: min(bias, 0)
    Tensor edge = OverhaulDistillation::margins_from_batch_norm(from_vector<float>({1, 0, 0}),
                                                                from_vector<float>({0, -0.5f, 2}));
    CHECK(edge.dtype() == DType::f32);
    const std::vector<double> e = edge.to_vector<double>();
    CHECK(e[0] == doctest::Approx(-std::sqrt(2 / std::numbers::pi)).epsilon(1e-6));
    CHECK(e[1] == doctest::Approx(-0.5));
    CHECK(e[2] == 0.0);

    Features f = random_features({{2, 2, 3, 3}, {2, 3, 2, 2}}, {{2, 3, 3, 3}, {2, 4, 2, 2}}, 3);
    auto objective = create_objective("ofd", config_for("ofd"), setup_for(f));
    auto* ofd = dynamic_cast<OverhaulDistillation*>(objective.get());
    REQUIRE(ofd != nullptr);
    std::map<std::string, Tensor> state;
    for (const auto& [k, v] : objective->state_dict()) state[k] = v;
    REQUIRE(state.count("margin.1") == 1);
    CHECK(state["margin.1"].shape() == Shape{1, 4, 1, 1});
    CHECK(state["margin.1"].to_vector<double>()[2] == doctest::Approx(-std::sqrt(2 / std::numbers::pi)));
    ofd->set_margins(1, from_vector<double>({-1, -2, -3, -4}));
    CHECK(state["margin.1"].to_vector<double>() == std::vector<double>{-1, -2, -3, -4});
    CHECK(state["margin.1"].dtype() == DType::f32);
    CHECK_THROWS_WITH_AS(ofd->set_margins(1, from_vector<double>({1, 2})),
                         doctest::Contains("has 4 teacher channels"), Error);
    CHECK_THROWS_WITH_AS(ofd->set_margins(2, from_vector<double>({1, 2})),
                         doctest::Contains("set_margins: pair 2 of 2"), Error);
    CHECK_THROWS_WITH_AS(
        OverhaulDistillation::margins_from_batch_norm(from_vector<double>({1, 2}), from_vector<double>({1})),
        doctest::Contains("ofd: margins need BatchNorm weight and bias of one shape"), Error);
}

TEST_CASE("objectives feature_map: connectors are initialized as the references, from the seed") {
    // OFD: conv 1x1 ~ N(0, sqrt(2 / tC)), BatchNorm weight 1, bias 0
    Features big = random_features({{1, 64, 1, 1}}, {{1, 32, 1, 1}}, 5);
    auto ofd = create_objective("ofd", config_for("ofd"), setup_for(big));
    std::map<std::string, Tensor> state;
    for (const auto& [k, v] : ofd->state_dict()) state[k] = v;
    Tensor w = state.at("connectors.0.0.weight");
    CHECK(w.shape() == Shape{32, 64, 1, 1});
    const double spread = retort::std(w.reshape({-1}), {0}).item();
    CHECK(spread == doctest::Approx(std::sqrt(2.0 / 32)).epsilon(0.1));
    CHECK(std::abs(mean(w).item()) < 0.02);
    CHECK(max(abs(state.at("connectors.0.1.weight") - 1.0)).item() == 0.0);
    CHECK(max(abs(state.at("connectors.0.1.bias"))).item() == 0.0);

    // ConvReg: PyTorch's default conv init, U(+-1/sqrt(fan_in)) for weight and bias
    Features f = random_features({{2, 8, 4, 4}}, {{2, 6, 2, 2}}, 6);
    auto fitnet = create_objective("fitnet", config_for("fitnet"), setup_for(f));
    state.clear();
    for (const auto& [k, v] : fitnet->state_dict()) state[k] = v;
    const double bound = 1.0 / std::sqrt(8.0 * 9.0);
    Tensor cw = state.at("regressor.conv.weight");
    CHECK(cw.shape() == Shape{6, 8, 3, 3});
    CHECK(max(abs(cw)).item() <= bound);
    CHECK(max(abs(cw)).item() > 0.8 * bound);
    CHECK(max(abs(state.at("regressor.conv.bias"))).item() <= bound);
    // the same seed gives the same connector; another seed another
    auto again = create_objective("fitnet", config_for("fitnet"), setup_for(f));
    CHECK(testing::max_abs_diff(again->state_dict()[0].second, cw) == 0.0);
    ObjectiveSetup other = setup_for(f);
    other.seed = 8;
    CHECK(testing::max_abs_diff(create_objective("fitnet", config_for("fitnet"), other)->state_dict()[0].second,
                                cw) > 0.0);
    // FT's modules carry RepDistiller's nn.Sequential indices
    Features ft_f = random_features({{2, 3, 2, 2}}, {{2, 4, 2, 2}}, 7);
    std::vector<std::string> names;
    for (const auto& [k, _] : create_objective("ft", config_for("ft"), setup_for(ft_f))->state_dict())
        names.push_back(k);
    const std::vector<std::string> expected_start = {
        "paraphraser.encoder.0.weight", "paraphraser.encoder.0.bias", "paraphraser.encoder.3.weight",
        "paraphraser.encoder.3.bias",   "paraphraser.encoder.6.weight", "paraphraser.encoder.6.bias",
        "paraphraser.decoder.0.weight", "paraphraser.decoder.0.bias"};
    REQUIRE(names.size() > expected_start.size());
    CHECK(std::vector<std::string>(names.begin(), names.begin() + 8) == expected_start);
}

// ---------------------------------------------------------------------------------------------
// errors

TEST_CASE("objectives feature_map: errors name the objective, the pair and the shapes") {
    const Features one = random_features({{2, 3, 4, 4}}, {{2, 3, 4, 4}}, 1);
    const Features two = random_features({{2, 3, 4, 4}, {2, 3, 2, 2}}, {{2, 3, 4, 4}, {2, 3, 2, 2}}, 2);
    // pair counts, at setup and per batch
    CHECK_THROWS_WITH_AS(create_objective("fitnet", config_for("fitnet"), setup_for(two)),
                         doctest::Contains("objective fitnet needs 1 feature pair(s), got 2"), Error);
    CHECK_THROWS_WITH_AS(create_objective("fsp", config_for("fsp"), setup_for(one)),
                         doctest::Contains("objective fsp needs at least 2 feature pair(s), got 1"), Error);
    auto at = create_objective("at", config_for("at"), setup_for(two));
    CHECK_THROWS_WITH_AS(at->forward(inputs_for(one.students, one.teachers)),
                         doctest::Contains("at: expected 2 feature pair(s) (as at setup), got 1"), Error);
    // batch sizes
    Features bad = random_features({{2, 3, 4, 4}}, {{3, 3, 4, 4}}, 3);
    for (const std::string& name : {"fitnet", "at", "sp", "nst", "ft", "ab", "ofd"}) {
        CAPTURE(name);
        auto objective = create_objective(name, config_for(name), setup_for(one));
        CHECK_THROWS_WITH_AS(objective->forward(inputs_for(bad.students, bad.teachers)),
                             doctest::Contains((name + ": pair 'p0': student batch 2 but teacher batch 3").c_str()),
                             Error);
    }
    // a feature of another shape than at setup
    auto fitnet = create_objective("fitnet", config_for("fitnet"), setup_for(one));
    Features other = random_features({{2, 3, 4, 5}}, {{2, 3, 4, 4}}, 4);
    CHECK_THROWS_WITH_AS(fitnet->forward(inputs_for(other.students, other.teachers)),
                         doctest::Contains("fitnet: the student feature has shape (2, 3, 4, 5) but the "
                                           "objective was built for (2, 3, 4, 4)"),
                         Error);
    // hyperparameters out of range
    CHECK_THROWS_WITH_AS(config_for("at", {"p=0.5"}), doctest::Contains("at.p must be in [1, 16], got 0.5"), Error);
    CHECK_THROWS_WITH_AS(config_for("ab", {"margin=0"}), doctest::Contains("ab.margin must be in (0, 1e+06], got 0"), Error);
    CHECK_THROWS_WITH_AS(config_for("fitnet", {"connector=linear"}), doctest::Contains("fitnet.connector must be one of conv, identity"), Error);
    CHECK_THROWS_WITH_AS(config_for("fitnet", {"stage1_epochs=-1"}), doctest::Contains("fitnet.stage1_epochs must be in [0, 100000], got -1"), Error);
    CHECK_THROWS_WITH_AS(
        create_objective("ft", config_for("ft", {"rate=0.1"}), setup_for(random_features({{2, 3, 2, 2}}, {{2, 4, 2, 2}}, 5))),
        doctest::Contains("ft: rate 0.1 of the teacher's 4 channels leaves no factor channel"), Error);
    // shapes a method cannot use
    CHECK_THROWS_WITH_AS(
        create_objective("fitnet", config_for("fitnet", {"connector=identity"}),
                         setup_for(random_features({{2, 3, 4, 4}}, {{2, 5, 4, 4}}, 6))),
        doctest::Contains("fitnet: connector = identity needs equal student and teacher shapes, got "
                          "(2, 3, 4, 4) and (2, 5, 4, 4)"),
        Error);
    CHECK_THROWS_WITH_AS(
        create_objective("fitnet", config_for("fitnet"), setup_for(random_features({{2, 3, 3, 3}}, {{2, 5, 4, 4}}, 7))),
        doctest::Contains("fitnet: no convolutional regressor maps the student's 3x3 map onto the teacher's 4x4"),
        Error);
    CHECK_THROWS_WITH_AS(
        create_objective("fitnet", config_for("fitnet"), setup_for(random_features({{2, 3, 4, 2}}, {{2, 5, 2, 2}}, 8))),
        doctest::Contains("fitnet: the regressor chosen from the heights maps 4x2 to 2x1"), Error);
    CHECK_THROWS_WITH_AS(
        create_objective("fitnet", config_for("fitnet"), setup_for(random_features({{2, 3}}, {{2, 3, 4, 4}}, 9))),
        doctest::Contains("fitnet: the student feature: expected a map (B, C, H, W) or tokens (B, N, C), got (2, 3)"), Error);
    CHECK_THROWS_WITH_AS(
        create_objective("fsp", config_for("fsp"),
                         setup_for(random_features({{2, 3, 4, 4}, {2, 3, 2, 2}}, {{2, 3, 4, 4}, {2, 5, 2, 2}}, 10))),
        doctest::Contains("fsp: pair 'p1': the student has 3 channels and the teacher 5"), Error);
    CHECK_THROWS_WITH_AS(
        create_objective("ofd", config_for("ofd"), setup_for(random_features({{2, 3, 4, 4}}, {{2, 5, 2, 2}}, 11))),
        doctest::Contains("ofd: pair 'p0': student map (2, 3, 4, 4) and teacher map (2, 5, 2, 2) differ in size"),
        Error);
    Features crossed = random_features({{2, 3, 4, 2}}, {{2, 3, 2, 4}}, 12);
    auto nst = create_objective("nst", config_for("nst"), setup_for(crossed));
    CHECK_THROWS_WITH_AS(nst->forward(inputs_for(crossed.students, crossed.teachers)),
                         doctest::Contains("nst: pair 'p0': maps of 4x2 and 2x4 cannot be pooled to one size"),
                         Error);
    // the transposed convolution's own checks
    CHECK_THROWS_WITH_AS(conv_transpose2d(zeros({1, 2, 3, 3}), zeros({3, 2, 4, 4}), Tensor(), 2, 1),
                         doctest::Contains("conv_transpose2d: input (1, 2, 3, 3) and weight (3, 2, 4, 4) do not fit"),
                         Error);
}
