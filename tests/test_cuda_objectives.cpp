// tests/test_cuda_objectives.cpp: every registered distillation objective on a GPU against the
// same objective on the CPU (same seed, same inputs): the loss and the gradients of the student's
// inputs and of the objective's own parameters. Needs a GPU; skips in one line without one.
#include <doctest/doctest.h>

#include <map>

#include "distill/distill.h"
#include "engine/cuda/runtime.h"
#include "engine/engine.h"

using namespace retort;

namespace {

struct Result {
    std::map<std::string, Tensor> out;  // on the CPU
    std::string error;
};

// The objective `name` built from `seed`, run on `device`: logits (B, 10) and, when it takes
// feature pairs, one (B, 8, 4, 4) pair.
Result run_objective(const ObjectiveEntry& entry, Device device) {
    Result r;
    try {
        const std::int64_t B = 4;
        Generator gen(7);
        Config config;
        declare_objective_keys(config);
        ObjectiveSetup setup;
        setup.seed = 5;
        setup.num_samples = 64;
        setup.num_classes = 10;
        ObjectiveInputs in;
        Tensor s_logits = randn({B, 10}, DType::f32, &gen), t_logits = randn({B, 10}, DType::f32, &gen);
        Tensor labels = randint(0, 10, {B}, DType::i64, &gen);
        Tensor indices = narrow(randperm(64, &gen), 0, 0, B);
        in.student_logits = s_logits.to(device).set_requires_grad(true);
        in.teacher_logits = t_logits.to(device);
        in.labels = labels.to(device);
        in.sample_indices = indices;
        in.training = true;
        const int pairs = entry.max_pairs == 0 ? 0 : std::max(entry.min_pairs, 1);
        std::vector<Tensor> students;
        for (int i = 0; i < pairs; ++i) {
            Tensor s = randn({B, 8, 4, 4}, DType::f32, &gen), t = randn({B, 8, 4, 4}, DType::f32, &gen);
            const std::string x = std::to_string(i) + "_layer";
            setup.pairs.push_back({x, s.shape(), t.shape()});
            students.push_back(s.to(device).set_requires_grad(true));
            in.features.push_back({x, students.back(), t.to(device)});
        }
        std::shared_ptr<Objective> objective = create_objective(entry.name, config, setup);
        objective->to(device);
        manual_seed(5);
        Tensor loss = objective->forward(in);
        if (loss.requires_grad()) loss.backward();
        auto grad = [](const Tensor& t) {
            return t.grad().defined() ? t.grad().to(Device::cpu()) : zeros_like(t.detach()).to(Device::cpu());
        };
        r.out["loss"] = loss.detach().to(Device::cpu());
        r.out["grad.student.logits"] = grad(in.student_logits);
        for (std::size_t i = 0; i < students.size(); ++i) r.out["grad.feat." + std::to_string(i)] = grad(students[i]);
        for (const auto& [name, p] : objective->named_parameters()) r.out["grad.param." + name] = grad(p);
    } catch (const Error& e) {
        r.error = e.what();
    }
    return r;
}

}  // namespace

TEST_CASE("cuda objectives: every registered objective gives the CPU's loss and gradients on a GPU") {
    if (cuda::device_count() == 0) {
        MESSAGE("skipped: no CUDA device (CUDA built in: ", cuda::built(), ")");
        return;
    }
    for (const ObjectiveEntry& entry : objective_table()) {
        CAPTURE(entry.name);
        const Result cpu = run_objective(entry, Device::cpu());
        if (!cpu.error.empty()) continue;  // inputs this objective does not take
        const Result gpu = run_objective(entry, Device::cuda());
        if (!gpu.error.empty()) {
            MESSAGE("objective ", entry.name, " on a GPU: ", gpu.error);
            CHECK(gpu.error.find("no kernel for") != std::string::npos);  // a clear refusal only
            continue;
        }
        for (const auto& [name, expected] : cpu.out) {
            CAPTURE(name);
            REQUIRE(gpu.out.count(name) == 1);
            const std::vector<double> a = gpu.out.at(name).to_vector<double>(), b = expected.to_vector<double>();
            REQUIRE(a.size() == b.size());
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < a.size(); ++i) {
                worst = std::max(worst, std::abs(a[i] - b[i]));
                scale = std::max(scale, std::abs(b[i]));
            }
            CHECK(worst / (1 + scale) < 1e-4);
        }
    }
}
