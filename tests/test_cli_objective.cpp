// tests/test_cli_objective.cpp: `retort objective` end to end: the binary writes the loss and
// the gradients the library computes (kd against its closed form, the logit fixture cases against
// PyTorch, every registered objective against a call in this process), and bad input is refused
// with a message, a non-zero exit and no output file.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "distill/objective.h"
#include "engine/engine.h"
#include "tests/cli_run.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::CliRun;
using retort::testing::max_abs_diff;
using retort::testing::run_retort;
using retort::testing::TempDir;

namespace {

CliRun objective(const std::string& method, const std::string& in, const std::string& out,
                 const std::string& extra = "") {
    return run_retort("objective --method " + method + " --inputs " + in + " --output " + out +
                      " " + extra);
}

std::set<std::string> names_of(const std::map<std::string, Tensor>& tensors) {
    std::set<std::string> names;
    for (const auto& [name, _] : tensors) names.insert(name);
    return names;
}

// |a - b| relative to the largest |b| (an all-zero b must be matched exactly).
bool close(const Tensor& a, const Tensor& b, double rtol) {
    if (a.shape() != b.shape()) return false;
    const double scale = b.numel() ? max(abs(b.to(DType::f64))).item() : 0;
    return max_abs_diff(a, b) <= rtol * scale;
}

// What `retort objective` computes, done here through the library: the reference for the binary.
struct Expected {
    std::map<std::string, Tensor> out;
    std::string error;  // the library refused these inputs: the binary must say the same
};

Expected evaluate(const std::string& method, const std::map<std::string, Tensor>& file,
                  std::uint64_t seed, std::int64_t num_samples,
                  const std::vector<std::string>& sets = {}) {
    Expected e;
    try {
        Config config;
        declare_objective_keys(config);
        for (const std::string& kv : sets) config.apply_override(method + "." + kv);
        ObjectiveSetup setup;
        setup.seed = seed;
        setup.num_samples = num_samples;
        ObjectiveInputs in;
        for (const auto& [name, t] : file) {
            if (!name.starts_with("student.feat.")) continue;
            const std::string x = name.substr(13);
            Tensor s = t.clone();
            s.set_requires_grad(true);
            setup.pairs.push_back({x, t.shape(), file.at("teacher.feat." + x).shape()});
            in.features.push_back({x, s, file.at("teacher.feat." + x)});
        }
        if (file.count("student.logits")) {
            in.student_logits = file.at("student.logits").clone();
            in.student_logits.set_requires_grad(true);
            setup.num_classes = in.student_logits.size(1);
        }
        if (file.count("teacher.logits")) in.teacher_logits = file.at("teacher.logits");
        if (file.count("labels")) in.labels = file.at("labels");
        if (file.count("indices")) in.sample_indices = file.at("indices");
        std::shared_ptr<Objective> objective = create_objective(method, config, setup);
        std::map<std::string, Tensor> params;
        for (const auto& [name, t] : file)
            if (name.starts_with("param.")) params[name.substr(6)] = t;
        if (!params.empty()) objective->load_state_dict(params);
        manual_seed(seed);
        Tensor loss = objective->forward(in);
        if (loss.requires_grad()) loss.backward();
        auto grad = [](const Tensor& t) { return t.grad().defined() ? t.grad() : zeros_like(t.detach()); };
        e.out["loss"] = loss.detach();
        if (in.student_logits.defined()) e.out["grad.student.logits"] = grad(in.student_logits);
        for (const FeaturePair& p : in.features) e.out["grad.student.feat." + p.name] = grad(p.student);
        for (const auto& [name, p] : objective->named_parameters()) e.out["grad.param." + name] = grad(p);
    } catch (const Error& error) {
        e.error = error.what();
    }
    return e;
}

std::map<std::string, Tensor> logit_inputs(std::int64_t B, std::int64_t K, std::uint64_t seed) {
    Generator gen(seed);
    return {{"student.logits", randn({B, K}, DType::f32, &gen) * 2.0},
            {"teacher.logits", randn({B, K}, DType::f32, &gen) * 3.0},
            {"labels", randint(0, K, {B}, DType::i64, &gen)}};
}

}  // namespace

TEST_CASE("cli: objective kd writes the loss and T/B (q - p) as the student's gradient") {
    TempDir dir;
    const std::map<std::string, Tensor> file = logit_inputs(4, 10, 1);
    save_safetensors(dir / "in.safetensors", file);
    CliRun r = objective("kd", dir / "in.safetensors", dir / "out.safetensors", "--set T=2");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("objective kd: loss") != std::string::npos);
    const auto out = load_safetensors(dir / "out.safetensors");
    CHECK(names_of(out) == std::set<std::string>{"loss", "grad.student.logits"});
    REQUIRE(out.at("loss").shape() == Shape{});
    CHECK(out.at("loss").dtype() == DType::f32);

    // the loss from its definition, in float64
    const Tensor s = file.at("student.logits").to(DType::f64), t = file.at("teacher.logits").to(DType::f64);
    const Tensor q = softmax(s / 2.0, 1), p = softmax(t / 2.0, 1);
    const double kl = sum(p * (log(p) - log(q))).item() * 4 / 4;  // T^2 / B = 4 / 4
    CHECK(out.at("loss").item() == doctest::Approx(kl).epsilon(1e-5));
    CHECK(close(out.at("grad.student.logits"), (q - p) * (2.0 / 4), 1e-4));

    // the library, called here, gives the same numbers; "kd.T=2" is the same setting
    CliRun again = objective("kd", dir / "in.safetensors", dir / "out2.safetensors", "--set kd.T=2");
    REQUIRE_MESSAGE(again.status == 0, again.output);
    const Expected e = evaluate("kd", file, 0, 0, {"T=2"});
    REQUIRE(e.error.empty());
    CHECK(close(load_safetensors(dir / "out2.safetensors").at("loss"), e.out.at("loss").detach(), 1e-6));
    CHECK(close(load_safetensors(dir / "out2.safetensors").at("grad.student.logits"),
                e.out.at("grad.student.logits"), 1e-6));
}

TEST_CASE("cli: objective reproduces the PyTorch fixture of every logit objective") {
    TempDir dir;
    const SafetensorsContents fx =
        read_safetensors(std::string(RETORT_FIXTURES_DIR) + "/objectives_logit.safetensors");
    REQUIRE_FALSE(fx.metadata.empty());
    for (const auto& [name, settings] : fx.metadata) {
        CAPTURE(name);
        std::stringstream words(settings);
        std::string method, word, sets;
        words >> method;
        while (words >> word) sets += " --set " + word;
        std::map<std::string, Tensor> file;
        for (const char* input : {"student.logits", "teacher.logits", "labels"})
            file[input] = fx.tensors.at(name + "." + input);
        save_safetensors(dir / "in.safetensors", file);
        CliRun r = objective(method, dir / "in.safetensors", dir / "out.safetensors", sets);
        REQUIRE_MESSAGE(r.status == 0, r.output);
        const auto out = load_safetensors(dir / "out.safetensors");
        const double expected = fx.tensors.at(name + ".loss").item();
        CHECK(std::abs(out.at("loss").item() - expected) <= 1e-5 * std::abs(expected));
        CHECK(close(out.at("grad.student.logits"), fx.tensors.at(name + ".grad.student.logits"), 1e-4));
    }
}

// Every objective in the table, whoever wrote it: the binary computes what the library does, or
// refuses with the library's message.
TEST_CASE("cli: objective works for every registered objective as the library does") {
    TempDir dir;
    const std::int64_t B = 4, num_samples = 64;
    for (const ObjectiveEntry& entry : objective_table()) {
        CAPTURE(entry.name);
        std::map<std::string, Tensor> file = logit_inputs(B, 10, 2);
        Generator gen(3);
        file["indices"] = narrow(randperm(num_samples, &gen), 0, 0, B);
        const int pairs = entry.max_pairs == 0 ? 0 : std::max(entry.min_pairs, 1);
        for (int i = 0; i < pairs; ++i) {
            const std::string x = std::to_string(i) + "_layer";
            file["student.feat." + x] = randn({B, 8, 4, 4}, DType::f32, &gen);
            file["teacher.feat." + x] = randn({B, 8, 4, 4}, DType::f32, &gen);
        }
        save_safetensors(dir / "in.safetensors", file);
        const std::string out_path = dir / (entry.name + ".safetensors");
        CliRun r = objective(entry.name, dir / "in.safetensors", out_path,
                             "--seed 5 --set num_samples=" + std::to_string(num_samples));
        const Expected e = evaluate(entry.name, file, 5, num_samples);
        if (!e.error.empty()) {
            MESSAGE("objective ", entry.name, " refuses the generic inputs: ", e.error);
            CHECK(r.status != 0);
            CHECK(r.output.find(e.error) != std::string::npos);
            continue;
        }
        REQUIRE_MESSAGE(r.status == 0, r.output);
        const auto out = load_safetensors(out_path);
        CHECK(names_of(out) == names_of(e.out));
        for (const auto& [name, expected] : e.out) {
            CAPTURE(name);
            if (out.count(name)) CHECK(close(out.at(name), expected.detach(), 1e-5));
        }
    }
}

// param.* sets the connectors: all of them (the output then matches the library with those
// values), never some of them, never a name the objective does not have.
TEST_CASE("cli: objective loads param.* tensors into the objective, all or none") {
    TempDir dir;
    const std::int64_t B = 4;
    for (const ObjectiveEntry& entry : objective_table()) {
        if (entry.max_pairs == 0) continue;
        ObjectiveSetup setup;
        setup.seed = 9;
        setup.num_samples = 64;
        const int pairs = std::max(entry.min_pairs, 1);
        std::map<std::string, Tensor> file = logit_inputs(B, 10, 4);
        Generator gen(5);
        file["indices"] = narrow(randperm(64, &gen), 0, 0, B);
        for (int i = 0; i < pairs; ++i) {
            const std::string x = std::to_string(i) + "_layer";
            file["student.feat." + x] = randn({B, 8, 4, 4}, DType::f32, &gen);
            file["teacher.feat." + x] = randn({B, 8, 4, 4}, DType::f32, &gen);
            setup.pairs.push_back({x, Shape{B, 8, 4, 4}, Shape{B, 8, 4, 4}});
        }
        Config config;
        declare_objective_keys(config);
        std::shared_ptr<Objective> other;
        try {
            other = create_objective(entry.name, config, setup);
        } catch (const Error&) {
            continue;  // the generic inputs do not fit this objective
        }
        const NamedTensors state = other->state_dict();
        if (state.empty()) continue;
        CAPTURE(entry.name);
        for (const auto& [name, t] : state)  // values no seed gives
            file["param." + name] = t.is_floating_point() ? t.detach() + 0.25 : t.detach().clone();
        save_safetensors(dir / "full.safetensors", file);
        CliRun r = objective(entry.name, dir / "full.safetensors", dir / "out.safetensors",
                             "--seed 1 --set num_samples=64");
        const Expected e = evaluate(entry.name, file, 1, 64);
        if (!e.error.empty()) continue;
        REQUIRE_MESSAGE(r.status == 0, r.output);
        const auto out = load_safetensors(dir / "out.safetensors");
        for (const auto& [name, expected] : e.out)
            if (out.count(name)) CHECK(close(out.at(name), expected.detach(), 1e-5));

        file.erase("param." + state.front().first);
        save_safetensors(dir / "partial.safetensors", file);
        file["param." + state.front().first] = state.front().second.detach();
        file["param.no_such_tensor"] = zeros({1});
        save_safetensors(dir / "unknown.safetensors", file);
        retort::testing::check_refused(
            {{objective(entry.name, dir / "partial.safetensors", dir / "bad.safetensors"),
              "missing param." + state.front().first},
             {objective(entry.name, dir / "unknown.safetensors", dir / "bad.safetensors"),
              "unknown tensor 'param.no_such_tensor'"}},
            dir / "bad.safetensors");
        return;  // one objective with connectors is enough to check the plumbing
    }
    MESSAGE("no registered objective has connectors yet: param.* loading was not exercised");
}

TEST_CASE("cli: objective refuses bad input with a message, a non-zero exit and no output") {
    TempDir dir;
    const std::map<std::string, Tensor> good = logit_inputs(4, 10, 6);
    auto write = [&](const std::string& file, std::map<std::string, Tensor> tensors) {
        save_safetensors(dir / file, tensors);
        return dir / file;
    };
    auto with = [&](const std::string& name, const Tensor& t) {
        std::map<std::string, Tensor> m = good;
        if (t.defined()) m[name] = t;
        else m.erase(name);
        return m;
    };
    const std::string in = write("good.safetensors", good);
    const std::string no_teacher = write("no_teacher.safetensors", with("teacher.logits", Tensor()));
    const std::string no_labels = write("no_labels.safetensors", with("labels", Tensor()));
    const std::string batch5 = write("batch5.safetensors", with("teacher.logits", randn({5, 10})));
    const std::string labels3 = write("labels3.safetensors", with("labels", zeros({3}, DType::i64)));
    const std::string f64 = write("f64.safetensors", with("student.logits", randn({4, 10}, DType::f64)));
    const std::string float_labels = write("flabels.safetensors", with("labels", zeros({4})));
    const std::string bad_label = write("badlabel.safetensors",
                                        with("labels", from_vector<std::int64_t>({0, 1, 10, 2})));
    const std::string classes = write("k12.safetensors", with("teacher.logits", randn({4, 12})));
    const std::string typo = write("typo.safetensors", with("teacher.logit", randn({4, 10})));
    const std::string rank1 = write("rank1.safetensors", with("student.logits", randn({10})));
    const std::string param = write("param.safetensors", with("param.weight", randn({3})));
    const std::string far_index = write("far.safetensors", with("indices", from_vector<std::int64_t>({0, 1, 70, 3})));
    const std::string negative_index =
        write("negative.safetensors", with("indices", from_vector<std::int64_t>({0, -1, 2, 3})));
    std::map<std::string, Tensor> feat = good;
    feat["student.feat.layer1"] = randn({4, 8, 2, 2});
    const std::string lonely = write("lonely.safetensors", feat);
    feat["teacher.feat.layer1"] = randn({4, 8, 2, 2});
    const std::string paired = write("paired.safetensors", feat);
    feat["teacher.feat.layer1"] = randn({3, 8, 2, 2});
    const std::string feat_batch = write("featbatch.safetensors", feat);

    const std::string out = dir / "out.safetensors";
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {objective("kdd", in, out), "unknown objective 'kdd'; valid objectives: kd, dkd, dist, logit_std, ce"},
        {objective("kd", in, out, "--set temperature=4"),
         "objective kd has no key 'temperature'; valid keys: T (and epoch, epochs, num_samples)"},
        {objective("ce", in, out, "--set T=4"), "objective ce has no key 'T'; valid keys: label_smoothing"},
        {objective("kd", in, out, "--set T=0"), "kd.T must be in (0, 100], got 0"},
        {objective("kd", in, out, "--set T"), "--set T: expected key=value"},
        {objective("dkd", in, out, "--set epoch=240 --set epochs=240"), "must be below epochs (240)"},
        {objective("dkd", in, out, "--set epoch=-1"), "--set epoch=-1: expected an integer >= 0"},
        {objective("kd", no_teacher, out), "no tensor 'teacher.logits', which objective kd needs"},
        {objective("dkd", no_labels, out), "no tensor 'labels', which objective dkd needs"},
        {objective("kd", batch5, out),
         "mismatched batch sizes: student.logits has B = 4, teacher.logits has B = 5 (shape (5, 10))"},
        {objective("ce", labels3, out), "mismatched batch sizes: student.logits has B = 4, labels has B = 3"},
        {objective("kd", f64, out), "student.logits must be float32, got float64"},
        {objective("ce", float_labels, out), "labels must be int64, got float32"},
        {objective("dkd", bad_label, out), "dkd: label 10 of sample 2 is outside [0, 10)"},
        {objective("dist", classes, out), "dist: student logits (4, 10) and teacher logits (4, 12) differ in number of classes"},
        {objective("kd", far_index, out, "--set num_samples=64"),
         "index 70 is outside the training set of num_samples = 64"},
        {objective("kd", negative_index, out), "indices must be >= 0, got -1"},
        {objective("kd", in, out, "--set num_samples=0"), "--set num_samples=0: expected an integer >= 1"},
        {objective("kd", typo, out), "unknown tensor 'teacher.logit'; expected student.logits"},
        {objective("kd", rank1, out), "student.logits must be (B, K), got shape (10,)"},
        {objective("kd", param, out), "unknown tensor 'param.weight': objective kd has no parameters or buffers"},
        {objective("kd", lonely, out), "student.feat.layer1 has no teacher.feat.layer1"},
        {objective("kd", paired, out), "objective kd needs 0 feature pair(s), got 1"},
        {objective("kd", feat_batch, out), "mismatched batch sizes"},
        {objective("kd", dir / "missing.safetensors", out), "missing.safetensors"},
        {run_retort("objective --method kd --inputs " + in), "--output is required"},
        {run_retort("objective --method kd --inputs " + in + " --output " + out + " --set"),
         "option --set needs a value"},
    };
    retort::testing::check_refused(cases, out);
}
