// tests/consumer/main.cpp: a few lines of retort through <retort/retort.h> alone, as a program
// outside the project writes them: a model from the registry, a forward and backward pass, an
// SGD step, and a distillation objective by name. Exits non-zero if a result is wrong.
#include <retort/retort.h>

#include <cmath>
#include <cstdio>

int main() {
    using namespace retort;
    try {
        manual_seed(0);
        std::shared_ptr<Model> net = create_model("resnet8:in_chans=1,num_classes=10");
        Tensor images = randn({4, 1, 28, 28});
        const Tensor labels = from_vector<std::int64_t>({0, 1, 2, 3}, {4});

        SgdOptions options;
        options.lr = 0.1;
        options.momentum = 0.9;
        SGD sgd(net->parameters(), options);
        const Tensor logits = net->forward(images);
        const Tensor loss = cross_entropy(logits, labels);
        sgd.zero_grad();
        loss.backward();
        sgd.step();
        const double before = loss.item();
        const double after = cross_entropy(net->forward(images), labels).item();

        // KD of the network against itself after the step: a finite, non-negative number.
        Config config;
        declare_objective_keys(config);  // [kd] T = 4, ...
        ObjectiveSetup setup;
        setup.num_classes = 10;
        std::shared_ptr<Objective> kd = create_objective("kd", config, setup);
        ObjectiveInputs inputs;
        inputs.student_logits = net->forward(images);
        inputs.teacher_logits = logits.detach();
        inputs.labels = labels;
        const double kd_value = kd->forward(inputs).item();

        std::printf("logits (%lld, %lld); loss %.4f -> %.4f; kd %.4f; threads %d\n",
                    static_cast<long long>(logits.size(0)), static_cast<long long>(logits.size(1)),
                    before, after, kd_value, num_threads());
        if (logits.size(0) != 4 || logits.size(1) != 10 || !std::isfinite(before) ||
            !(after < before) || !std::isfinite(kd_value) || kd_value < 0) {
            std::fprintf(stderr, "consumer: unexpected results\n");
            return 1;
        }
        std::printf("consumer ok\n");
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
