// tools/cmd_demo.cpp: `retort demo`: fits a small MLP to a generated three-arm spiral by autodiff
// and prints the falling loss and the accuracy. Everything it uses is the engine: random tensors,
// linear/relu/cross_entropy with their backward passes, and AdamW.
//
//   retort demo [--steps N] [--seed S] [--hidden H] [--lr LR] [--threads T]
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/optim/adamw.h"
#include "engine/engine.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

namespace {

// Points on three interleaved spiral arms, with noise: a classic problem that a linear model
// cannot solve and a small MLP can. x (N, 2) float32, labels (N) int64.
void make_spiral(std::int64_t per_class, Generator& gen, Tensor& x, Tensor& labels) {
    const std::int64_t classes = 3, n = per_class * classes;
    x = Tensor::empty({n, 2});
    labels = Tensor::empty({n}, DType::i64);
    std::vector<float> noise = randn({n}, DType::f32, &gen).to_vector<float>();
    float* px = x.data<float>();
    std::int64_t* py = labels.data<std::int64_t>();
    for (std::int64_t c = 0; c < classes; ++c)
        for (std::int64_t i = 0; i < per_class; ++i) {
            const std::int64_t k = c * per_class + i;
            const float radius = static_cast<float>(i) / per_class;
            const float angle = 4.0f * (c + radius) + 0.2f * noise[k];
            px[2 * k] = radius * std::sin(angle);
            px[2 * k + 1] = radius * std::cos(angle);
            py[k] = c;
        }
}

// A linear layer's parameters, initialized as torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in)).
struct Dense {
    Tensor weight, bias;
    Dense(std::int64_t in, std::int64_t out, Generator& gen) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(in));
        weight = uniform({out, in}, -bound, bound, DType::f32, &gen).set_requires_grad();
        bias = uniform({out}, -bound, bound, DType::f32, &gen).set_requires_grad();
    }
    Tensor operator()(const Tensor& x) const { return linear(x, weight, bias); }
};

double accuracy(const Tensor& logits, const Tensor& labels) {
    Tensor hits = eq(argmax(logits, 1), labels);
    return static_cast<double>(sum(hits).item()) / static_cast<double>(labels.numel());
}

}  // namespace

int run_demo(const std::vector<std::string>& args) {
    Options opts("demo", args,
                 {{"steps", "400", "optimization steps"},
                  {"seed", "0", "random seed (data and initialization)"},
                  {"hidden", "64", "hidden units per layer"},
                  {"lr", "0.01", "AdamW learning rate"},
                  {"threads", "0", "CPU threads (0: OpenMP's default)"}});
    if (opts.help_requested()) return 0;
    const std::int64_t steps = opts.get_int("steps", 1, 1000000);
    const std::int64_t hidden = opts.get_int("hidden", 1, 65536);
    const double lr = opts.get_double("lr", 1e-8, 10);
    const std::int64_t threads = opts.get_int("threads", 0, 1024);
    if (threads > 0) set_num_threads(static_cast<int>(threads));

    Generator gen(static_cast<std::uint64_t>(opts.get_int("seed", 0, INT64_MAX)));
    Tensor x, labels;
    make_spiral(300, gen, x, labels);
    Dense layer1(2, hidden, gen), layer2(hidden, hidden, gen), layer3(hidden, 3, gen);
    auto model = [&](const Tensor& input) {
        return layer3(relu(layer2(relu(layer1(input)))));
    };
    AdamW optimizer({layer1.weight, layer1.bias, layer2.weight, layer2.bias, layer3.weight,
                     layer3.bias},
                    AdamWOptions{.lr = lr, .weight_decay = 1e-4});

    std::printf("retort demo: a %lld-%lld-%lld-3 MLP learns a 3-arm spiral (%lld points)\n",
                2LL, static_cast<long long>(hidden), static_cast<long long>(hidden),
                static_cast<long long>(x.size(0)));
    std::printf("%6s %10s %9s\n", "step", "loss", "accuracy");
    double first_loss = 0, last_loss = 0;
    for (std::int64_t step = 0; step <= steps; ++step) {
        Tensor logits = model(x);
        Tensor loss = cross_entropy(logits, labels);
        last_loss = loss.item();
        if (step == 0) first_loss = last_loss;
        if (step % std::max<std::int64_t>(1, steps / 10) == 0 || step == steps)
            std::printf("%6lld %10.4f %8.1f%%\n", static_cast<long long>(step), last_loss,
                        100 * accuracy(logits.detach(), labels));
        if (step == steps) break;
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }
    std::printf("loss %.4f -> %.4f\n", first_loss, last_loss);
    return last_loss < first_loss ? 0 : 1;
}

}  // namespace retort::cli
