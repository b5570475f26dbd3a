// tests/test_objectives_relation.cpp: the relation objectives (rkd, pkt, crd, vid, cc, reviewkd,
// ofa, kdsvd): values and gradients against PyTorch fixtures written from the reference code
// (tests/fixtures/gen_objectives_relation.py), f64 gradient checks through the student inputs and
// the connectors' parameters, and the error paths.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "distill/objective.h"
#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;

namespace {

const Fixture& fixture() {
    static const Fixture f("objectives_relation.txt");
    return f;
}

// A config with the objective's keys declared and the given "key=value" settings applied.
Config config_for(const std::string& name, const std::map<std::string, std::string>& settings = {}) {
    Config config;
    find_objective(name).declare(config);
    for (const auto& [key, value] : settings) config.set(name + "." + key, value, "test");
    return config;
}

struct PairShapes {
    std::string name;
    Shape student, teacher;
};

ObjectiveSetup setup_for(const std::vector<PairShapes>& pairs, std::int64_t num_classes = 0,
                         std::int64_t num_samples = 0) {
    ObjectiveSetup setup;
    for (const PairShapes& p : pairs) setup.pairs.push_back({p.name, p.student, p.teacher});
    setup.num_classes = num_classes;
    setup.num_samples = num_samples;
    setup.seed = 5;
    return setup;
}

std::shared_ptr<Objective> build(const std::string& name, const ObjectiveSetup& setup,
                                 const std::map<std::string, std::string>& settings = {}) {
    return create_objective(name, config_for(name, settings), setup);
}

// Copies the fixture's "<key>.param.<state-dict name>" tensors into the objective.
void load_params(Objective& objective, const std::string& key) {
    std::map<std::string, Tensor> state;
    for (const auto& [name, _] : objective.state_dict())
        state[name] = fixture()[key + ".param." + name];
    objective.load_state_dict(state);
}

// Turns every float parameter and buffer of a module into float64 in place (same tensor handles,
// so the module and a gradient check perturb the same values).
void to_f64(Module& module) {
    for (auto& [name, t] : module.state_dict()) {
        if (!t.is_floating_point() || t.dtype() == DType::f64) continue;
        Tensor converted = t.detach().to(DType::f64);
        TensorImpl& impl = t.impl();
        impl.storage = converted.impl().storage;
        impl.offset = converted.impl().offset;
        impl.dtype = DType::f64;
    }
}

// max |got - want| <= tol * max(max |want|, tiny)
void check_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    REQUIRE_MESSAGE(got.defined(), what, " is undefined");
    REQUIRE_MESSAGE(got.shape() == want.shape(), what, ": shape ", shape_str(got.shape()), " vs ",
                    shape_str(want.shape()));
    std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
    double scale = 1e-30, diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, std::abs(b[i]));
        diff = std::max(diff, std::abs(a[i] - b[i]));
    }
    CHECK_MESSAGE(diff <= tol * scale, what, ": max diff ", diff, " vs scale ", scale);
}

void check_loss(const Tensor& loss, const std::string& key) {
    CHECK(loss.shape() == Shape{});
    check_close(loss, fixture()[key].reshape({}), 1e-5, key);
}

// A float32 leaf from the fixture that wants a gradient.
Tensor student_leaf(const std::string& name) {
    Tensor t = fixture().f32(name);
    t.set_requires_grad(true);
    return t;
}

// Gradients of every connector parameter against "<key>.grad.param.<name>".
void check_param_grads(const Objective& objective, const std::string& key) {
    for (const auto& [name, p] : objective.named_parameters())
        check_close(p.grad(), fixture()[key + ".grad.param." + name], 1e-4, name);
}

ObjectiveInputs one_pair(const Tensor& student, const Tensor& teacher, const std::string& name = "feat") {
    ObjectiveInputs in;
    in.features.push_back({name, student, teacher});
    return in;
}

// f64 gradient check of an objective through the student tensors and all its parameters.
// `make_inputs` builds the batch from the student tensors (the first n_students of the list).
bool gradcheck_objective(Objective& objective, std::vector<Tensor> students,
                         const std::function<ObjectiveInputs(const std::vector<Tensor>&)>& make_inputs) {
    to_f64(objective);
    const std::size_t n_students = students.size();
    std::vector<Tensor> all = students;
    for (const Tensor& p : objective.parameters()) all.push_back(p);
    return gradcheck(
        [&](const std::vector<Tensor>& xs) {
            return objective.forward(make_inputs(std::vector<Tensor>(xs.begin(), xs.begin() + n_students)));
        },
        all, 1e-6, 1e-5);
}

Tensor f64_leaf(const Shape& shape, std::uint64_t seed) { return retort::testing::leaf(shape, seed); }
Tensor f64_const(const Shape& shape, std::uint64_t seed) {
    Generator gen(seed);
    return randn(shape, DType::f64, &gen);
}

}  // namespace

// ------------------------------------------------------------------------------------------ rkd

TEST_CASE("objective rkd: value and gradient match the PyTorch reference") {
    for (const auto& [key, settings] :
         std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
             {"rkd", {}}, {"rkd_weights", {{"distance_weight", "2"}, {"angle_weight", "3"}}}}) {
        Tensor s = student_leaf(key + ".student"), t = fixture().f32(key + ".teacher");
        auto objective = build("rkd", setup_for({{"feat", s.shape(), t.shape()}}), settings);
        Tensor loss = objective->forward(one_pair(s, t));
        check_loss(loss, key + ".loss");
        loss.backward();
        check_close(s.grad(), fixture()[key + ".grad.student"], 1e-4, key + " grad");
    }
}

TEST_CASE("objective rkd: f64 gradient check, refuses a batch of one") {
    Tensor t = f64_const({5, 3}, 2);
    auto objective = build("rkd", setup_for({{"feat", {5, 2, 2}, {5, 3}}}));
    CHECK(gradcheck_objective(*objective, {f64_leaf({5, 2, 2}, 1)},
                              [&](const std::vector<Tensor>& s) { return one_pair(s[0], t); }));
    CHECK_THROWS_WITH_AS(objective->forward(one_pair(f64_leaf({1, 2, 2}, 1), f64_const({1, 3}, 2))),
                         doctest::Contains("rkd: needs a batch of at least 2 samples, got 1"), Error);
}

// ------------------------------------------------------------------------------------------ pkt

TEST_CASE("objective pkt: value and gradient match the PyTorch reference, f64 gradient check") {
    Tensor s = student_leaf("pkt.student"), t = fixture().f32("pkt.teacher");
    auto objective = build("pkt", setup_for({{"feat", s.shape(), t.shape()}}));
    Tensor loss = objective->forward(one_pair(s, t));
    check_loss(loss, "pkt.loss");
    loss.backward();
    check_close(s.grad(), fixture()["pkt.grad.student"], 1e-4, "pkt grad");

    Tensor t64 = f64_const({3, 4, 2}, 4);
    CHECK(gradcheck_objective(*objective, {f64_leaf({3, 5}, 3)},
                              [&](const std::vector<Tensor>& s64) { return one_pair(s64[0], t64); }));
}

// ------------------------------------------------------------------------------------------- cc

TEST_CASE("objective cc: value and gradients (input and embeddings) match the PyTorch reference") {
    Tensor s = student_leaf("cc.student"), t = fixture().f32("cc.teacher");
    auto objective = build("cc", setup_for({{"feat", s.shape(), t.shape()}}), {{"feat_dim", "4"}});
    load_params(*objective, "cc");
    Tensor loss = objective->forward(one_pair(s, t));
    check_loss(loss, "cc.loss");
    loss.backward();
    check_close(s.grad(), fixture()["cc.grad.student"], 1e-4, "cc grad");
    check_param_grads(*objective, "cc");
}

TEST_CASE("objective cc: f64 gradient check through input and both embeddings") {
    Tensor t = f64_const({4, 2, 3}, 7);
    auto objective = build("cc", setup_for({{"feat", {4, 5}, {4, 2, 3}}}), {{"feat_dim", "3"}});
    CHECK(objective->named_parameters().size() == 4);
    CHECK(gradcheck_objective(*objective, {f64_leaf({4, 5}, 6)},
                              [&](const std::vector<Tensor>& s) { return one_pair(s[0], t); }));
    CHECK_THROWS_WITH_AS(objective->forward(one_pair(f64_leaf({4, 6}, 6), t)),
                         doctest::Contains("cc: pair 'feat': student feature (4, 6) does not match "
                                           "the shape it was built for, (4, 5)"), Error);
}

// ------------------------------------------------------------------------------------------ vid

namespace {
ObjectiveSetup vid_setup() {
    const Fixture& f = fixture();
    std::vector<PairShapes> pairs;
    for (int i = 0; i < 3; ++i) {
        const std::string n = std::to_string(i);
        pairs.push_back({"stage" + n, f["vid.student" + n].shape(), f["vid.teacher" + n].shape()});
    }
    return setup_for(pairs);
}
}  // namespace

TEST_CASE("objective vid: value and gradients (inputs and regressors) match the PyTorch reference") {
    auto objective = build("vid", vid_setup());
    load_params(*objective, "vid");
    ObjectiveInputs in;
    std::vector<Tensor> students;
    for (int i = 0; i < 3; ++i) {
        const std::string n = std::to_string(i);
        students.push_back(student_leaf("vid.student" + n));
        in.features.push_back({"stage" + n, students.back(), fixture().f32("vid.teacher" + n)});
    }
    Tensor loss = objective->forward(in);
    check_loss(loss, "vid.loss");
    loss.backward();
    for (int i = 0; i < 3; ++i)
        check_close(students[i].grad(), fixture()["vid.grad.student" + std::to_string(i)], 1e-4, "vid grad");
    check_param_grads(*objective, "vid");
}

TEST_CASE("objective vid: initial variance, f64 gradient check, map shapes required") {
    auto objective = build("vid", setup_for({{"a", {2, 3, 4, 4}, {2, 2, 2, 2}},
                                             {"b", {2, 2, 3, 3}, {2, 3, 3, 3}}}));
    // softplus(log_scale) + eps starts at init_pred_var
    for (const auto& [name, p] : objective->named_parameters())
        if (name.find("log_scale") != std::string::npos)
            CHECK(std::log1p(std::exp(p.to_vector<double>()[0])) + 1e-5 == doctest::Approx(5.0));
    Tensor t0 = f64_const({2, 2, 2, 2}, 9), t1 = f64_const({2, 3, 3, 3}, 10);
    CHECK(gradcheck_objective(*objective, {f64_leaf({2, 3, 4, 4}, 11), f64_leaf({2, 2, 3, 3}, 12)},
                              [&](const std::vector<Tensor>& s) {
                                  ObjectiveInputs in;
                                  in.features = {{"a", s[0], t0}, {"b", s[1], t1}};
                                  return in;
                              }));
    CHECK_THROWS_WITH_AS(build("vid", setup_for({{"a", {2, 8}, {2, 8}}})),
                         doctest::Contains("vid: pair 'a' needs (B, C, H, W) maps on both sides"), Error);
    CHECK_THROWS_WITH_AS(build("vid", setup_for({{"a", {2, 3, 4, 4}, {2, 2, 2, 2}}}),
                               {{"init_pred_var", "1e-6"}}),
                         doctest::Contains("vid: init_pred_var (1e-06) must exceed eps (1e-05)"), Error);
}

// ------------------------------------------------------------------------------------------ crd

namespace {
const std::map<std::string, std::string> kCrdSettings{{"nce_k", "6"}, {"feat_dim", "8"}};

ObjectiveInputs crd_inputs(const Tensor& s, const Tensor& t, const Tensor& idx, const Tensor& contrast) {
    ObjectiveInputs in = one_pair(s, t, "pre_logits");
    in.sample_indices = idx;
    if (contrast.defined()) in.extras["contrast_idx"] = contrast;
    return in;
}

Tensor buffer(const Module& m, const std::string& name) {
    for (const auto& [n, t] : m.named_buffers())
        if (n == name) return t;
    FAIL("no buffer ", name);
    return Tensor();
}
}  // namespace

TEST_CASE("objective crd: value, gradients, memory update and Z match the PyTorch reference") {
    const Fixture& f = fixture();
    Tensor s = student_leaf("crd.student"), t = f.f32("crd.teacher");
    auto objective = build("crd", setup_for({{"pre_logits", s.shape(), t.shape()}}, 0, 20), kCrdSettings);
    load_params(*objective, "crd");
    CHECK(buffer(*objective, "contrast.z").to_vector<double>() == std::vector<double>{-1, -1});
    Tensor loss = objective->forward(crd_inputs(s, t, f["crd.sample_indices"], f["crd.contrast_idx"]));
    check_loss(loss, "crd.loss");
    // the memory is updated inside forward; the backward still reads the memory it scored against
    loss.backward();
    check_close(s.grad(), f["crd.grad.student"], 1e-4, "crd grad");
    check_param_grads(*objective, "crd");
    check_close(buffer(*objective, "contrast.memory_v1"), f["crd.after.memory_v1"], 1e-5, "memory_v1");
    check_close(buffer(*objective, "contrast.memory_v2"), f["crd.after.memory_v2"], 1e-5, "memory_v2");
    check_close(buffer(*objective, "contrast.z"), f["crd.after.z"], 1e-5, "z");
    const std::vector<double> z_first = buffer(*objective, "contrast.z").to_vector<double>();
    // second step: Z stays, the updated memory is read
    Tensor loss2 = objective->forward(crd_inputs(f.f32("crd.step2.student"), f.f32("crd.step2.teacher"),
                                                 f["crd.step2.sample_indices"], f["crd.step2.contrast_idx"]));
    check_loss(loss2, "crd.step2.loss");
    CHECK(buffer(*objective, "contrast.z").to_vector<double>() == z_first);
}

TEST_CASE("objective crd: drawn negatives, no update outside training, f64 gradient check") {
    auto objective = build("crd", setup_for({{"pre_logits", {3, 4}, {3, 5}}}, 0, 10),
                           {{"nce_k", "5"}, {"feat_dim", "3"}});
    Tensor memory = buffer(*objective, "contrast.memory_v1");
    const std::vector<double> before = memory.to_vector<double>();
    Tensor idx = from_vector<std::int64_t>({7, 0, 4});
    // without contrast_idx the negatives are drawn; evaluation leaves the memory alone
    ObjectiveInputs in = crd_inputs(randn({3, 4}), randn({3, 5}), idx, Tensor());
    in.training = false;
    Tensor value = objective->forward(in);
    CHECK(std::isfinite(value.item()));
    CHECK(buffer(*objective, "contrast.memory_v1").to_vector<double>() == before);
    // training rewrites exactly the rows of the batch's samples
    in.training = true;
    objective->forward(in);
    const std::vector<double> after = buffer(*objective, "contrast.memory_v1").to_vector<double>();
    for (std::int64_t row = 0; row < 10; ++row) {
        const bool touched = row == 7 || row == 0 || row == 4;
        bool changed = false;
        for (std::int64_t c = 0; c < 3; ++c) changed |= after[row * 3 + c] != before[row * 3 + c];
        CHECK(changed == touched);
    }

    Tensor t = f64_const({3, 5}, 21);
    Tensor contrast = from_vector<std::int64_t>({7, 1, 2, 9, 9, 3, 0, 0, 5, 6, 8, 1, 4, 2, 2, 3, 7, 5}, {3, 6});
    CHECK(gradcheck_objective(*objective, {f64_leaf({3, 4}, 20)}, [&](const std::vector<Tensor>& s) {
        ObjectiveInputs g = crd_inputs(s[0], t, idx, contrast);
        g.training = false;  // the memory must not move between the finite differences
        return g;
    }));
}

TEST_CASE("objective crd: errors name what is missing or out of range") {
    const auto setup = setup_for({{"pre_logits", {2, 4}, {2, 4}}}, 0, 10);
    auto objective = build("crd", setup, {{"nce_k", "3"}, {"feat_dim", "2"}});
    Tensor s = randn({2, 4}), t = randn({2, 4});
    CHECK_THROWS_WITH_AS(objective->forward(one_pair(s, t, "pre_logits")),
                         doctest::Contains("crd: needs each sample's index in the training set"), Error);
    CHECK_THROWS_WITH_AS(objective->forward(crd_inputs(s, t, from_vector<std::int64_t>({1, 10}), Tensor())),
                         doctest::Contains("crd: sample_indices holds 10, outside the memory bank's [0, 10)"),
                         Error);
    CHECK_THROWS_WITH_AS(objective->forward(crd_inputs(s, t, from_vector<std::int64_t>({1, 2, 3}), Tensor())),
                         doctest::Contains("crd: sample_indices must be int64 (2)"), Error);
    CHECK_THROWS_WITH_AS(
        objective->forward(crd_inputs(s, t, from_vector<std::int64_t>({1, 2}), zeros({2, 3}, DType::i64))),
        doctest::Contains("crd: contrast_idx must be int64 (2, 4) (nce_k + 1 columns), got int64 (2, 3)"),
        Error);
    CHECK_THROWS_WITH_AS(build("crd", setup_for({{"pre_logits", {2, 4}, {2, 4}}})),
                         doctest::Contains("crd: needs the training-set size"), Error);
    CHECK_THROWS_WITH_AS(build("crd", setup, {{"momentum", "1"}}),
                         doctest::Contains("crd: momentum must be below 1"), Error);
    CHECK_THROWS_WITH_AS(config_for("crd", {{"nce_t", "0"}}), doctest::Contains("crd.nce_t"), Error);
}

// ------------------------------------------------------------------------------ shared checks

TEST_CASE("relation objectives: pair counts and batch sizes are checked") {
    CHECK_THROWS_WITH_AS(build("rkd", setup_for({{"a", {2, 3}, {2, 3}}, {"b", {2, 3}, {2, 3}}})),
                         doctest::Contains("objective rkd needs 1 feature pair(s), got 2"), Error);
    CHECK_THROWS_WITH_AS(build("vid", setup_for({})),
                         doctest::Contains("objective vid needs at least 1 feature pair(s), got 0"), Error);
    auto pkt = build("pkt", setup_for({{"a", {4, 3}, {4, 3}}}));
    ObjectiveInputs two = one_pair(randn({4, 3}), randn({4, 3}));
    two.features.push_back(two.features[0]);
    CHECK_THROWS_WITH_AS(pkt->forward(two), doctest::Contains("pkt: built for 1 feature pair(s), got 2"), Error);
    CHECK_THROWS_WITH_AS(pkt->forward(one_pair(randn({4, 3}), randn({5, 3}))),
                         doctest::Contains("pkt: pair 'feat' has batch 4 on the student side but 5 on "
                                           "the teacher side"), Error);
    CHECK_THROWS_WITH_AS(config_for("rkd", {{"distance_weight", "-1"}}),
                         doctest::Contains("rkd.distance_weight"), Error);
}

// ------------------------------------------------------------------------------------- reviewkd

namespace {
std::vector<PairShapes> fixture_pairs(const std::string& key, int count) {
    std::vector<PairShapes> pairs;
    for (int i = 0; i < count; ++i) {
        const std::string n = std::to_string(i);
        pairs.push_back({"stage" + n, fixture()[key + ".student" + n].shape(),
                         fixture()[key + ".teacher" + n].shape()});
    }
    return pairs;
}

bool has_name(const NamedTensors& list, const std::string& name) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
}
}  // namespace

TEST_CASE("objective reviewkd: value and gradients (inputs, fusion blocks) match the PyTorch reference") {
    auto objective = build("reviewkd", setup_for(fixture_pairs("reviewkd", 3)));
    load_params(*objective, "reviewkd");
    // the deepest level (abfs.0) has no attention fusion; the shallower ones do
    CHECK_FALSE(has_name(objective->named_parameters(), "abfs.0.att_conv.0.weight"));
    CHECK(has_name(objective->named_parameters(), "abfs.2.att_conv.0.bias"));
    ObjectiveInputs in;
    std::vector<Tensor> students;
    for (int i = 0; i < 3; ++i) {
        const std::string n = std::to_string(i);
        students.push_back(student_leaf("reviewkd.student" + n));
        in.features.push_back({"stage" + n, students.back(), fixture().f32("reviewkd.teacher" + n)});
    }
    Tensor loss = objective->forward(in);
    check_loss(loss, "reviewkd.loss");
    loss.backward();
    for (int i = 0; i < 3; ++i)
        check_close(students[i].grad(), fixture()["reviewkd.grad.student" + std::to_string(i)], 1e-4,
                    "reviewkd grad");
    check_param_grads(*objective, "reviewkd");

    // warm-up: epoch e (from 0) weighs the loss by min((e + 1) / warmup, 1), warmup = 20
    const double full = fixture()["reviewkd.loss"].item();
    NoGradGuard no_grad;
    in.epochs = 100;
    in.epoch = 4;
    CHECK(objective->forward(in).item() == doctest::Approx(0.25 * full).epsilon(1e-5));
    in.epoch = 19;
    CHECK(objective->forward(in).item() == doctest::Approx(full).epsilon(1e-5));
    in.epoch = 0;
    auto no_warmup = build("reviewkd", setup_for(fixture_pairs("reviewkd", 3)), {{"warmup", "0"}});
    load_params(*no_warmup, "reviewkd");
    CHECK(no_warmup->forward(in).item() == doctest::Approx(full).epsilon(1e-5));
}

TEST_CASE("objective reviewkd: f64 gradient check through inputs and fusion blocks, shapes refused") {
    auto objective = build("reviewkd", setup_for({{"a", {3, 2, 3, 3}, {3, 2, 4, 4}}, {"b", {3, 3}, {3, 2}}}));
    Tensor t0 = f64_const({3, 2, 4, 4}, 30), t1 = f64_const({3, 2}, 31);
    CHECK(gradcheck_objective(*objective, {f64_leaf({3, 2, 3, 3}, 32), f64_leaf({3, 3}, 33)},
                              [&](const std::vector<Tensor>& s) {
                                  ObjectiveInputs in;
                                  in.features = {{"a", s[0], t0}, {"b", s[1], t1}};
                                  return in;
                              }));
    CHECK_THROWS_WITH_AS(build("reviewkd", setup_for({{"a", {3, 4, 5}, {3, 4, 5}}})),
                         doctest::Contains("reviewkd: pair 'a' needs (B, C, H, W) maps or (B, C) features"),
                         Error);
}

// ------------------------------------------------------------------------------------------ ofa

namespace {
const std::map<std::string, std::string> kOfaSettings{{"eps", "1.5"}, {"T", "2"}, {"logit_weight", "0.5"}};

ObjectiveSetup ofa_fixture_setup() {
    std::vector<PairShapes> pairs;
    for (int i = 0; i < 3; ++i) {
        const Shape s = fixture()["ofa.student" + std::to_string(i)].shape();
        pairs.push_back({"stage" + std::to_string(i), s, {s[0], 6}});  // teacher features of width 6
    }
    return setup_for(pairs, 7);
}
}  // namespace

TEST_CASE("objective ofa: value and gradients (stages, logits, projectors) match the PyTorch reference") {
    const Fixture& f = fixture();
    auto objective = build("ofa", ofa_fixture_setup(), kOfaSettings);
    load_params(*objective, "ofa");
    ObjectiveInputs in;
    std::vector<Tensor> students;
    for (int i = 0; i < 3; ++i) {
        students.push_back(student_leaf("ofa.student" + std::to_string(i)));
        in.features.push_back({"stage" + std::to_string(i), students.back(), f.f32("ofa.student0")});
    }
    in.student_logits = student_leaf("ofa.student_logits");
    in.teacher_logits = f.f32("ofa.teacher_logits");
    in.labels = f["ofa.labels"];
    Tensor loss = objective->forward(in);
    check_loss(loss, "ofa.loss");
    loss.backward();
    for (int i = 0; i < 3; ++i)
        check_close(students[i].grad(), f["ofa.grad.student" + std::to_string(i)], 1e-4, "ofa grad");
    check_close(in.student_logits.grad(), f["ofa.grad.student_logits"], 1e-4, "ofa logits grad");
    check_param_grads(*objective, "ofa");
}

TEST_CASE("objective ofa: eps = 1 is cross-entropy against the teacher, f64 gradient check, errors") {
    auto objective = build("ofa", setup_for({{"a", {3, 2, 4, 4}, {3, 5}}, {"b", {3, 3, 2, 2}, {3, 3, 2, 2}}}, 3));
    Tensor z_t = f64_const({3, 3}, 40);
    Tensor labels = from_vector<std::int64_t>({2, 0, 1});
    auto make = [&](const std::vector<Tensor>& s) {
        ObjectiveInputs in;
        in.features = {{"a", s[0], z_t}, {"b", s[1], z_t}};
        in.student_logits = s[2];
        in.teacher_logits = z_t;
        in.labels = labels;
        return in;
    };
    std::vector<Tensor> students{f64_leaf({3, 2, 4, 4}, 41), f64_leaf({3, 3, 2, 2}, 42), f64_leaf({3, 3}, 43)};
    CHECK(gradcheck_objective(*objective, students, make));
    {
        // eps = 1, T = 1: the logit term is the cross-entropy against the teacher's probabilities.
        // Two objectives from one seed have the same projectors, so their difference is that term.
        NoGradGuard no_grad;
        const ObjectiveSetup setup = setup_for({{"a", {3, 2, 4, 4}, {3, 5}}}, 3);
        auto with_logits = build("ofa", setup), without = build("ofa", setup, {{"logit_weight", "0"}});
        ObjectiveInputs in = make(students);
        in.features.resize(1);
        in.student_logits = in.student_logits.to(DType::f32);
        in.teacher_logits = in.teacher_logits.to(DType::f32);
        in.features[0].student = in.features[0].student.to(DType::f32);
        in.features[0].teacher = in.features[0].teacher.to(DType::f32);
        const double difference = with_logits->forward(in).item() - without->forward(in).item();
        const double ce = cross_entropy(in.student_logits, softmax(in.teacher_logits, 1)).item();
        CHECK(difference == doctest::Approx(ce).epsilon(1e-5));
    }
    CHECK_THROWS_WITH_AS(build("ofa", setup_for({{"a", {3, 2, 4, 4}, {3, 5}}})),
                         doctest::Contains("ofa: needs the number of classes"), Error);
    CHECK_THROWS_WITH_AS(build("ofa", setup_for({{"a", {3, 4, 5}, {3, 4, 5}}}, 3)),
                         doctest::Contains("ofa: pair 'a' needs a (B, C, H, W) student map"), Error);
    ObjectiveInputs no_labels = make(students);
    no_labels.labels = Tensor();
    CHECK_THROWS_WITH_AS(objective->forward(no_labels), doctest::Contains("ofa: needs labels (B) = (3), got none"),
                         Error);
    ObjectiveInputs bad_label = make(students);
    bad_label.labels = from_vector<std::int64_t>({2, 3, 1});
    CHECK_THROWS_WITH_AS(objective->forward(bad_label), doctest::Contains("ofa: label 3 is outside [0, 3)"), Error);
}

// ---------------------------------------------------------------------------------------- kdsvd

TEST_CASE("objective kdsvd: value and gradients match torch.svd-based reference (k = 1 and 2)") {
    for (const auto& [key, k] : std::vector<std::pair<std::string, std::string>>{{"kdsvd", "1"}, {"kdsvd.k2", "2"}}) {
        auto objective = build("kdsvd", setup_for(fixture_pairs("kdsvd", 3)), {{"k", k}});
        ObjectiveInputs in;
        std::vector<Tensor> students;
        for (int i = 0; i < 3; ++i) {
            const std::string n = std::to_string(i);
            students.push_back(student_leaf("kdsvd.student" + n));
            in.features.push_back({"stage" + n, students.back(), fixture().f32("kdsvd.teacher" + n)});
        }
        Tensor loss = objective->forward(in);
        check_loss(loss, key + ".loss");
        loss.backward();
        for (int i = 0; i < 3; ++i)
            check_close(students[i].grad(), fixture()[key + ".grad.student" + std::to_string(i)], 1e-4,
                        key + " grad");
    }
}

TEST_CASE("objective kdsvd: f64 gradient check through the eigendecompositions, errors") {
    // one pair through the channel Gram (16 pixels >= 3 channels), one through the pixel Gram
    auto objective = build("kdsvd", setup_for({{"a", {2, 3, 4, 4}, {2, 3, 3, 3}}, {"b", {2, 5, 2, 2}, {2, 5, 2, 3}}}));
    Tensor t0 = f64_const({2, 3, 3, 3}, 50), t1 = f64_const({2, 5, 2, 3}, 51);
    CHECK(gradcheck_objective(*objective, {f64_leaf({2, 3, 4, 4}, 52), f64_leaf({2, 5, 2, 2}, 53)},
                              [&](const std::vector<Tensor>& s) {
                                  ObjectiveInputs in;
                                  in.features = {{"a", s[0], t0}, {"b", s[1], t1}};
                                  return in;
                              }));
    CHECK_THROWS_WITH_AS(build("kdsvd", setup_for({{"a", {2, 3, 4, 4}, {2, 3, 4, 4}}})),
                         doctest::Contains("objective kdsvd needs at least 2 feature pair(s), got 1"), Error);
    CHECK_THROWS_WITH_AS(build("kdsvd", setup_for({{"a", {2, 3, 4, 4}, {2, 4, 4, 4}}, {"b", {2, 3, 2, 2}, {2, 3, 2, 2}}})),
                         doctest::Contains("kdsvd: pair 'a' needs as many student as teacher channels"), Error);
    CHECK_THROWS_WITH_AS(build("kdsvd", setup_for({{"a", {2, 3, 1, 1}, {2, 3, 1, 1}}, {"b", {2, 3, 2, 2}, {2, 3, 2, 2}}}),
                               {{"k", "2"}}),
                         doctest::Contains("kdsvd: pair 'a': the teacher map has only 1 singular vectors, k = 2"),
                         Error);
}

// ---------------------------------------------------------------------------------------- table

TEST_CASE("relation objectives: table rows list exactly the keys and defaults declare() gives") {
    Config config;
    declare_objective_keys(config);
    for (const std::string name : {"rkd", "pkt", "crd", "vid", "cc", "reviewkd", "ofa", "kdsvd"}) {
        CAPTURE(name);
        const ObjectiveEntry& e = find_objective(name);
        CHECK_FALSE(e.paper.empty());
        CHECK_FALSE(e.reference.empty());
        CHECK_FALSE(e.taps.empty());
        CHECK(e.uses_teacher_logits == (name == "ofa"));
        CHECK(e.uses_labels == (name == "ofa"));
        std::set<std::string> listed, declared;
        std::stringstream defaults(e.defaults);
        std::string item;
        while (std::getline(defaults, item, ',')) {
            item.erase(0, item.find_first_not_of(' '));
            listed.insert(item);
        }
        for (const ConfigKey& k : config.keys())
            if (k.section == name) declared.insert(k.key + "=" + k.default_value);
        CHECK(listed == declared);
    }
}
