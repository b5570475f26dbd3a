// tools/examples/train_loop.cpp: train a small network with autodiff and SGD in a plain loop:
// no trainer, no config, no data loader. What every framework's training step is:
//     logits = model(x); loss = cross_entropy(logits, y); zero_grad; loss.backward(); step
//
// The task: points in the plane, labelled by which of three spiral arms they lie on. A two-layer
// MLP learns it; the loss falls and the accuracy rises as it trains.
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/engine.h"
#include "layers/activation.h"
#include "layers/linear.h"
#include "layers/sequential.h"

using namespace retort;

// n points per arm of a 3-arm spiral: x (3n, 2) float32, y (3n) int64.
void make_spirals(std::int64_t n, Tensor& x, Tensor& y) {
    std::vector<float> points;
    std::vector<std::int64_t> labels;
    Generator gen(7);
    const Tensor noise = randn({3 * n, 2}, DType::f32, &gen);
    const float* e = noise.data<float>();
    for (std::int64_t arm = 0; arm < 3; ++arm)
        for (std::int64_t i = 0; i < n; ++i) {
            const double r = static_cast<double>(i) / static_cast<double>(n);
            const double angle = 4.0 * r + 2.0944 * static_cast<double>(arm);
            const std::int64_t k = arm * n + i;
            points.push_back(static_cast<float>(r * std::sin(angle) + 0.05 * e[2 * k]));
            points.push_back(static_cast<float>(r * std::cos(angle) + 0.05 * e[2 * k + 1]));
            labels.push_back(arm);
        }
    x = from_vector(points, {3 * n, 2});
    y = from_vector(labels, {3 * n});
}

int main() {
    manual_seed(0);
    Tensor x, y;
    make_spirals(200, x, y);

    // A Sequential of registered children: its parameters are what the optimizer updates.
    auto model = std::make_shared<Sequential>();
    model->push_back(std::make_shared<Linear>(2, 64));
    model->push_back(std::make_shared<Activation>("relu"));
    model->push_back(std::make_shared<Linear>(64, 3));

    SgdOptions options;
    options.lr = 0.5;
    options.momentum = 0.9;
    SGD optimizer(model->parameters(), options);

    double first_loss = 0, last_loss = 0, accuracy = 0;
    for (int step = 0; step <= 300; ++step) {
        const Tensor logits = model->forward(x);      // records the graph
        const Tensor loss = cross_entropy(logits, y);  // a scalar
        optimizer.zero_grad();
        loss.backward();                               // fills every parameter's .grad()
        optimizer.step();                              // p -= lr * (momentum-smoothed) grad

        last_loss = loss.item();
        if (step == 0) first_loss = last_loss;
        const std::vector<std::int64_t> predicted = argmax(logits, 1).to_vector<std::int64_t>();
        const std::vector<std::int64_t> truth = y.to_vector<std::int64_t>();
        std::int64_t right = 0;
        for (std::size_t i = 0; i < truth.size(); ++i) right += predicted[i] == truth[i];
        accuracy = 100.0 * static_cast<double>(right) / static_cast<double>(truth.size());
        if (step % 50 == 0) std::printf("step %3d  loss %.4f  accuracy %.1f%%\n", step, last_loss, accuracy);
    }
    // The example checks itself: the suite runs it and a broken engine fails here.
    if (!(last_loss < 0.5 * first_loss && accuracy > 90)) {
        std::fprintf(stderr, "train_loop: did not learn (loss %.4f -> %.4f, accuracy %.1f%%)\n",
                     first_loss, last_loss, accuracy);
        return 1;
    }
    return 0;
}
