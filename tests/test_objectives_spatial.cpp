// tests/test_objectives_spatial.cpp: the spatial-matching objectives tat and cskd, and the DeiT's
// eval_head = cskd output: values and gradients against PyTorch fixtures
// (tests/fixtures/gen_objectives_spatial.py), float64 gradient checks through the student's
// inputs and TaT's connectors, CSKD against a loop written from its formula, the schedules, the
// initialization, `retort objective --method cskd` end to end, and every error path.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "distill/objective.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"
#include "tests/model_check.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::relative_error;

namespace {

const Fixture& fixture() {
    static const Fixture f("objectives_spatial.txt");
    return f;
}

// The section of `name`, declared, with "key=value" overrides applied.
Config config_for(const std::string& name, const std::vector<std::string>& overrides = {}) {
    Config c;
    find_objective(name).declare(c);
    for (const std::string& o : overrides) c.apply_override(name + "." + o);
    return c;
}

struct Pairs {
    std::vector<Tensor> students, teachers;
};

ObjectiveSetup setup_for(const Pairs& p) {
    ObjectiveSetup setup;
    for (std::size_t i = 0; i < p.students.size(); ++i)
        setup.pairs.push_back({"p" + std::to_string(i), p.students[i].shape(), p.teachers[i].shape()});
    setup.seed = 11;
    return setup;
}

ObjectiveInputs inputs_for(const Pairs& p, std::int64_t epoch = 0, std::int64_t epochs = 0) {
    ObjectiveInputs in;
    for (std::size_t i = 0; i < p.students.size(); ++i)
        in.features.push_back({"p" + std::to_string(i), p.students[i], p.teachers[i]});
    in.epoch = epoch;
    in.epochs = epochs;
    return in;
}

// Case c of the fixture in float32, the students requiring gradients.
Pairs fixture_pairs(const std::string& c) {
    const Fixture& fx = fixture();
    Pairs p;
    for (int i = 0; fx.has(c + ".s" + std::to_string(i)); ++i) {
        Tensor s = fx.f32(c + ".s" + std::to_string(i));
        s.set_requires_grad(true);
        p.students.push_back(s);
        p.teachers.push_back(fx.f32(c + ".t" + std::to_string(i)));
    }
    REQUIRE(!p.students.empty());
    return p;
}

struct Schedule {
    std::int64_t epoch = 0, epochs = 0;
};

// Float32 loss and gradients of case c against the fixture's values under `expected`: the loss
// within 1e-5 relative, each gradient within 1e-4 of its largest entry.
void check_fixture(const std::string& name, const std::string& c, const std::string& expected,
                   const std::vector<std::string>& overrides = {}, Schedule when = {}) {
    CAPTURE(name);
    CAPTURE(expected);
    const Fixture& fx = fixture();
    Pairs p = fixture_pairs(c);
    auto objective = create_objective(name, config_for(name, overrides), setup_for(p));
    std::map<std::string, Tensor> state;
    for (const auto& [key, _] : objective->state_dict()) state[key] = fx[c + ".param." + key];
    objective->load_state_dict(state);
    objective->train();
    Tensor loss = objective->forward(inputs_for(p, when.epoch, when.epochs));
    REQUIRE(loss.shape() == Shape{});
    CHECK(relative_error(loss, fx[expected + ".loss"]) < 1e-5);
    loss.backward();
    for (std::size_t i = 0; i < p.students.size(); ++i) {
        CAPTURE(i);
        REQUIRE(p.students[i].grad().defined());
        CHECK(relative_error(p.students[i].grad(), fx[expected + ".grad.s" + std::to_string(i)]) < 1e-4);
    }
    for (const auto& [pname, param] : objective->named_parameters()) {
        CAPTURE(pname);
        REQUIRE(param.grad().defined());
        CHECK(relative_error(param.grad(), fx[expected + ".grad.param." + pname]) < 1e-4);
    }
}

// Gives every floating parameter and buffer of m float64 storage in place (the layers keep the
// same tensor handles and see the change), for the float64 gradient checks.
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

// Random float64 inputs of these shapes (teachers without a graph).
Pairs random_pairs(const std::vector<Shape>& students, const std::vector<Shape>& teachers,
                   std::uint64_t seed) {
    Pairs p;
    for (std::size_t i = 0; i < students.size(); ++i) {
        p.students.push_back(testing::leaf(students[i], seed + 2 * i));
        p.teachers.push_back(testing::leaf(teachers[i], seed + 2 * i + 1).detach());
    }
    return p;
}

// Finite differences in float64 through every student input and every objective parameter.
void check_gradients(const std::string& name, const Pairs& p,
                     const std::vector<std::string>& overrides = {}, Schedule when = {}) {
    CAPTURE(name);
    auto objective = create_objective(name, config_for(name, overrides), setup_for(p));
    to_f64(*objective);
    objective->train();
    std::vector<Tensor> inputs = p.students;
    const std::size_t n = inputs.size();
    for (const auto& [_, param] : objective->named_parameters()) inputs.push_back(param);
    auto fn = [&](const std::vector<Tensor>& x) {
        Pairs q{std::vector<Tensor>(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n)), p.teachers};
        return objective->forward(inputs_for(q, when.epoch, when.epochs));
    };
    CHECK(gradcheck(fn, inputs));
}

double loss_value(const std::string& name, const Pairs& p, const std::vector<std::string>& overrides,
                  Schedule when = {}) {
    NoGradGuard no_grad;
    auto objective = create_objective(name, config_for(name, overrides), setup_for(p));
    return objective->forward(inputs_for(p, when.epoch, when.epochs)).item();
}

// A message check for an expression that must throw retort::Error.
#define CHECK_REFUSED(expr, text) \
    CHECK_THROWS_WITH_AS(expr, doctest::Contains(doctest::String(std::string(text).c_str())), \
                         retort::Error)

}  // namespace

// ---------------------------------------------------------------------------------------------
// the table

TEST_CASE("objectives spatial: the table's rows and their declared defaults") {
    for (const std::string name : {"tat", "cskd"}) {
        CAPTURE(name);
        const ObjectiveEntry& e = find_objective(name);
        CHECK(!e.paper.empty());
        CHECK(!e.reference.empty());
        CHECK(!e.taps.empty());
        CHECK(!e.defaults.empty());
        CHECK(!e.default_taps.empty());
        CHECK(!e.uses_teacher_logits);
        CHECK(!e.uses_labels);
        CHECK(e.min_pairs == 1);
    }
    CHECK(find_objective("tat").max_pairs == 1);
    CHECK(find_objective("tat").default_taps == "feature_map");
    CHECK(find_objective("cskd").max_pairs == 2);
    CHECK(find_objective("cskd").default_taps == "dense_dist_logits:dense_logits, dist_logits:logits");

    const Config tat = config_for("tat");
    CHECK(tat.get_double("tat.beta") == 1.0);
    CHECK(tat.get_double("tat.gamma") == 0.4);
    CHECK(tat.get_int("tat.global_max") == 64);
    for (const char* key :
         {"tat.patches_h", "tat.patches_w", "tat.groups", "tat.anchor_h", "tat.anchor_w"})
        CHECK(tat.get_int(key) == 4);
    const Config cskd = config_for("cskd");
    CHECK(cskd.get_string("cskd.alpha") == "schedule");
    CHECK(cskd.get_string("cskd.schedule") == "linear");
    CHECK(cskd.get_double("cskd.dist_weight") == 0.5);
}

// ---------------------------------------------------------------------------------------------
// tat

TEST_CASE("objectives spatial: tat matches the authors' TaT and TaT-seg formulas in PyTorch") {
    check_fixture("tat", "tat_global", "tat_global");  // one global attention, 5x5
    check_fixture("tat", "tat_vit", "tat_vit");        // ViT tokens, the student's map pooled
    check_fixture("tat", "tat_hier", "tat_hier", {"global_max=32"});  // patch groups + anchors
    check_fixture("tat", "tat_hier", "tat_hier.v2",
                  {"global_max=32", "patches_h=3", "patches_w=2", "groups=3", "anchor_h=2",
                   "anchor_w=3", "beta=0.7", "gamma=1.3"});
}

TEST_CASE("objectives spatial: tat gradients in float64 (student inputs and connectors)") {
    // global attention over 3x4 positions, odd channel counts
    check_gradients("tat", random_pairs({{3, 2, 3, 4}}, {{3, 3, 3, 4}}, 1));
    // patch groups (2x2 patches of 2x3, a row dropped) and a 2x3 anchor grid
    check_gradients("tat", random_pairs({{2, 2, 5, 6}}, {{2, 2, 5, 6}}, 3),
                    {"global_max=8", "patches_h=2", "patches_w=2", "groups=2", "anchor_h=2",
                     "anchor_w=3", "gamma=0.6"});
    // a ViT teacher's tokens (class + 2x2) against a 4x4 student map, pooled
    check_gradients("tat", random_pairs({{2, 2, 4, 4}}, {{2, 5, 3}}, 5));
    // a token student (2x2 grid, no prefix) against a map, batch of one
    check_gradients("tat", random_pairs({{1, 4, 3}}, {{1, 2, 2, 2}}, 7));
}

TEST_CASE("objectives spatial: tat's connectors are PyTorch's Conv2d and BatchNorm2d") {
    Pairs p = random_pairs({{2, 6, 4, 4}}, {{2, 5, 4, 4}}, 9);
    auto objective = create_objective("tat", config_for("tat"), setup_for(p));
    std::set<std::string> names;
    for (const auto& [name, _] : objective->state_dict()) names.insert(name);
    CHECK(names == std::set<std::string>{
                       "query.conv2d.weight", "query.l2norm.weight", "query.l2norm.bias",
                       "query.l2norm.running_mean", "query.l2norm.running_var",
                       "value.conv2d.weight", "value.l2norm.weight", "value.l2norm.bias",
                       "value.l2norm.running_mean", "value.l2norm.running_var"});
    const double bound = 1.0 / std::sqrt(6.0 * 9.0);  // kaiming_uniform(a = sqrt 5), fan_in 54
    for (const char* conv : {"query.conv2d.weight", "value.conv2d.weight"}) {
        CAPTURE(conv);
        Tensor w;
        for (const auto& [name, t] : objective->state_dict())
            if (name == conv) w = t;
        REQUIRE(w.shape() == Shape{5, 6, 3, 3});
        CHECK(max(abs(w)).item() <= bound);
        CHECK(max(abs(w)).item() > 0.8 * bound);  // spread over the range, not all near zero
    }
    for (const auto& [name, t] : objective->state_dict()) {
        CAPTURE(name);
        if (name.ends_with("l2norm.weight") || name.ends_with("running_var"))
            CHECK(min(t).item() == 1.0);
        if (name.ends_with("l2norm.bias") || name.ends_with("running_mean"))
            CHECK(max(abs(t)).item() == 0.0);
    }
    // the teacher gets nothing: its map is a constant
    Tensor teacher = p.teachers[0].detach().clone().to(DType::f32);
    teacher.set_requires_grad(true);
    Tensor student = p.students[0].detach().to(DType::f32);
    student.set_requires_grad(true);
    Tensor loss = objective->forward(inputs_for(Pairs{{student}, {teacher}}));
    loss.backward();
    CHECK(student.grad().defined());
    CHECK(!teacher.grad().defined());
}

namespace {

// Building `name` for pairs of these shapes (with these overrides) must fail with `text`.
void check_refused_setup(const std::string& name, const std::vector<Shape>& students,
                         const std::vector<Shape>& teachers, const std::string& text,
                         const std::vector<std::string>& overrides = {}) {
    CAPTURE(text);
    const Config config = config_for(name, overrides);
    CHECK_REFUSED(create_objective(name, config, setup_for(random_pairs(students, teachers, 1))),
                  text);
}

}  // namespace

TEST_CASE("objectives spatial: tat refuses bad pairs, shapes and settings") {
    const Pairs good = random_pairs({{4, 2, 3, 3}}, {{4, 3, 3, 3}}, 13);
    // pair count, at creation and in a batch
    check_refused_setup("tat", {}, {}, "objective tat needs 1 feature pair(s), got 0");
    auto objective = create_objective("tat", config_for("tat"), setup_for(good));
    CHECK_REFUSED(objective->forward(ObjectiveInputs{}),
                  "tat: expected 1 feature pair(s) (as at setup), got 0");
    // batch mismatch
    Pairs mismatched = good;
    mismatched.teachers[0] = narrow(good.teachers[0], 0, 0, 3);
    CHECK_REFUSED(objective->forward(inputs_for(mismatched)),
                  "tat: pair 'p0': student batch 4 but teacher batch 3");
    // a shape other than the one it was built for
    const Pairs wider = random_pairs({{4, 2, 3, 4}}, {{4, 3, 3, 4}}, 15);
    CHECK_REFUSED(objective->forward(inputs_for(wider)),
                  "tat: the student feature has shape (4, 2, 3, 4) but the objective was built "
                  "for (4, 2, 3, 3)");
    // ranks and grids
    check_refused_setup("tat", {{4, 6}}, {{4, 3, 3, 3}},
                        "tat: the student feature must be a map (B, C, H, W) or tokens (B, N, C), "
                        "got (4, 6)");
    check_refused_setup("tat", {{4, 7, 3}}, {{4, 3, 3, 3}},
                        "tat: the student feature: 7 tokens are neither a square grid");
    check_refused_setup("tat", {{4, 2, 4, 8}}, {{4, 3, 8, 4}},
                        "tat: maps of 4x8 (student) and 8x4 (teacher) cannot be pooled to one size");
    // hyperparameters: out of the declared range, groups that split a patch, a map too small
    CHECK_REFUSED(config_for("tat", {"beta=-1"}), "tat.beta must be in");
    CHECK_REFUSED(config_for("tat", {"patches_h=0"}), "tat.patches_h must be in");
    check_refused_setup("tat", {{4, 2, 6, 6}}, {{4, 3, 6, 6}},
                        "tat: groups = 5 must divide the 6x6 = 36 patches of 1x1 that the 6x6 map "
                        "is cut into",
                        {"global_max=16", "groups=5"});
    check_refused_setup("tat", {{4, 2, 3, 3}}, {{4, 3, 3, 3}},
                        "tat: the 3x3 map (above global_max = 4 positions) is too small for 4x4 "
                        "patches",
                        {"global_max=4"});
    check_refused_setup("tat", {{4, 2, 3, 3}}, {{4, 3, 3, 3}},
                        "tat: the 3x3 map (above global_max = 4 positions) is too small for a 4x5 "
                        "anchor grid",
                        {"global_max=4", "patches_h=3", "patches_w=3", "groups=1", "anchor_w=5"});
}

// ---------------------------------------------------------------------------------------------
// cskd

TEST_CASE("objectives spatial: cskd matches the authors' CSKDLoss in PyTorch") {
    // epoch 3 of 10: alpha 0.7 (linear), 0.49 (quadratic), cos(0.15 pi) (cosine); or fixed 0.25
    check_fixture("cskd", "cskd_two", "cskd_two.linear", {}, {3, 10});
    check_fixture("cskd", "cskd_two", "cskd_two.quadratic", {"schedule=quadratic"}, {3, 10});
    check_fixture("cskd", "cskd_two", "cskd_two.cosine", {"schedule=cosine"}, {3, 10});
    check_fixture("cskd", "cskd_two", "cskd_two.fixed", {"alpha=0.25"}, {3, 10});
    // one pair; a student grid coarser than the teacher's (the teacher pooled); epoch 0: alpha 1
    check_fixture("cskd", "cskd_coarse", "cskd_coarse", {}, {0, 10});
}

// The loss from its definition, by loops: S (B, n*n, K) pooled to the teacher's h x h by averaging
// r x r blocks (r = n / h), targets from the fused teacher logits, mean cross-entropy.
double cskd_by_loops(const Tensor& student, const Tensor& teacher, double alpha) {
    const std::int64_t B = teacher.size(0), K = teacher.size(1), h = teacher.size(2);
    const double tokens = static_cast<double>(student.size(1));
    const auto n = static_cast<std::int64_t>(std::llround(std::sqrt(tokens)));
    const std::int64_t r = n / h;
    const std::vector<double> s = student.to_vector<double>(), t = teacher.to_vector<double>();
    double total = 0;
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t y = 0; y < h; ++y)
            for (std::int64_t x = 0; x < h; ++x) {
                std::vector<double> logits(K, 0.0);
                std::int64_t target = 0;
                double best = -1e300;
                for (std::int64_t k = 0; k < K; ++k) {
                    for (std::int64_t dy = 0; dy < r; ++dy)
                        for (std::int64_t dx = 0; dx < r; ++dx) {
                            const std::int64_t token = (y * r + dy) * n + (x * r + dx);
                            logits[k] += s[(b * n * n + token) * K + k] / static_cast<double>(r * r);
                        }
                    double global = 0;
                    for (std::int64_t i = 0; i < h * h; ++i) global += t[(b * K + k) * h * h + i];
                    global /= static_cast<double>(h * h);
                    const double fused = alpha * t[((b * K + k) * h + y) * h + x] + (1 - alpha) * global;
                    if (fused > best) best = fused, target = k;
                }
                double top = *std::max_element(logits.begin(), logits.end()), z = 0;
                for (double l : logits) z += std::exp(l - top);
                total += top + std::log(z) - logits[target];
            }
    return total / static_cast<double>(B * h * h);
}

TEST_CASE("objectives spatial: cskd equals its formula written as loops, alpha from the schedule") {
    const Pairs p = random_pairs({{3, 36, 7}}, {{3, 7, 3, 3}}, 21);  // 6x6 tokens pooled to 3x3
    for (double alpha : {0.0, 0.3, 1.0}) {
        CAPTURE(alpha);
        const double expected = cskd_by_loops(p.students[0], p.teachers[0], alpha);
        CHECK(loss_value("cskd", p, {"alpha=" + std::to_string(alpha)}) ==
              doctest::Approx(expected).epsilon(1e-12));
    }
    auto at = [&](const std::vector<std::string>& overrides, Schedule when) {
        return loss_value("cskd", p, overrides, when);
    };
    const double local = cskd_by_loops(p.students[0], p.teachers[0], 1.0);
    CHECK(at({}, {0, 0}) == doctest::Approx(local).epsilon(1e-12));   // no schedule: alpha 1
    CHECK(at({}, {0, 10}) == doctest::Approx(local).epsilon(1e-12));  // the first epoch: alpha 1
    // linear 1 - 4/10, quadratic (1 - 4/10)^2, cosine cos(pi/2 * 4/10)
    const double x = 0.4;
    const std::vector<std::pair<std::string, double>> schedules = {
        {"linear", 1 - x},
        {"quadratic", (1 - x) * (1 - x)},
        {"cosine", std::cos(std::numbers::pi / 2 * x)}};
    for (const auto& [schedule, alpha] : schedules) {
        CAPTURE(schedule);
        CHECK(at({"schedule=" + schedule}, {4, 10}) ==
              doctest::Approx(cskd_by_loops(p.students[0], p.teachers[0], alpha)).epsilon(1e-12));
    }
    // a fixed alpha ignores the schedule
    CHECK(at({"alpha=0.3", "schedule=cosine"}, {9, 10}) ==
          doctest::Approx(cskd_by_loops(p.students[0], p.teachers[0], 0.3)).epsilon(1e-12));
}

TEST_CASE("objectives spatial: cskd's second pair adds dist_weight * CE(dist head, argmax P_g)") {
    Pairs p = random_pairs({{3, 16, 5}, {3, 5}}, {{3, 5, 2, 2}, {3, 5}}, 31);
    const Pairs dense_only{{p.students[0]}, {p.teachers[0]}};
    const double dense = loss_value("cskd", dense_only, {"alpha=0.5"});
    const Tensor global_target = argmax(mean(p.teachers[0], {2, 3}), 1);
    const double dist = cross_entropy(p.students[1].detach(), global_target).item();
    CHECK(loss_value("cskd", p, {"alpha=0.5"}) == doctest::Approx(dense + 0.5 * dist).epsilon(1e-12));
    CHECK(loss_value("cskd", p, {"alpha=0.5", "dist_weight=2"}) ==
          doctest::Approx(dense + 2 * dist).epsilon(1e-12));
}

TEST_CASE("objectives spatial: cskd gradients in float64") {
    check_gradients("cskd", random_pairs({{3, 16, 5}, {3, 5}}, {{3, 5, 2, 2}, {3, 5}}, 41),
                    {"schedule=cosine"}, {2, 7});
    // equal grids
    check_gradients("cskd", random_pairs({{2, 9, 3}}, {{2, 3, 3, 3}}, 43), {"alpha=0.6"});
    check_gradients("cskd", random_pairs({{2, 4, 3}}, {{2, 3, 4, 4}}, 45));  // the teacher pooled
}

TEST_CASE("objectives spatial: cskd refuses bad pairs, shapes and settings") {
    const Pairs good = random_pairs({{4, 16, 5}, {4, 5}}, {{4, 5, 2, 2}, {4, 5}}, 51);
    // pair count, at creation and in a batch
    check_refused_setup("cskd", {{4, 16, 5}, {4, 5}, {4, 5}}, {{4, 5, 2, 2}, {4, 5}, {4, 5}},
                        "objective cskd needs 1 to 2 feature pair(s), got 3");
    auto objective = create_objective("cskd", config_for("cskd"), setup_for(good));
    CHECK_REFUSED(objective->forward(inputs_for(Pairs{{good.students[0]}, {good.teachers[0]}})),
                  "cskd: built for 2 feature pair(s), got 1");
    // a student without the distillation head's dense logits (wrong ranks), a teacher without
    // dense logits, a second pair that is not logits
    check_refused_setup("cskd", {{4, 5, 4, 4}}, {{4, 5, 2, 2}},
                        "cskd: pair 'p0': the student's dense logits must be (B, N, K) (a DeiT's "
                        "dense_dist_logits tap), got (4, 5, 4, 4)");
    check_refused_setup("cskd", {{4, 5}}, {{4, 5, 2, 2}},
                        "the student's dense logits must be (B, N, K)");
    check_refused_setup("cskd", {{4, 16, 5}}, {{4, 5}},
                        "cskd: pair 'p0': the teacher's dense logits must be (B, K, h, w) (a CNN's "
                        "dense_logits tap), got (4, 5)");
    check_refused_setup("cskd", {{4, 16, 5}, {4, 16, 5}}, {{4, 5, 2, 2}, {4, 5}},
                        "cskd: pair 'p1': the distillation head's logits and the teacher's logits "
                        "must be (B, K)");
    // batch and class mismatches
    check_refused_setup("cskd", {{4, 16, 5}}, {{3, 5, 2, 2}},
                        "cskd: pair 'p0': student batch 4 but teacher batch 3");
    check_refused_setup("cskd", {{4, 16, 6}}, {{4, 5, 2, 2}},
                        "cskd: pair 'p0': the student's dense logits have 6 classes but the "
                        "teacher's have 5");
    check_refused_setup("cskd", {{4, 16, 5}, {4, 6}}, {{4, 5, 2, 2}, {4, 6}},
                        "cskd: pair 'p1' has 6 (student) and 6 (teacher) classes but the dense "
                        "logits have 5");
    check_refused_setup("cskd", {{4, 16, 5}, {3, 5}}, {{4, 5, 2, 2}, {3, 5}},
                        "cskd: pair 'p1' has batch 3 (student) and 3 (teacher) but the dense pair "
                        "has 4");
    // the same checks on a batch, and a token count that is no square grid
    Pairs fewer = good;
    fewer.teachers[0] = narrow(good.teachers[0], 0, 0, 3);
    CHECK_REFUSED(objective->forward(inputs_for(fewer)),
                  "cskd: pair 'p0': student batch 4 but teacher batch 3");
    const Pairs not_square = random_pairs({{4, 15, 5}}, {{4, 5, 2, 2}}, 55);
    auto built = create_objective("cskd", config_for("cskd"), setup_for(not_square));
    CHECK_REFUSED(built->forward(inputs_for(not_square)),
                  "cskd: the student's dense logits: 15 tokens are neither a square grid");
    // hyperparameters
    CHECK_REFUSED(config_for("cskd", {"alpha=1.5"}),
                  "cskd.alpha must be 'schedule' or a number in [0, 1], got '1.5'");
    CHECK_REFUSED(config_for("cskd", {"alpha=early"}),
                  "cskd.alpha must be 'schedule' or a number in [0, 1]");
    CHECK_REFUSED(config_for("cskd", {"schedule=exponential"}),
                  "cskd.schedule must be one of linear, quadratic, cosine");
    CHECK_REFUSED(config_for("cskd", {"dist_weight=-0.5"}), "cskd.dist_weight must be in");
}

TEST_CASE("objectives spatial: retort objective --method cskd writes the loss and the gradient") {
    using retort::testing::CliRun;
    using retort::testing::run_retort;
    testing::TempDir dir;
    Generator gen(61);
    std::map<std::string, Tensor> file = {
        {"student.feat.0_dense", randn({4, 16, 5}, DType::f32, &gen)},
        {"teacher.feat.0_dense", randn({4, 5, 2, 2}, DType::f32, &gen) * 2.0}};
    save_safetensors(dir / "in.safetensors", file);
    CliRun r = run_retort("objective --method cskd --inputs " + (dir / "in.safetensors") + " --output " +
                          (dir / "out.safetensors") + " --set alpha=0.5");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto out = load_safetensors(dir / "out.safetensors");
    REQUIRE(out.size() == 2);
    REQUIRE(out.count("loss"));
    REQUIRE(out.count("grad.student.feat.0_dense"));

    Pairs p{{file.at("student.feat.0_dense").clone()}, {file.at("teacher.feat.0_dense")}};
    p.students[0].set_requires_grad(true);
    auto objective = create_objective("cskd", config_for("cskd", {"alpha=0.5"}), setup_for(p));
    Tensor loss = objective->forward(inputs_for(p));
    loss.backward();
    CHECK(relative_error(out.at("loss"), loss.detach()) < 1e-6);
    CHECK(relative_error(out.at("grad.student.feat.0_dense"), p.students[0].grad()) < 1e-6);

    // a student tensor of the wrong rank (no distillation head's dense logits) is refused
    file["student.feat.0_dense"] = randn({4, 5, 4, 4}, DType::f32, &gen);
    save_safetensors(dir / "bad.safetensors", file);
    retort::testing::check_refused(
        {{run_retort("objective --method cskd --inputs " + (dir / "bad.safetensors") + " --output " +
                     (dir / "never.safetensors")),
          "the student's dense logits must be (B, N, K)"}},
        dir / "never.safetensors");
}

// ---------------------------------------------------------------------------------------------
// the DeiT's eval_head = cskd

TEST_CASE("objectives spatial: a DeiT with eval_head = cskd averages class, dist and dense heads") {
    const std::string shape = "img_size=8,patch_size=4,embed_dim=8,depth=1,num_heads=2,num_classes=5";
    auto plain = create_model("deit_tiny_distilled_patch16_224:" + shape);
    auto cskd = create_model("deit_tiny_distilled_patch16_224:" + shape + ",eval_head=cskd");
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : plain->state_dict()) state[name] = t;
    cskd->load_state_dict(state);
    Generator gen(71);
    const Tensor x = randn({3, 3, 8, 8}, DType::f32, &gen);

    NoGradGuard no_grad;
    plain->eval();
    cskd->eval();
    Taps taps({"cls_logits", "dist_logits", "dense_dist_logits"});
    const Tensor averaged = plain->forward(x, &taps);
    const Tensor cls = taps.at("cls_logits"), dist = taps.at("dist_logits");
    const Tensor expected = (cls + dist + mean(taps.at("dense_dist_logits"), {1})) / 3.0;
    CHECK(testing::max_abs_diff(cskd->forward(x), expected) < 1e-6);
    CHECK(testing::max_abs_diff(averaged, (cls + dist) * 0.5) < 1e-6);  // default unchanged
    // the taps still come out as asked with eval_head = cskd
    Taps cskd_taps({"dense_dist_logits"});
    cskd->forward(x, &cskd_taps);
    CHECK(testing::max_abs_diff(cskd_taps.at("dense_dist_logits"), taps.at("dense_dist_logits")) < 1e-6);
    // training output: the class head, as without the key
    cskd->train();
    CHECK(testing::max_abs_diff(cskd->forward(x), cls) < 1e-6);

    CHECK_REFUSED(create_model("deit_tiny_distilled_patch16_224:" + shape + ",eval_head=mean"),
                  "key 'eval_head' must be one of default, cskd, got 'mean'");
    CHECK_REFUSED(create_model("vit_tiny_patch16_224:eval_head=cskd"),
                  "model 'vit_tiny_patch16_224' has no key 'eval_head'");
}
