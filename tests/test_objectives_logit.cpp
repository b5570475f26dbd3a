// tests/test_objectives_logit.cpp: the logit objectives kd, dkd, dist, logit_std and ce.
// Each is checked against its reference code run in PyTorch (objectives_logit.safetensors, from
// fixtures/gen_objectives_logit.py), against finite differences in float64, against properties
// the formulas imply (closed-form KD gradient, DKD's warm-up, logit_std's scale invariance), and
// every wrong input is refused with a message naming the objective and the shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "distill/objective.h"
#include "engine/engine.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::gradcheck;
using retort::testing::max_abs_diff;

namespace {

const std::vector<std::string> kLogitObjectives = {"kd", "dkd", "dist", "logit_std", "ce"};

Config objective_config() {
    Config config;
    declare_objective_keys(config);
    return config;
}

// The settings of one case, as `retort objective --set` takes them: epoch / epochs go to the
// inputs, the rest to the method's section.
std::shared_ptr<Objective> build(const std::string& method, const std::vector<std::string>& sets,
                                 ObjectiveInputs* in = nullptr) {
    Config config = objective_config();
    for (const std::string& kv : sets) {
        const std::string key = kv.substr(0, kv.find('='));
        const std::int64_t value = key == "epoch" || key == "epochs" ? std::stoll(kv.substr(key.size() + 1)) : 0;
        if (key == "epoch") in->epoch = value;
        else if (key == "epochs") in->epochs = value;
        else config.apply_override(method + "." + kv);
    }
    return create_objective(method, config, ObjectiveSetup{});
}

Tensor leaf_of(const Tensor& t) {
    Tensor leaf = t.detach().clone();
    leaf.set_requires_grad(true);
    return leaf;
}

// Random inputs: logits (B, K) in dtype, labels (B).
ObjectiveInputs random_inputs(std::int64_t B, std::int64_t K, std::uint64_t seed,
                              DType dtype = DType::f64) {
    Generator gen(seed);
    ObjectiveInputs in;
    in.student_logits = leaf_of(uniform({B, K}, -3, 3, dtype, &gen));
    in.teacher_logits = uniform({B, K}, -4, 4, dtype, &gen);
    in.labels = randint(0, K, {B}, DType::i64, &gen);
    return in;
}

double loss_of(const std::string& method, const std::vector<std::string>& sets, ObjectiveInputs in) {
    NoGradGuard no_grad;
    return build(method, sets, &in)->forward(in).item();
}

}  // namespace

TEST_CASE("objectives logit: the table rows, their keys and the declared defaults agree") {
    Config config = objective_config();
    for (const std::string& name : kLogitObjectives) {
        CAPTURE(name);
        const ObjectiveEntry& e = find_objective(name);
        CHECK(e.min_pairs == 0);
        CHECK(e.max_pairs == 0);
        CHECK(e.uses_teacher_logits == (name != "ce"));
        CHECK(e.uses_labels == (name == "dkd" || name == "ce"));
        CHECK_FALSE(e.paper.empty());
        CHECK_FALSE(e.reference.empty());
        // "T=4, warmup=20": every key of the section, with the default declare() gives it
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
    const auto& table = objective_table();
    REQUIRE(table.size() >= kLogitObjectives.size());
    for (std::size_t i = 0; i < kLogitObjectives.size(); ++i)  // logit objectives come first
        CHECK(table[i].name == kLogitObjectives[i]);
}

TEST_CASE("objectives logit: loss and gradient match the PyTorch reference fixture") {
    const SafetensorsContents fx =
        read_safetensors(std::string(RETORT_FIXTURES_DIR) + "/objectives_logit.safetensors");
    REQUIRE(fx.metadata.size() == 11);
    std::set<std::string> methods;
    for (const auto& [name, settings] : fx.metadata) {
        CAPTURE(name);
        CAPTURE(settings);
        std::stringstream words(settings);
        std::string method, word;
        words >> method;
        std::vector<std::string> sets;
        while (words >> word) sets.push_back(word);
        methods.insert(method);

        ObjectiveInputs in;
        std::shared_ptr<Objective> objective = build(method, sets, &in);
        in.student_logits = leaf_of(fx.tensors.at(name + ".student.logits"));
        in.teacher_logits = fx.tensors.at(name + ".teacher.logits");
        in.labels = fx.tensors.at(name + ".labels");
        REQUIRE(in.student_logits.dtype() == DType::f32);
        Tensor loss = objective->forward(in);
        REQUIRE(loss.shape() == Shape{});
        CHECK(loss.dtype() == DType::f32);
        loss.backward();

        const double expected = fx.tensors.at(name + ".loss").item();
        CHECK(std::abs(loss.item() - expected) <= 1e-5 * std::abs(expected));
        const Tensor expected_grad = fx.tensors.at(name + ".grad.student.logits");
        const double scale = max(abs(expected_grad)).item();
        CHECK(scale > 0);
        CHECK(max_abs_diff(in.student_logits.grad(), expected_grad) <= 1e-4 * scale);
    }
    CHECK(methods == std::set<std::string>(kLogitObjectives.begin(), kLogitObjectives.end()));
}

TEST_CASE("objectives logit: gradients agree with finite differences in float64") {
    struct Case {
        std::string method;
        std::vector<std::string> sets;
        std::int64_t B, K;
    };
    const std::vector<Case> cases = {
        {"kd", {}, 5, 7},
        {"kd", {"T=1"}, 1, 3},
        {"dkd", {"epoch=3", "epochs=100"}, 5, 7},
        {"dkd", {"T=1.5", "alpha=2"}, 3, 2},
        {"dist", {}, 5, 7},
        {"dist", {"tau=3", "gamma=0.5"}, 4, 5},
        {"dist", {}, 1, 6},  // one sample: the intra-class term is constant, its gradient 0
        {"logit_std", {}, 5, 7},
        {"logit_std", {"T=0.7"}, 2, 2},
        {"ce", {}, 5, 7},
        {"ce", {"label_smoothing=0.2"}, 3, 1},
    };
    std::uint64_t seed = 10;
    for (const Case& c : cases) {
        CAPTURE(c.method);
        CAPTURE(c.B);
        CAPTURE(c.K);
        ObjectiveInputs in = random_inputs(c.B, c.K, ++seed);
        std::shared_ptr<Objective> objective = build(c.method, c.sets, &in);
        auto f = [&](const std::vector<Tensor>& x) {
            ObjectiveInputs step = in;
            step.student_logits = x[0];
            return objective->forward(step);
        };
        CHECK(gradcheck(f, {in.student_logits}));
    }
}

TEST_CASE("objectives logit: kd is T/B (q - p) in the gradient and 0 at the teacher") {
    const double T = 3;
    ObjectiveInputs in = random_inputs(4, 6, 3);
    std::shared_ptr<Objective> kd = build("kd", {"T=3"});
    kd->forward(in).backward();
    Tensor q = softmax(in.student_logits.detach() / T, 1), p = softmax(in.teacher_logits / T, 1);
    CHECK(max_abs_diff(in.student_logits.grad(), (q - p) * (T / 4)) < 1e-12);

    in.student_logits = in.teacher_logits + 5.0;  // a shift of every logit changes no softmax
    CHECK(std::abs(kd->forward(in).item()) < 1e-12);
}

TEST_CASE("objectives logit: dkd's warm-up weighs epoch e (from 0) by min((e + 1) / warmup, 1)") {
    const ObjectiveInputs in = random_inputs(6, 9, 4);
    const double full = loss_of("dkd", {}, in);  // epochs = 0: no schedule
    CHECK(full > 0);
    for (auto [epoch, factor] : std::vector<std::pair<int, double>>{{0, 1.0 / 20}, {9, 0.5},
                                                                   {19, 1.0}, {150, 1.0}}) {
        CAPTURE(epoch);
        const double at = loss_of("dkd", {"epoch=" + std::to_string(epoch), "epochs=240"}, in);
        CHECK(at == doctest::Approx(full * factor).epsilon(1e-12));
    }
    CHECK(loss_of("dkd", {"epoch=0", "epochs=240", "warmup=0"}, in) ==
          doctest::Approx(full).epsilon(1e-12));
    CHECK(loss_of("dkd", {"epoch=1", "epochs=240", "warmup=4"}, in) ==
          doctest::Approx(full / 2).epsilon(1e-12));
    // alpha and beta weigh two separate terms: the loss is linear in each
    const double tckd = loss_of("dkd", {"beta=0"}, in), nckd = loss_of("dkd", {"alpha=0", "beta=1"}, in);
    CHECK(full == doctest::Approx(tckd + 8 * nckd).epsilon(1e-12));
}

TEST_CASE("objectives logit: logit_std ignores each sample's logit scale and offset, and dist is ~0 at the teacher") {
    ObjectiveInputs in = random_inputs(5, 8, 5);
    const double base = loss_of("logit_std", {}, in);
    CHECK(base > 0);
    Tensor rescaled = in.student_logits.detach() * 7.5 - 3.0;
    ObjectiveInputs scaled = in;
    scaled.student_logits = rescaled;
    CHECK(loss_of("logit_std", {}, scaled) == doctest::Approx(base).epsilon(1e-6));

    ObjectiveInputs same = in;
    same.student_logits = in.teacher_logits;
    CHECK(std::abs(loss_of("dist", {}, same)) < 1e-4);  // eps / ||centred column||^2, not 0
    CHECK(loss_of("dist", {}, in) > 0.01);
}

TEST_CASE("objectives logit: ce is the mean negative log-probability of the label (smoothed)") {
    ObjectiveInputs in = random_inputs(4, 5, 6);
    const std::vector<double> z = in.student_logits.to_vector<double>();
    const std::vector<std::int64_t> y = in.labels.to_vector<std::int64_t>();
    double plain = 0, smooth = 0;
    for (int b = 0; b < 4; ++b) {
        double lse = 0;
        for (int k = 0; k < 5; ++k) lse += std::exp(z[b * 5 + k]);
        lse = std::log(lse);
        double all = 0;
        for (int k = 0; k < 5; ++k) all += lse - z[b * 5 + k];
        plain += (lse - z[b * 5 + y[b]]) / 4;
        smooth += (0.9 * (lse - z[b * 5 + y[b]]) + 0.1 * all / 5) / 4;
    }
    CHECK(loss_of("ce", {}, in) == doctest::Approx(plain).epsilon(1e-12));
    CHECK(loss_of("ce", {"label_smoothing=0.1"}, in) == doctest::Approx(smooth).epsilon(1e-12));
    in.teacher_logits = Tensor();  // ce does not read the teacher
    CHECK(loss_of("ce", {}, in) == doctest::Approx(plain).epsilon(1e-12));
}

TEST_CASE("objectives logit: wrong inputs, pair counts and hyperparameters are refused") {
    const Config config = objective_config();
    ObjectiveSetup one_pair;
    one_pair.pairs.push_back({"layer1", Shape{4, 8, 2, 2}, Shape{4, 8, 2, 2}});
    for (const std::string& name : kLogitObjectives)
        CHECK_THROWS_WITH_AS(create_objective(name, config, one_pair),
                             doctest::Contains(("objective " + name + " needs 0 feature pair(s), got 1").c_str()),
                             Error);

    auto refused = [](const std::string& method, const ObjectiveInputs& in, const std::string& message) {
        CAPTURE(method);
        std::shared_ptr<Objective> objective = create_objective(method, objective_config(), {});
        CHECK_THROWS_WITH_AS(objective->forward(in), doctest::Contains(message.c_str()), Error);
    };
    const ObjectiveInputs good = random_inputs(4, 10, 7, DType::f32);
    ObjectiveInputs in = good;
    in.teacher_logits = randn({5, 10});
    refused("kd", in, "kd: student logits (4, 10) and teacher logits (5, 10) differ in batch size");
    in.teacher_logits = randn({4, 12});
    refused("dist", in, "dist: student logits (4, 10) and teacher logits (4, 12) differ in number of classes");
    in.teacher_logits = Tensor();
    refused("logit_std", in, "logit_std: the teacher logits are missing");
    in = good;
    in.teacher_logits = good.teacher_logits.to(DType::f64);
    refused("kd", in, "kd: student logits are float32 but teacher logits are float64");
    in = good;
    in.student_logits = randn({10});
    refused("kd", in, "kd: the student logits must be (B, K), got shape (10,)");
    in.student_logits = zeros({4, 10}, DType::i64);
    refused("ce", in, "ce: the student logits must be float32 or float64, got int64");
    in.student_logits = randn({0, 10});
    in.teacher_logits = randn({0, 10});
    refused("kd", in, "kd: the batch is empty");
    in.student_logits = randn({4, 1});
    in.teacher_logits = randn({4, 1});
    in.labels = zeros({4}, DType::i64);
    refused("dkd", in, "dkd needs at least 2 classes, the student logits are (4, 1)");
    refused("logit_std", in, "logit_std needs at least 2 classes");

    in = good;
    in.labels = Tensor();
    refused("dkd", in, "dkd: the labels are missing");
    refused("ce", in, "ce: the labels are missing");
    in.labels = zeros({5}, DType::i64);
    refused("dkd", in, "dkd: labels must be (B) with B = 4, one per row of the logits, got shape (5,)");
    in.labels = zeros({4}, DType::f32);
    refused("ce", in, "ce: labels must be int64, got float32");
    in.labels = from_vector<std::int64_t>({1, 2, 10, 0});
    refused("dkd", in, "dkd: label 10 of sample 2 is outside [0, 10)");
    in.labels = from_vector<std::int64_t>({1, -1, 3, 0});
    refused("ce", in, "ce: label -1 of sample 1 is outside [0, 10)");

    Config c = objective_config();
    CHECK_THROWS_WITH_AS(c.apply_override("kd.T=0"), doctest::Contains("kd.T must be in (0, 100], got 0"), Error);
    CHECK_THROWS_WITH_AS(c.apply_override("dkd.warmup=-1"), doctest::Contains("dkd.warmup must be in [0, 1000000]"), Error);
    CHECK_THROWS_WITH_AS(c.apply_override("dkd.beta=-2"), doctest::Contains("dkd.beta must be in [0, 10000]"), Error);
    CHECK_THROWS_WITH_AS(c.apply_override("dist.tau=abc"), doctest::Contains("dist.tau must be a finite number"), Error);
    CHECK_THROWS_WITH_AS(c.apply_override("logit_std.T=-1"), doctest::Contains("logit_std.T must be in (0, 100]"), Error);
    CHECK_THROWS_WITH_AS(c.apply_override("ce.label_smoothing=1.5"),
                         doctest::Contains("ce.label_smoothing must be in [0, 1], got 1.5"), Error);
    CHECK_THROWS_WITH_AS(c.apply_override("kd.temperature=4"),
                         doctest::Contains("unknown key 'temperature' in [kd]; valid keys: T"), Error);
}
