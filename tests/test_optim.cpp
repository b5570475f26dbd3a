// tests/test_optim.cpp: optimizers, learning-rate schedules and gradient clipping against PyTorch
// (tests/fixtures/gen_optim.py writes optim.txt), state save / load, and every error message.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>

#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/sgd.h"
#include "engine/engine.h"
#include "tests/fixture.h"

using namespace retort;
using retort::testing::Fixture;

namespace {

constexpr int kSteps = 5;
constexpr int kSkippedBiasStep = 2;  // in the "skip" cases b has no gradient at this step

// Element k of a stacked fixture tensor (k indexes dim 0), as a tensor of dtype `dtype`.
Tensor slice(const Tensor& stacked, std::int64_t k, DType dtype) {
    Shape shape(stacked.shape().begin() + 1, stacked.shape().end());
    const std::int64_t n = shape_numel(shape);
    std::vector<double> all = stacked.to_vector<double>();
    std::vector<double> part(all.begin() + k * n, all.begin() + (k + 1) * n);
    return from_vector(part, shape).to(dtype);
}

// |a - b| <= atol + rtol * |b| for every element; reports the first element that is not.
bool all_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
    REQUIRE(actual.shape() == expected.shape());
    std::vector<double> a = actual.to_vector<double>(), b = expected.to_vector<double>();
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) {
            MESSAGE("element ", i, ": got ", a[i], ", expected ", b[i]);
            return false;
        }
    }
    return true;
}

bool equal(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

// The configurations of gen_optim.py's CASES, by name.
std::unique_ptr<Optimizer> make_case(const std::string& name, const Tensor& w, const Tensor& b) {
    const std::vector<Tensor> both{w, b};
    if (name == "sgd_plain") return std::make_unique<SGD>(both, SgdOptions{.lr = 0.1});
    if (name == "sgd_momentum")
        return std::make_unique<SGD>(both,
                                     SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.3});
    if (name == "sgd_nesterov_wd")
        return std::make_unique<SGD>(
            std::vector<ParamGroupSpec>{{.params = {w}}, {.params = {b}, .weight_decay = 0.0}},
            SgdOptions{.lr = 0.05, .momentum = 0.8, .weight_decay = 0.01, .nesterov = true});
    if (name == "adamw_default") return std::make_unique<AdamW>(both, AdamWOptions{.lr = 0.05});
    if (name == "adamw_amsgrad")
        return std::make_unique<AdamW>(both, AdamWOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.9,
                                                          .eps = 0.1, .weight_decay = 0.0,
                                                          .amsgrad = true});
    if (name == "adamw_wd")
        return std::make_unique<AdamW>(
            std::vector<ParamGroupSpec>{{.params = {w}},
                                        {.params = {b}, .lr = 0.02, .weight_decay = 0.0}},
            AdamWOptions{.lr = 0.05, .eps = 1e-3, .weight_decay = 0.1});
    FAIL("unknown case ", name);
    return nullptr;
}

bool skips_bias(const std::string& name) { return name == "sgd_nesterov_wd" || name == "adamw_wd"; }

// The two parameters of the fixture, fresh leaves of the given dtype.
struct Params {
    Tensor w, b;
};
Params initial_params(const Fixture& fx, DType dtype) {
    Params p{fx["init.w"].to(dtype), fx["init.b"].to(dtype)};
    p.w.set_requires_grad();
    p.b.set_requires_grad();
    return p;
}

// Steps first..last-1 with the fixture's gradients.
void run_steps(Optimizer& opt, Params& p, const Fixture& fx, const std::string& name, int first,
               int last) {
    for (int k = first; k < last; ++k) {
        p.w.set_grad(slice(fx["grad.w"], k, p.w.dtype()));
        bool skip = skips_bias(name) && k == kSkippedBiasStep;
        p.b.set_grad(skip ? Tensor() : slice(fx["grad.b"], k, p.b.dtype()));
        opt.step();
    }
}

const char* const kCases[] = {"sgd_plain",     "sgd_momentum",  "sgd_nesterov_wd",
                              "adamw_default", "adamw_amsgrad", "adamw_wd"};

void check_against_pytorch(DType dtype, double rtol, double atol) {
    Fixture fx("optim.txt");
    for (const std::string name : kCases) {
        CAPTURE(name);
        Params p = initial_params(fx, dtype);
        std::unique_ptr<Optimizer> opt = make_case(name, p.w, p.b);
        for (int k = 0; k < kSteps; ++k) {
            CAPTURE(k);
            run_steps(*opt, p, fx, name, k, k + 1);
            CHECK(all_close(p.w, slice(fx[name + ".w"], k, DType::f64), rtol, atol));
            CHECK(all_close(p.b, slice(fx[name + ".b"], k, DType::f64), rtol, atol));
        }
    }
}

}  // namespace

// ---- optimizers against PyTorch ----

TEST_CASE("optim: SGD and AdamW match PyTorch step by step in float64") {
    check_against_pytorch(DType::f64, 1e-12, 1e-15);
}

TEST_CASE("optim: SGD and AdamW match PyTorch step by step in float32") {
    check_against_pytorch(DType::f32, 1e-5, 1e-6);
}

TEST_CASE("optim: an update writes into the parameter's own storage and records no graph") {
    Tensor w = from_vector<double>({1, 2, 3}).set_requires_grad();
    const void* storage = w.raw_data();
    Tensor alias = w.detach();  // shares the storage, as a module's reference would
    SGD opt({w}, SgdOptions{.lr = 0.5});
    w.set_grad(from_vector<double>({2, 2, 2}));
    opt.step();
    CHECK(w.raw_data() == storage);
    CHECK(alias.to_vector<double>() == std::vector<double>{0, 1, 2});
    CHECK(w.is_leaf());
    CHECK(w.requires_grad());
    CHECK(opt.step_count() == 1);
}

TEST_CASE("optim: parameters without a gradient are skipped and their state does not advance") {
    Tensor a = from_vector<double>({1, 2}).set_requires_grad();
    Tensor b = from_vector<double>({3}).set_requires_grad();
    AdamW opt({a, b}, AdamWOptions{.lr = 0.1});
    a.set_grad(from_vector<double>({1, -1}));
    opt.step();
    opt.step();
    CHECK(b.to_vector<double>() == std::vector<double>{3});
    CHECK(opt.state(0).step == 2);
    CHECK(opt.state(1).step == 0);
    CHECK(opt.state(1).buffers.empty());
    opt.zero_grad();
    CHECK_FALSE(a.grad().defined());
    std::vector<double> before = a.to_vector<double>();
    opt.step();  // no gradients at all: nothing moves
    CHECK(a.to_vector<double>() == before);
    CHECK(opt.state(0).step == 2);
    CHECK(opt.step_count() == 3);
}

TEST_CASE("optim: weight_decay_groups puts biases and norm scales in a group without decay") {
    Tensor w = zeros({4, 3}, DType::f64).set_requires_grad();
    Tensor bias = zeros({4}, DType::f64).set_requires_grad();
    Tensor kernel = zeros({2, 1, 3, 3}, DType::f64).set_requires_grad();
    auto groups = weight_decay_groups({w, bias, kernel});
    REQUIRE(groups.size() == 2);
    CHECK(groups[0].params.size() == 2);
    CHECK(groups[0].params[0].same(w));
    CHECK(groups[0].params[1].same(kernel));
    CHECK_FALSE(groups[0].weight_decay.has_value());
    CHECK(groups[1].params.size() == 1);
    CHECK(groups[1].params[0].same(bias));
    CHECK(groups[1].weight_decay.value() == 0.0);
    AdamW opt(groups, AdamWOptions{.weight_decay = 0.05});
    CHECK(opt.param_groups()[0].weight_decay == 0.05);
    CHECK(opt.param_groups()[1].weight_decay == 0.0);
    CHECK(opt.num_params() == 3);
}

TEST_CASE("optim: lr() and set_lr() read and set the learning rate of every group") {
    Tensor a = zeros({2}, DType::f64).set_requires_grad();
    Tensor b = zeros({2}, DType::f64).set_requires_grad();
    SGD opt(std::vector<ParamGroupSpec>{{.params = {a}}, {.params = {b}, .lr = 0.5}},
            SgdOptions{.lr = 0.1});
    CHECK(opt.lr() == 0.1);
    CHECK(opt.param_groups()[1].lr == 0.5);
    opt.set_lr(0.01);
    CHECK(opt.param_groups()[0].lr == 0.01);
    CHECK(opt.param_groups()[1].lr == 0.01);
    CHECK(opt.param_groups()[1].initial_lr == 0.5);
    CHECK_THROWS_WITH_AS(opt.set_lr(-1), doctest::Contains("sgd: lr must be >= 0, got -1"), Error);
}

// ---- state save / load ----

TEST_CASE("optim: 3 steps, save, load into a fresh optimizer, 2 steps = 5 steps straight") {
    Fixture fx("optim.txt");
    for (const std::string name :
         {"sgd_momentum", "sgd_nesterov_wd", "adamw_amsgrad", "adamw_wd"}) {
        CAPTURE(name);
        Params straight = initial_params(fx, DType::f64);
        auto reference = make_case(name, straight.w, straight.b);
        run_steps(*reference, straight, fx, name, 0, kSteps);

        Params first = initial_params(fx, DType::f64);
        auto before = make_case(name, first.w, first.b);
        run_steps(*before, first, fx, name, 0, 3);
        std::map<std::string, Tensor> saved = before->state_dict();
        // A new process would rebuild the model from its checkpoint and the optimizer from config.
        Params resumed{first.w.detach().clone(), first.b.detach().clone()};
        resumed.w.set_requires_grad();
        resumed.b.set_requires_grad();
        before->step();  // the snapshot must not follow the optimizer it came from
        CHECK(saved.at("step_count").item() == 3);

        auto after = make_case(name, resumed.w, resumed.b);
        after->load_state(saved);
        CHECK(after->step_count() == 3);
        run_steps(*after, resumed, fx, name, 3, kSteps);
        CHECK(equal(resumed.w, straight.w));
        CHECK(equal(resumed.b, straight.b));
        CHECK(after->state(1).step == reference->state(1).step);
    }
}

TEST_CASE("optim: state_dict names the state by parameter index") {
    Tensor w = ones({2, 2}, DType::f64).set_requires_grad();
    Tensor b = ones({2}, DType::f64).set_requires_grad();
    Tensor frozen = ones({3}, DType::f64).set_requires_grad();
    AdamW opt({w, frozen, b}, AdamWOptions{.amsgrad = true});
    w.set_grad(ones({2, 2}, DType::f64));
    b.set_grad(ones({2}, DType::f64));
    opt.step();
    opt.step();
    std::map<std::string, Tensor> state = opt.state_dict();
    std::vector<std::string> keys;
    for (const auto& [key, tensor] : state) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"group.0.lr", "state.0.exp_avg", "state.0.exp_avg_sq",
                                           "state.0.max_exp_avg_sq", "state.0.step",
                                           "state.2.exp_avg", "state.2.exp_avg_sq",
                                           "state.2.max_exp_avg_sq", "state.2.step", "step_count"});
    CHECK(state.at("state.2.step").dtype() == DType::i64);
    CHECK(state.at("state.2.step").item() == 2);
    CHECK(state.at("state.0.exp_avg").shape() == Shape{2, 2});
    CHECK(state.at("group.0.lr").item() == 1e-3);
}

TEST_CASE("optim: load_state converts float32 buffers to a float64 parameter's dtype") {
    Tensor w32 = ones({3}, DType::f32).set_requires_grad();
    SGD source({w32}, SgdOptions{.lr = 0.1, .momentum = 0.9});
    w32.set_grad(full({3}, 0.25, DType::f32));
    source.step();
    Tensor w64 = ones({3}, DType::f64).set_requires_grad();
    SGD target({w64}, SgdOptions{.lr = 0.1, .momentum = 0.9});
    target.load_state(source.state_dict());
    CHECK(target.state(0).buffers.at("momentum_buffer").dtype() == DType::f64);
    CHECK(target.state(0).buffers.at("momentum_buffer").to_vector<double>() ==
          std::vector<double>{0.25, 0.25, 0.25});
}

TEST_CASE("optim: load_state rejects a state that does not fit, and changes nothing then") {
    Tensor w = ones({2, 3}, DType::f64).set_requires_grad();
    Tensor b = ones({3}, DType::f64).set_requires_grad();
    AdamW opt({w, b}, AdamWOptions{});
    w.set_grad(ones({2, 3}, DType::f64));
    b.set_grad(ones({3}, DType::f64));
    opt.step();
    const std::map<std::string, Tensor> good = opt.state_dict();
    auto with = [&](const std::string& key, const Tensor& t) {
        auto s = good;
        s[key] = t;
        return s;
    };
    auto without = [&](const std::string& key) {
        auto s = good;
        s.erase(key);
        return s;
    };
    CHECK_THROWS_WITH_AS(opt.load_state(without("state.1.exp_avg_sq")),
                         doctest::Contains("adamw: load_state: missing 'state.1.exp_avg_sq'"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(without("step_count")),
                         doctest::Contains("missing 'step_count'"), Error);
    CHECK_THROWS_WITH_AS(opt.load_state(without("group.0.lr")),
                         doctest::Contains("missing 'group.0.lr'"), Error);
    CHECK_THROWS_WITH_AS(opt.load_state(without("state.0.step")),
                         doctest::Contains("parameter 0 has buffers but no 'state.0.step'"), Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("state.0.exp_avg", zeros({3, 2}, DType::f64))),
                         doctest::Contains("'state.0.exp_avg' has shape (3, 2), parameter 0 has "
                                           "shape (2, 3)"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("state.1.exp_avg", zeros({3}, DType::i64))),
                         doctest::Contains("'state.1.exp_avg' is int64, expected floating point"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("state.0.max_exp_avg_sq", zeros({2, 3}, DType::f64))),
                         doctest::Contains("unknown entry 'state.0.max_exp_avg_sq' (this adamw "
                                           "keeps no 'max_exp_avg_sq' buffer)"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("state.2.step", scalar_tensor(1, DType::i64))),
                         doctest::Contains("entry 'state.2.step' is for parameter 2, but this "
                                           "optimizer has 2 parameters"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("group.1.lr", scalar_tensor(0.1, DType::f64))),
                         doctest::Contains("entry 'group.1.lr' is for group 1, but this optimizer "
                                           "has 1 groups"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("momentum", scalar_tensor(0.9, DType::f64))),
                         doctest::Contains("unknown entry 'momentum'"), Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("state.0.step", scalar_tensor(1.5, DType::f64))),
                         doctest::Contains("'state.0.step' should be a whole number >= 0, got 1.5"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.load_state(with("group.0.lr", scalar_tensor(-1, DType::f64))),
                         doctest::Contains("'group.0.lr' must be >= 0, got -1"), Error);

    // after all those failures the state is still the one saved
    std::map<std::string, Tensor> now = opt.state_dict();
    REQUIRE(now.size() == good.size());
    for (const auto& [key, tensor] : good) CHECK(equal(now.at(key), tensor));
    opt.load_state(good);
}

// ---- optimizer configuration errors ----

TEST_CASE("optim: bad optimizer configurations are errors that say what is wrong") {
    Tensor w = ones({2}, DType::f64).set_requires_grad();
    const std::vector<Tensor> params{w};
    CHECK_THROWS_WITH_AS(SGD(params, SgdOptions{.lr = -0.1}),
                         doctest::Contains("sgd: lr must be >= 0, got -0.1"), Error);
    CHECK_THROWS_WITH_AS(SGD(params, SgdOptions{.lr = std::nan("")}),
                         doctest::Contains("sgd: lr must be >= 0"), Error);
    CHECK_THROWS_WITH_AS(SGD(params, SgdOptions{.momentum = -0.9}),
                         doctest::Contains("sgd: momentum must be >= 0, got -0.9"), Error);
    CHECK_THROWS_WITH_AS(SGD(params, SgdOptions{.weight_decay = -1e-4}),
                         doctest::Contains("sgd: weight_decay must be >= 0, got -0.0001"), Error);
    CHECK_THROWS_WITH_AS(SGD(params, SgdOptions{.nesterov = true}),
                         doctest::Contains("sgd: nesterov momentum requires momentum > 0 and "
                                           "dampening = 0 (got momentum 0, dampening 0)"),
                         Error);
    CHECK_THROWS_WITH_AS(SGD(params, SgdOptions{.momentum = 0.9, .dampening = 0.1,
                                                .nesterov = true}),
                         doctest::Contains("(got momentum 0.9, dampening 0.1)"), Error);
    CHECK_THROWS_WITH_AS(AdamW(params, AdamWOptions{.beta1 = 1.0}),
                         doctest::Contains("adamw: beta1 must be in [0, 1), got 1"), Error);
    CHECK_THROWS_WITH_AS(AdamW(params, AdamWOptions{.beta2 = -0.5}),
                         doctest::Contains("adamw: beta2 must be in [0, 1), got -0.5"), Error);
    CHECK_THROWS_WITH_AS(AdamW(params, AdamWOptions{.eps = -1e-8}),
                         doctest::Contains("adamw: eps must be >= 0, got -1e-08"), Error);
    CHECK_THROWS_WITH_AS(
        AdamW(std::vector<ParamGroupSpec>{{.params = {w}, .lr = -2.0}}, AdamWOptions{}),
        doctest::Contains("adamw: group 0: lr must be >= 0, got -2"), Error);
    CHECK_THROWS_WITH_AS(
        AdamW(std::vector<ParamGroupSpec>{{.params = {}}, {.params = {w}, .weight_decay = -1.0}},
              AdamWOptions{}),
        doctest::Contains("adamw: group 1: weight_decay must be >= 0, got -1"), Error);
}

TEST_CASE("optim: the parameter list must hold distinct float leaves") {
    Tensor w = ones({2}, DType::f64).set_requires_grad();
    CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{}, SgdOptions{}),
                         doctest::Contains("sgd: got an empty parameter list"), Error);
    CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{w, w}, SgdOptions{}),
                         doctest::Contains("sgd: parameter 1 appears more than once"), Error);
    CHECK_THROWS_WITH_AS(
        AdamW(std::vector<ParamGroupSpec>{{.params = {w}}, {.params = {w}}}, AdamWOptions{}),
        doctest::Contains("adamw: parameter 1 appears more than once"), Error);
    Tensor computed = w * 2.0;
    CHECK_THROWS_WITH_AS(
        SGD(std::vector<Tensor>{computed}, SgdOptions{}),
        doctest::Contains("sgd: parameter 0 is not a leaf (it was computed by mul)"), Error);
    CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{w, ones({2}, DType::i64)}, SgdOptions{}),
                         doctest::Contains("sgd: parameter 1 is not floating point (int64)"),
                         Error);
    CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{Tensor()}, SgdOptions{}),
                         doctest::Contains("sgd: parameter 0 is an undefined tensor"), Error);
}

TEST_CASE("optim: a gradient that does not match its parameter is an error") {
    Tensor w = ones({2, 2}, DType::f64).set_requires_grad();
    SGD opt({w}, SgdOptions{});
    w.set_grad(ones({4}, DType::f64));
    CHECK_THROWS_WITH_AS(opt.step(),
                         doctest::Contains("sgd: the gradient of parameter 0 is (4,) float64, the "
                                           "parameter (2, 2) float64"),
                         Error);
    CHECK_THROWS_WITH_AS(opt.state(1), doctest::Contains("sgd: no parameter 1 (there are 1)"),
                         Error);
}

// ---- learning-rate schedules ----

TEST_CASE("optim: StepLR, MultiStepLR and warm-up + cosine match PyTorch's schedulers") {
    Fixture fx("optim.txt");
    const double base = 0.1;
    StepLR step(7, 0.5);
    MultiStepLR multistep({5, 12, 20}, 0.1);
    WarmupCosineLR warmup_cosine({.warmup_steps = 5, .total_steps = 30,
                                  .warmup_start_factor = 0.1, .min_lr = 1e-4});
    WarmupCosineLR cosine({.warmup_steps = 0, .total_steps = 20, .min_lr = 1e-3});
    const std::pair<const char*, const LrSchedule*> schedules[] = {
        {"step", &step}, {"multistep", &multistep}, {"warmup_cosine", &warmup_cosine},
        {"cosine", &cosine}};
    for (const auto& [name, schedule] : schedules) {
        CAPTURE(name);
        std::vector<double> expected = fx[std::string("sched.") + name].to_vector<double>();
        for (std::size_t t = 0; t < expected.size(); ++t) {
            CAPTURE(t);
            double got = schedule->lr(static_cast<std::int64_t>(t), base);
            CHECK(std::abs(got - expected[t]) <= 1e-12 * std::abs(expected[t]));
        }
    }
}

TEST_CASE("optim: warm-up + cosine reaches base at the end of warm-up and stays at min_lr after") {
    WarmupCosineLR s({.warmup_steps = 4, .total_steps = 10, .warmup_start_factor = 0.25,
                      .min_lr = 0.01});
    CHECK(s.lr(0, 2.0) == doctest::Approx(0.5));
    CHECK(s.lr(2, 2.0) == doctest::Approx(1.25));
    CHECK(s.lr(4, 2.0) == 2.0);
    CHECK(s.lr(7, 2.0) == doctest::Approx(0.01 + (2.0 - 0.01) * 0.5));
    CHECK(s.lr(10, 2.0) == 0.01);
    CHECK(s.lr(1000, 2.0) == 0.01);
}

TEST_CASE("optim: apply_lr_schedule scales each group from its own initial lr") {
    Tensor a = zeros({2}, DType::f64).set_requires_grad();
    Tensor b = zeros({2}, DType::f64).set_requires_grad();
    SGD opt(std::vector<ParamGroupSpec>{{.params = {a}}, {.params = {b}, .lr = 0.01}},
            SgdOptions{.lr = 0.1});
    StepLR schedule(2, 0.5);
    apply_lr_schedule(opt, schedule, 5);  // two decays
    CHECK(opt.param_groups()[0].lr == doctest::Approx(0.025));
    CHECK(opt.param_groups()[1].lr == doctest::Approx(0.0025));
    apply_lr_schedule(opt, schedule, 0);
    CHECK(opt.lr() == 0.1);
}

TEST_CASE("optim: bad schedule configurations are errors") {
    CHECK_THROWS_WITH_AS(StepLR(0, 0.1), doctest::Contains("StepLR: step_size must be >= 1, got 0"),
                         Error);
    CHECK_THROWS_WITH_AS(StepLR(5, -0.1), doctest::Contains("StepLR: gamma must be >= 0, got -0.1"),
                         Error);
    CHECK_THROWS_WITH_AS(MultiStepLR({10, 5}, 0.1),
                         doctest::Contains("MultiStepLR: milestones must be strictly increasing, "
                                           "got 10 then 5"),
                         Error);
    CHECK_THROWS_WITH_AS(MultiStepLR({5, 5}, 0.1), doctest::Contains("strictly increasing"), Error);
    CHECK_THROWS_WITH_AS(MultiStepLR({0, 5}, 0.1),
                         doctest::Contains("MultiStepLR: milestones must be > 0, got 0"), Error);
    CHECK_THROWS_WITH_AS(MultiStepLR({5}, -1), doctest::Contains("MultiStepLR: gamma must be >= 0"),
                         Error);
    CHECK_THROWS_WITH_AS(WarmupCosineLR({.warmup_steps = 10, .total_steps = 10}),
                         doctest::Contains("WarmupCosineLR: total_steps (10) must be greater than "
                                           "warmup_steps (10)"),
                         Error);
    CHECK_THROWS_WITH_AS(WarmupCosineLR({.warmup_steps = -1, .total_steps = 10}),
                         doctest::Contains("warmup_steps must be >= 0, got -1"), Error);
    CHECK_THROWS_WITH_AS(
        WarmupCosineLR({.warmup_steps = 1, .total_steps = 10, .warmup_start_factor = 1.5}),
        doctest::Contains("warmup_start_factor must be in [0, 1], got 1.5"), Error);
    CHECK_THROWS_WITH_AS(WarmupCosineLR({.total_steps = 10, .min_lr = -1e-5}),
                         doctest::Contains("min_lr must be >= 0, got -1e-05"), Error);
    CHECK_THROWS_WITH_AS(StepLR(5, 0.1).lr(-1, 0.1),
                         doctest::Contains("StepLR: step must be >= 0, got -1"), Error);
}

// ---- gradient clipping ----

namespace {

void check_clipping(DType dtype, double rtol, double atol) {
    Fixture fx("optim.txt");
    const std::pair<const char*, std::pair<double, double>> clips[] = {
        {"l2_noclip", {100.0, 2.0}}, {"l2", {1.0, 2.0}}, {"l1", {0.5, 1.0}},
        {"inf", {0.3, kInfNorm}},   {"l3", {2.0, 3.0}}};
    for (const auto& [name, config] : clips) {
        CAPTURE(name);
        const std::string prefix = std::string("clip.") + name + ".";
        std::vector<Tensor> params;
        for (const char* key : {"a", "b", "c"}) {
            Tensor g = fx[std::string("clip.grad.") + key].to(dtype);
            Tensor p = zeros_like(g).set_requires_grad();
            p.set_grad(g);
            params.push_back(p);
        }
        Tensor no_grad = zeros({2}, dtype).set_requires_grad();  // skipped: no gradient
        double total = clip_grad_norm({params[0], no_grad, params[1], params[2]}, config.first,
                                      config.second);
        double expected = fx[prefix + "total"].item();
        CHECK(std::abs(total - expected) <= atol + rtol * expected);
        CHECK(all_close(params[0].grad(), fx[prefix + "a"], rtol, atol));
        CHECK(all_close(params[1].grad(), fx[prefix + "b"], rtol, atol));
        CHECK(all_close(params[2].grad(), fx[prefix + "c"], rtol, atol));
    }
}

}  // namespace

TEST_CASE("optim: clip_grad_norm matches PyTorch in float64 and float32") {
    check_clipping(DType::f64, 1e-12, 1e-15);
    check_clipping(DType::f32, 1e-5, 1e-6);
}

TEST_CASE("optim: clip_grad_norm leaves small gradients alone and ignores missing ones") {
    Tensor p = zeros({3}, DType::f64).set_requires_grad();
    p.set_grad(from_vector<double>({3, 4, 0}));
    CHECK(clip_grad_norm({p}, 5.0) == 5.0);  // coefficient 5 / (5 + 1e-6) < 1: scaled, just
    CHECK(p.grad().to_vector<double>()[1] == doctest::Approx(4.0));
    p.set_grad(from_vector<double>({3, 4, 0}));
    CHECK(clip_grad_norm({p}, 10.0) == 5.0);
    CHECK(p.grad().to_vector<double>() == std::vector<double>{3, 4, 0});
    Tensor bare = zeros({3}, DType::f64).set_requires_grad();
    CHECK(clip_grad_norm({bare}, 1.0) == 0.0);
    CHECK_FALSE(bare.grad().defined());
}

TEST_CASE("optim: clip_grad_norm gives the same bits for any thread count") {
    Generator gen(7);
    Tensor g = randn({300001}, DType::f32, &gen);
    const int saved_threads = num_threads();
    auto run = [&](int threads) {
        set_num_threads(threads);
        Tensor p = zeros({300001}, DType::f32).set_requires_grad();
        p.set_grad(g.clone());
        double total = clip_grad_norm({p}, 1.0);
        return std::make_pair(total, p.grad().to_vector<float>());
    };
    auto one = run(1);
    auto four = run(4);
    set_num_threads(saved_threads);
    CHECK(one.first == four.first);
    CHECK(one.second == four.second);
}

TEST_CASE("optim: clip_grad_norm rejects a bad norm type or max_norm") {
    Tensor p = zeros({3}, DType::f64).set_requires_grad();
    p.set_grad(ones({3}, DType::f64));
    CHECK_THROWS_WITH_AS(clip_grad_norm({p}, 1.0, 0.0),
                         doctest::Contains("clip_grad_norm: norm_type must be > 0 (or infinity), "
                                           "got 0"),
                         Error);
    CHECK_THROWS_WITH_AS(clip_grad_norm({p}, -1.0),
                         doctest::Contains("clip_grad_norm: max_norm must be >= 0, got -1"), Error);
    CHECK_THROWS_WITH_AS(clip_grad_norm({Tensor()}, 1.0),
                         doctest::Contains("clip_grad_norm: parameter 0 is an undefined tensor"),
                         Error);
}

TEST_CASE("optim: weight_decay_groups by name leaves ViT tokens and positions undecayed, as timm") {
    Tensor pos = zeros({1, 5, 4}), qkv = zeros({12, 4}), cls = zeros({1, 1, 4}), bias = zeros({4});
    std::vector<std::pair<std::string, Tensor>> named = {
        {"pos_embed", pos}, {"blocks.0.attn.qkv.weight", qkv}, {"cls_token", cls}, {"norm.bias", bias}};
    std::vector<ParamGroupSpec> groups = weight_decay_groups(named);
    REQUIRE(groups.size() == 2);
    REQUIRE(groups[0].params.size() == 1);
    CHECK(groups[0].params[0].same(qkv));
    CHECK(groups[1].params.size() == 3);
    CHECK(groups[1].weight_decay == 0.0);
}
