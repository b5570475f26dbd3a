// tests/test_cuda_ops.cpp: every op the CUDA backend runs, forward and backward, against the CPU
// backend on the same random inputs, and a few training steps on both. They need a GPU; without
// one each test case says it skipped, in one line (the kernels' arithmetic is still tested on the
// CPU by tests/test_kernels.cpp).
#include <doctest/doctest.h>

#include <array>
#include <functional>
#include <map>

#include "engine/cuda/blas.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/runtime.h"
#include "data/synthetic.h"
#include "engine/engine.h"
#include "distill/trainer.h"
#include "models/models.h"
#include "tests/cli_run.h"
#include "tests/gradcheck.h"
#include "tests/tiny_run.h"

using namespace retort;

namespace {

bool have_gpu() {
    if (cuda::device_count() > 0) return true;
    MESSAGE("skipped: no CUDA device (CUDA built in: ", cuda::built(), ")");
    return false;
}

// max |a - b| / (1 + max |b|): a relative error that does not blow up at zeros.
double relative_error(const Tensor& got, const Tensor& expected) {
    REQUIRE(got.shape() == expected.shape());
    const std::vector<double> a = got.to_vector<double>(), b = expected.to_vector<double>();
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::abs(a[i] - b[i]));
        scale = std::max(scale, std::abs(b[i]));
    }
    return worst / (1 + scale);
}

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs op on CPU inputs and on their GPU copies; compares the outputs and, for floating-point
// outputs, the gradients of every input that requires one under the same upstream gradient.
void compare(const char* name, const Op& op, const std::vector<Tensor>& cpu_inputs,
             double tolerance = 1e-5) {
    CAPTURE(name);
    std::vector<Tensor> gpu_inputs;
    for (const Tensor& t : cpu_inputs) {
        Tensor g = t.detach().to(Device::cuda());
        if (t.requires_grad()) g.set_requires_grad(true);
        gpu_inputs.push_back(g);
    }
    Tensor cpu_out = op(cpu_inputs), gpu_out = op(gpu_inputs);
    CHECK(gpu_out.device().is_cuda());
    CHECK(gpu_out.dtype() == cpu_out.dtype());
    CHECK(relative_error(gpu_out.to(Device::cpu()), cpu_out) < tolerance);
    if (!cpu_out.requires_grad()) return;
    Generator gen(99);
    Tensor upstream = uniform(cpu_out.shape(), -1, 1, cpu_out.dtype(), &gen);
    cpu_out.backward(upstream);
    gpu_out.backward(upstream.to(Device::cuda()));
    for (std::size_t k = 0; k < cpu_inputs.size(); ++k) {
        if (!cpu_inputs[k].requires_grad()) continue;
        CAPTURE(k);
        REQUIRE(gpu_inputs[k].grad().defined());
        CHECK(gpu_inputs[k].grad().device().is_cuda());
        CHECK(relative_error(gpu_inputs[k].grad().to(Device::cpu()), cpu_inputs[k].grad()) <
              tolerance);
    }
}

Tensor input(const Shape& shape, std::uint64_t seed, double low = -2, double high = 2,
             DType dtype = DType::f32) {
    Generator gen(seed);
    Tensor t = uniform(shape, low, high, dtype, &gen);
    t.set_requires_grad(true);
    return t;
}

}  // namespace

TEST_CASE("cuda ops: binary ops with broadcasting, comparisons, where, scalars from the CPU") {
    if (!have_gpu()) return;
    for (DType dtype : {DType::f32, DType::f64}) {
        Tensor a = input({4, 3, 5}, 1, -2, 2, dtype), b = input({3, 1}, 2, -2, 2, dtype);
        Tensor positive = input({4, 3, 5}, 3, 0.5, 2, dtype);
        compare("add", [](auto& v) { return add(v[0], v[1]); }, {a, b});
        compare("sub", [](auto& v) { return sub(v[0], v[1]); }, {a, b});
        compare("mul", [](auto& v) { return mul(v[0], v[1]); }, {a, b});
        compare("div", [](auto& v) { return div(v[0], v[1]); }, {a, positive});
        compare("pow", [](auto& v) { return pow(v[0], v[1]); }, {positive, b});
        compare("minimum", [](auto& v) { return minimum(v[0], v[1]); }, {a, b});
        compare("maximum", [](auto& v) { return maximum(v[0], v[1]); }, {a, b});
        compare("lt", [](auto& v) { return lt(v[0], v[1]); }, {a.detach(), b.detach()});
        compare("where", [](auto& v) { return where(gt(v[0], v[1]), v[0], v[1]); }, {a, b});
        compare("scalar", [](auto& v) { return v[0] * 3.0 + 1.0; }, {a});
        compare("broadcast_to", [](auto& v) { return broadcast_to(v[0], {2, 3, 7}); }, {b});
    }
    Tensor i = from_vector<std::int64_t>({1, -2, 3, 4, 5, 6}, {2, 3});
    compare("int add", [](auto& v) { return add(v[0], v[0]); }, {i});
}

TEST_CASE("cuda ops: every unary op and activation, forward and backward") {
    if (!have_gpu()) return;
    Tensor x = input({257, 3}, 4, -4, 4), pos = input({257, 3}, 5, 0.1, 4);
    compare("neg", [](auto& v) { return neg(v[0]); }, {x});
    compare("exp", [](auto& v) { return exp(v[0]); }, {x});
    compare("log", [](auto& v) { return log(v[0]); }, {pos});
    compare("sqrt", [](auto& v) { return sqrt(v[0]); }, {pos});
    compare("rsqrt", [](auto& v) { return rsqrt(v[0]); }, {pos});
    compare("abs", [](auto& v) { return abs(v[0]); }, {x});
    compare("pow scalar", [](auto& v) { return pow(v[0], 1.7); }, {pos});
    compare("clamp", [](auto& v) { return clamp(v[0], -1.0, 2.0); }, {x});
    compare("relu", [](auto& v) { return relu(v[0]); }, {x});
    compare("relu6", [](auto& v) { return relu6(v[0] * 3.0); }, {x});
    compare("leaky_relu", [](auto& v) { return leaky_relu(v[0], 0.2); }, {x});
    compare("gelu", [](auto& v) { return gelu(v[0]); }, {x});
    compare("gelu tanh", [](auto& v) { return gelu(v[0], "tanh"); }, {x});
    compare("sigmoid", [](auto& v) { return sigmoid(v[0]); }, {x});
    compare("silu", [](auto& v) { return silu(v[0]); }, {x});
    compare("tanh", [](auto& v) { return tanh(v[0]); }, {x});
    compare("hardswish", [](auto& v) { return hardswish(v[0]); }, {x});
    compare("hardsigmoid", [](auto& v) { return hardsigmoid(v[0]); }, {x});
}

TEST_CASE("cuda ops: reductions, max/argmax, logsumexp, softmax") {
    if (!have_gpu()) return;
    Tensor x = input({6, 2000, 3}, 6);
    compare("sum all", [](auto& v) { return sum(v[0]); }, {x});
    compare("sum dim 1", [](auto& v) { return sum(v[0], {1}); }, {x});
    compare("mean dims 0 2", [](auto& v) { return mean(v[0], {0, 2}, true); }, {x});
    compare("var", [](auto& v) { return var(v[0], {1}); }, {x});
    compare("max dim", [](auto& v) { return max(v[0], 1).values; }, {x});
    compare("max all", [](auto& v) { return max(v[0]); }, {x});
    compare("argmin", [](auto& v) { return argmin(v[0], 2); }, {x.detach()});
    compare("logsumexp", [](auto& v) { return logsumexp(v[0], {1}); }, {x});
    Tensor logits = input({32, 10}, 7, -5, 5);
    compare("softmax", [](auto& v) { return softmax(v[0], -1); }, {logits});
    compare("log_softmax", [](auto& v) { return log_softmax(v[0], 0); }, {logits});
    Tensor maps = input({2, 5, 4, 4}, 8);
    compare("softmax dim 1", [](auto& v) { return softmax(v[0], 1); }, {maps});
}

TEST_CASE("cuda ops: fused attention (online softmax), forward and backward, at ViT sizes") {
    if (!have_gpu()) return;
    Tensor q = input({2, 6, 197, 64}, 30, -1, 1), k = input({2, 6, 197, 64}, 31, -1, 1),
           v = input({2, 6, 197, 64}, 32, -1, 1);
    compare("attention vit_small", [](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], 0.125); },
            {q, k, v}, 1e-4);
    Tensor q2 = input({3, 9, 16}, 33), k2 = input({3, 40, 16}, 34), v2 = input({3, 40, 16}, 35);
    compare("attention 9 queries over 40 keys", [](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], 0.7); },
            {q2, k2, v2}, 1e-4);
}

TEST_CASE("cuda ops: GPU batches copied ahead on the copy stream equal the CPU loader's, epoch after epoch") {
    if (!have_gpu()) return;
    SyntheticOptions o;
    o.num_classes = 3;
    o.size = 45;
    o.channels = 1;
    o.height = o.width = 8;
    auto data = std::make_shared<SyntheticDataset>(o, 2, "train");
    LoaderOptions cpu_options;
    cpu_options.batch_size = 8;
    cpu_options.workers = 2;
    cpu_options.transforms = "flip";
    cpu_options.batch_transform = "mixup:alpha=0.4";
    LoaderOptions gpu_options = cpu_options;
    gpu_options.device = Device::cuda();
    DataLoader cpu_loader(data, cpu_options), gpu_loader(data, gpu_options);
    for (std::int64_t epoch : {0, 1}) {
        cpu_loader.start_epoch(epoch, epoch);  // the second epoch skips its first batch (resume)
        gpu_loader.start_epoch(epoch, epoch);
        Batch a, b;
        int batches = 0;
        while (cpu_loader.next(a)) {
            REQUIRE(gpu_loader.next(b));
            CHECK(b.images.device().is_cuda());
            CHECK(b.indices == a.indices);
            CHECK(relative_error(b.images.to(Device::cpu()), a.images) == 0);
            CHECK(relative_error(b.targets.to(Device::cpu()), a.targets) == 0);
            CHECK(b.labels.to(Device::cpu()).to_vector<std::int64_t>() == a.labels.to_vector<std::int64_t>());
            ++batches;
        }
        CHECK_FALSE(gpu_loader.next(b));
        CHECK(batches == 6 - epoch);
    }
}

TEST_CASE("cuda ops: matmul (batched, broadcast) and linear through cuBLAS, TF32 off") {
    if (!have_gpu()) return;
    REQUIRE(precision() == Precision::f32);
    for (DType dtype : {DType::f32, DType::f64}) {
        Tensor a = input({3, 4, 17, 9}, 9, -1, 1, dtype), b = input({4, 9, 11}, 10, -1, 1, dtype);
        compare("matmul batched", [](auto& v) { return matmul(v[0], v[1]); }, {a, b});
        Tensor m = input({9, 11}, 11, -1, 1, dtype);
        compare("matmul folded", [](auto& v) { return matmul(v[0], v[1]); }, {a, m});
        Tensor one = input({1, 17, 9}, 12, -1, 1, dtype);
        compare("matmul shared a", [](auto& v) { return matmul(v[0], v[1]); }, {one, b.reshape({4, 9, 11})});
        Tensor x = input({5, 7, 9}, 13, -1, 1, dtype), w = input({6, 9}, 14, -1, 1, dtype);
        Tensor bias = input({6}, 15, -1, 1, dtype);
        compare("linear", [](auto& v) { return linear(v[0], v[1], v[2]); }, {x, w, bias});
    }
}

TEST_CASE("cuda ops: permute, transpose, concat, stack, narrow, split") {
    if (!have_gpu()) return;
    Tensor x = input({2, 3, 4, 5}, 18), y = input({2, 3, 2, 5}, 19);
    compare("permute", [](auto& v) { return permute(v[0], {0, 2, 3, 1}); }, {x});
    compare("permute reversed", [](auto& v) { return permute(v[0], {3, 2, 1, 0}); }, {x});
    compare("transpose", [](auto& v) { return transpose(v[0], -1, -2); }, {x});
    compare("concat", [](auto& v) { return concat({v[0], v[1]}, 2); }, {x, y});
    compare("stack", [](auto& v) { return stack({v[0], v[0] * 2.0}, 1); }, {y});
    compare("narrow", [](auto& v) { return narrow(v[0], 3, 1, 3); }, {x});
    compare("split", [](auto& v) { return split(v[0], 2, 1)[1]; }, {x});
}

TEST_CASE("cuda ops: batch norm (training and eval), layer norm, losses, norms") {
    if (!have_gpu()) return;
    Tensor x = input({8, 3, 6, 6}, 20), w = input({3}, 21), b = input({3}, 22);
    for (bool with_cudnn : {true, false})  // training mode goes through cuDNN when it is there
    for (bool training : {true, false}) {
        cuda::set_use_cudnn(with_cudnn);
        CAPTURE(with_cudnn);
        Tensor rm = zeros({3}), rv = ones({3});
        Tensor gpu_rm = rm.to(Device::cuda()), gpu_rv = rv.to(Device::cuda());
        compare(training ? "batch_norm training" : "batch_norm eval",
                [&](auto& v) {
                    const bool gpu = v[0].device().is_cuda();
                    return batch_norm(v[0], gpu ? gpu_rm : rm, gpu ? gpu_rv : rv, v[1], v[2],
                                      training, 0.1, 1e-5);
                },
                {x, w, b});
        CHECK(relative_error(gpu_rm.to(Device::cpu()), rm) < 1e-6);
        CHECK(relative_error(gpu_rv.to(Device::cpu()), rv) < 1e-6);
    }
    cuda::set_use_cudnn(true);
    Tensor tokens = input({4, 9, 16}, 23), lw = input({16}, 24), lb = input({16}, 25);
    compare("layer_norm", [](auto& v) { return layer_norm(v[0], {16}, v[1], v[2], 1e-6); },
            {tokens, lw, lb});
    Tensor logits = input({16, 10}, 26, -4, 4);
    Tensor labels = from_vector<std::int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, -100});
    compare("cross_entropy",
            [&](auto& v) {
                return cross_entropy(v[0], labels.to(v[0].device()), "mean", 0.1, -100);
            },
            {logits});
    Tensor probs = softmax(input({16, 10}, 27), -1).detach();
    compare("kl_div", [](auto& v) { return kl_div(log_softmax(v[0], 1), v[1], "batchmean"); },
            {logits, probs});
    compare("mse_loss", [](auto& v) { return mse_loss(v[0], v[1]); }, {logits, probs});
    compare("normalize", [](auto& v) { return normalize(v[0], 2.0, 1); }, {logits});
    compare("cosine_similarity", [](auto& v) { return cosine_similarity(v[0], v[1], 1); },
            {logits, probs});
}

TEST_CASE("cuda ops: conv2d (plain, strided, grouped, depthwise, with bias), cuDNN and the kernels") {
    if (!have_gpu()) return;
    MESSAGE("cuDNN built in: ", cuda::cudnn_built());
    // cuDNN for all, cuDNN with the depthwise kernel, the kernels for all
    for (int path : {0, 1, 2}) {
        const bool with_cudnn = path < 2;
        if (with_cudnn && !cuda::cudnn_built()) continue;
        cuda::set_use_cudnn(with_cudnn);
        cuda::set_cudnn_depthwise(path == 0);
        CAPTURE(path);
        Tensor x = input({3, 4, 9, 8}, 30);
        struct Case {
            const char* name;
            Shape weight;
            std::array<std::int64_t, 2> stride, padding, dilation;
            std::int64_t groups;
        };
        for (const Case& c : {Case{"3x3", {6, 4, 3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
                              Case{"strided dilated", {5, 4, 3, 2}, {2, 1}, {2, 1}, {1, 2}, 1},
                              Case{"1x1", {8, 4, 1, 1}, {1, 1}, {0, 0}, {1, 1}, 1},
                              Case{"grouped", {6, 2, 3, 3}, {1, 2}, {1, 1}, {1, 1}, 2},
                              Case{"depthwise", {8, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, 4}}) {
            Conv2dOptions options;
            options.stride = c.stride;
            options.padding = c.padding;
            options.dilation = c.dilation;
            options.groups = c.groups;
            Tensor w = input(c.weight, 31, -0.5, 0.5), b = input({c.weight[0]}, 32);
            compare(c.name, [&](auto& v) { return conv2d(v[0], v[1], v[2], options); }, {x, w, b});
        }
    }
    cuda::set_use_cudnn(true);
    cuda::set_cudnn_depthwise(true);
}

TEST_CASE("cuda ops: max, average and adaptive pooling") {
    if (!have_gpu()) return;
    Tensor x = input({2, 3, 11, 10}, 33);
    Pool2dOptions options;
    options.kernel = {3, 3};
    options.stride = {2, 2};
    options.padding = {1, 1};
    options.ceil_mode = true;
    compare("max_pool2d", [&](auto& v) { return max_pool2d(v[0], options); }, {x});
    compare("avg_pool2d", [&](auto& v) { return avg_pool2d(v[0], options); }, {x});
    compare("adaptive_avg_pool2d", [](auto& v) { return adaptive_avg_pool2d(v[0], {4, 3}); }, {x});
}

TEST_CASE("cuda ops: dropout draws the CPU's mask from the same generator state") {
    if (!have_gpu()) return;
    Tensor x = input({4, 333}, 34);
    Generator cpu_gen(8), gpu_gen(8);
    compare("dropout",
            [&](auto& v) { return dropout(v[0], 0.25, true, v[0].device().is_cuda() ? &gpu_gen : &cpu_gen); },
            {x});
}

TEST_CASE("cuda ops: index_select, gather, scatter_add, pad") {
    if (!have_gpu()) return;
    Tensor x = input({3, 5, 4}, 35);
    Tensor index = from_vector<std::int64_t>({4, 0, 4, 2});
    compare("index_select", [&](auto& v) { return index_select(v[0], 1, index.to(v[0].device())); }, {x});
    Tensor gidx = from_vector<std::int64_t>({3, 0, 1, 1, 2, 2, 0, 0, 3, 1, 1, 2,
                                             0, 3, 3, 2, 1, 0, 2, 2, 3, 0, 1, 3}, {3, 2, 4});
    compare("gather", [&](auto& v) { return gather(v[0], 2, gidx.to(v[0].device())); }, {x});
    Tensor src = input({3, 3, 4}, 36);
    compare("scatter_add",
            [&](auto& v) { return scatter_add(v[0], 2, gidx.to(v[0].device()), v[1]); }, {x, src});
    compare("pad constant", [](auto& v) { return pad(v[0], {2, -1, 1, 3}, "constant", 0.5); }, {x});
    compare("pad reflect", [](auto& v) { return pad(v[0], {3, 2, 1, 4}, "reflect"); }, {x});
    compare("pad replicate", [](auto& v) { return pad(v[0], {5, 0, 2, 2}, "replicate"); }, {x});
}

TEST_CASE("cuda ops: interpolate (nearest, bilinear) and gradient clipping") {
    if (!have_gpu()) return;
    Tensor x = input({2, 3, 5, 6}, 37);
    for (const char* mode : {"nearest", "bilinear"}) {
        InterpolateOptions options;
        options.size = std::array<std::int64_t, 2>{9, 4};
        options.mode = mode;
        compare(mode, [&](auto& v) { return interpolate(v[0], options); }, {x});
    }
    Tensor w = input({40000}, 38), gpu_w = w.detach().to(Device::cuda()).set_requires_grad(true);
    sum(w * w).backward();
    sum(gpu_w * gpu_w).backward();
    const double cpu_norm = clip_grad_norm({w}, 1.0), gpu_norm = clip_grad_norm({gpu_w}, 1.0);
    CHECK(std::abs(cpu_norm - gpu_norm) < 1e-6 * cpu_norm);
    CHECK(relative_error(gpu_w.grad().to(Device::cpu()), w.grad()) < 1e-6);
}

TEST_CASE("cuda ops: fft2, ifft2, rfft2, irfft2 through cuFFT, and complex magnitude and phase") {
    if (!have_gpu()) return;
    for (const auto& [H, W] : {std::pair<std::int64_t, std::int64_t>{7, 7}, {14, 14}, {13, 6}}) {
        CAPTURE(H);
        CAPTURE(W);
        Tensor real = input({2, 3, H, W}, 40), complex = input({2, 3, H, W, 2}, 41);
        Tensor half = input({2, 3, H, W / 2 + 1, 2}, 42);
        for (FftNorm norm : {FftNorm::backward, FftNorm::ortho, FftNorm::forward}) {
            compare("fft2", [&](auto& v) { return fft2(v[0], norm); }, {complex});
            compare("ifft2", [&](auto& v) { return ifft2(v[0], norm); }, {complex});
            compare("rfft2", [&](auto& v) { return rfft2(v[0], norm); }, {real});
            compare("irfft2", [&](auto& v) { return irfft2(v[0], W, norm); }, {half});
        }
        compare("complex_abs", [](auto& v) { return complex_abs(rfft2(v[0], FftNorm::ortho)); }, {real});
        compare("complex_angle", [](auto& v) { return complex_angle(v[0]); }, {complex});
    }
}

TEST_CASE("cuda ops: conversions and copies") {
    if (!have_gpu()) return;
    Tensor x = input({100}, 16, -50, 50);
    compare("to f64", [](auto& v) { return v[0].to(DType::f64); }, {x});
    compare("to i32", [](auto& v) { return v[0].detach().to(DType::i32); }, {x});
    compare("clone", [](auto& v) { return v[0].clone(); }, {x});
    Tensor z = zeros({3, 4}, DType::f32, Device::cuda());
    CHECK(z.device().is_cuda());
    CHECK(sum(z).item() == 0);
    CHECK(full({2}, 2.5, DType::f64, Device::cuda()).to_vector<double>() ==
          std::vector<double>{2.5, 2.5});
}

TEST_CASE("cuda ops: SGD and AdamW steps of a small network match the CPU") {
    if (!have_gpu()) return;
    for (const std::string optimizer : {"sgd", "adamw"}) {
        CAPTURE(optimizer);
        Generator gen(17);
        std::vector<Tensor> cpu_params = {uniform({16, 8}, -0.3, 0.3, DType::f32, &gen),
                                          zeros({16}), uniform({3, 16}, -0.3, 0.3, DType::f32, &gen),
                                          zeros({3})};
        std::vector<Tensor> gpu_params;
        for (Tensor& p : cpu_params) {
            p.set_requires_grad(true);
            gpu_params.push_back(p.detach().to(Device::cuda()).set_requires_grad(true));
        }
        Tensor data = uniform({32, 8}, -1, 1, DType::f32, &gen);
        Tensor target = uniform({32, 3}, -1, 1, DType::f32, &gen);
        auto make = [&](std::vector<Tensor>& params) -> std::unique_ptr<Optimizer> {
            if (optimizer == "sgd") return std::make_unique<SGD>(params, SgdOptions{0.1, 0.9, 0, 1e-4, true});
            return std::make_unique<AdamW>(params, AdamWOptions{});
        };
        auto cpu_opt = make(cpu_params);
        auto gpu_opt = make(gpu_params);
        auto loss_of = [](const std::vector<Tensor>& p, const Tensor& x, const Tensor& t) {
            Tensor h = gelu(linear(x, p[0], p[1]));
            Tensor d = linear(h, p[2], p[3]) - t;
            return mean(d * d);
        };
        const Tensor gpu_data = data.to(Device::cuda()), gpu_target = target.to(Device::cuda());
        for (int step = 0; step < 5; ++step) {
            cpu_opt->zero_grad();
            gpu_opt->zero_grad();
            Tensor cpu_loss = loss_of(cpu_params, data, target);
            Tensor gpu_loss = loss_of(gpu_params, gpu_data, gpu_target);
            CHECK(std::abs(cpu_loss.item() - gpu_loss.item()) < 1e-5 * (1 + cpu_loss.item()));
            cpu_loss.backward();
            gpu_loss.backward();
            cpu_opt->step();
            gpu_opt->step();
        }
        for (std::size_t k = 0; k < cpu_params.size(); ++k)
            CHECK(relative_error(gpu_params[k].to(Device::cpu()), cpu_params[k]) < 1e-5);
    }
}

namespace {

// A few SGD steps of the same model on the CPU and on the GPU, from the same weights and
// batches: the losses step by step, then the logits and every parameter at the end.
void compare_training(const std::string& spec, const Shape& input_shape) {
    CAPTURE(spec);
    manual_seed(3);
    std::shared_ptr<Model> cpu_model = create_model(spec);
    std::shared_ptr<Model> gpu_model = create_model(spec);
    std::map<std::string, Tensor> weights;
    for (auto& [name, t] : cpu_model->state_dict()) weights[name] = t;
    gpu_model->load_state_dict(weights);
    gpu_model->to(Device::cuda());
    for (auto& [name, t] : gpu_model->named_parameters()) REQUIRE(t.device().is_cuda());
    SGD cpu_opt(cpu_model->parameters(), SgdOptions{0.05, 0.9, 0, 5e-4, true});
    SGD gpu_opt(gpu_model->parameters(), SgdOptions{0.05, 0.9, 0, 5e-4, true});
    Generator gen(4);
    for (int step = 0; step < 3; ++step) {
        Tensor x = randn(input_shape, DType::f32, &gen);
        Tensor y = randint(0, 10, {input_shape[0]}, DType::i64, &gen);
        cpu_opt.zero_grad();
        gpu_opt.zero_grad();
        Tensor cpu_loss = cross_entropy(cpu_model->forward(x), y);
        Tensor gpu_loss = cross_entropy(gpu_model->forward(x.to(Device::cuda())), y.to(Device::cuda()));
        CAPTURE(step);
        CHECK(std::abs(cpu_loss.item() - gpu_loss.item()) < 1e-4 * (1 + std::abs(cpu_loss.item())));
        cpu_loss.backward();
        gpu_loss.backward();
        cpu_opt.step();
        gpu_opt.step();
    }
    cpu_model->eval();
    gpu_model->eval();
    Tensor x = randn(input_shape, DType::f32, &gen);
    CHECK(relative_error(gpu_model->forward(x.to(Device::cuda())).to(Device::cpu()),
                         cpu_model->forward(x)) < 1e-4);
    const NamedTensors cpu_state = cpu_model->state_dict(), gpu_state = gpu_model->state_dict();
    REQUIRE(cpu_state.size() == gpu_state.size());
    for (std::size_t k = 0; k < cpu_state.size(); ++k) {
        CAPTURE(cpu_state[k].first);
        CHECK(relative_error(gpu_state[k].second.to(Device::cpu()), cpu_state[k].second) < 1e-4);
    }
}

}  // namespace

TEST_CASE("cuda training: resnet20 and a small ViT take the same SGD steps on the GPU as on the CPU") {
    if (!have_gpu()) return;
    compare_training("resnet20:num_classes=10", {8, 3, 32, 32});
    compare_training("vit_tiny_patch16_224:img_size=32,patch_size=4,embed_dim=48,depth=2,num_heads=3,num_classes=10",
                     {8, 3, 32, 32});
}

TEST_CASE("modules move between devices in place, keeping their tensors' identity") {
    std::shared_ptr<Model> model = create_model("resnet8:num_classes=10");
    const Tensor first = model->parameters()[0];
    model->to(Device::cpu());  // already there: nothing changes
    CHECK(model->parameters()[0].same(first));
    Tensor a = from_vector<float>({1, 2}), b = from_vector<float>({3, 4});
    Tensor alias = a;
    a.set_data(b);
    CHECK(alias.to_vector<float>() == std::vector<float>{3, 4});  // every handle follows
    CHECK_THROWS_WITH_AS(a.set_data(from_vector<float>({1, 2, 3})), doctest::Contains("does not match"), Error);
    if (cuda::device_count() == 0)
        CHECK_THROWS_AS(model->to(Device::cuda()), Error);  // a clear error, nothing half-moved
}

TEST_CASE("cuda training: a whole run with run.device = cuda follows the CPU run") {
    if (!have_gpu()) return;
    retort::testing::TempDir dir;
    std::vector<double> final_loss;
    for (const std::string device : {"cpu", "cuda"}) {
        Config config = retort::testing::tiny_run_config({"run.device=" + device});
        const TrainConfig tc = read_train_config(config);
        std::shared_ptr<Model> model = build_model(tc);
        Trainer trainer(tc, model, open_data(tc));
        trainer.start(dir / device, config);
        trainer.run();
        for (auto& [name, t] : model->named_parameters())
            CHECK(t.device() == parse_device(device));
        final_loss.push_back(trainer.last_test().loss);
    }
    CHECK(std::abs(final_loss[0] - final_loss[1]) < 1e-3 * (1 + final_loss[0]));
}

TEST_CASE("cuda ops: bf16 and f16 products (16-bit GEMMs on the GPU) match the CPU's emulation") {
    if (!have_gpu()) return;
    for (Precision p : {Precision::bf16, Precision::f16}) {
        set_precision(p);
        CAPTURE(precision_name(p));
        Tensor a = input({3, 17, 9}, 50, -1, 1), b = input({9, 11}, 51, -1, 1);
        compare("matmul", [](auto& v) { return matmul(v[0], v[1]); }, {a, b});
        Tensor x = input({2, 4, 9, 8}, 52), w = input({6, 4, 3, 3}, 53, -0.5, 0.5), bias = input({6}, 54);
        compare("conv2d", [](auto& v) { return conv2d(v[0], v[1], v[2], Conv2dOptions{}); }, {x, w, bias});
        Tensor lx = input({5, 9}, 55), lw = input({4, 9}, 56), lb = input({4}, 57);
        compare("linear", [](auto& v) { return linear(v[0], v[1], v[2]); }, {lx, lw, lb});
    }
    set_precision(Precision::f32);
}

TEST_CASE("cuda training: retort distill runs each mode on a GPU (distill, self_distill, born_again, dml)") {
    if (!have_gpu()) return;
    retort::testing::TempDir dir;
    const std::string tools = std::string(RETORT_FIXTURES_DIR) + "/../../tools/";
    const std::string small =
        " --data synthetic:num_classes=10,size=160,test_size=32,channels=1,height=28,width=28"
        " --set data.val_size=32 --set data.batch_size=16 --set run.epochs=2"
        " --set run.max_steps_per_epoch=3 --device cuda";
    // a teacher for mode distill, trained on the GPU too
    retort::testing::CliRun teacher = retort::testing::run_retort(
        "train --config " + tools + "fashion-resnet20.conf" + small + " --out " + (dir / "teacher"));
    REQUIRE_MESSAGE(teacher.status == 0, teacher.output);
    const std::vector<std::pair<std::string, std::string>> runs = {
        {"distill-fashion-kd.conf", " --set distill.teacher_weights=" + (dir / "teacher/best.safetensors") +
                                        " --set distill.teacher=resnet20:in_chans=1,num_classes=10"
                                        " --set distill.teacher_cache=off"},
        {"distill-fashion-kd.conf", " --set distill.teacher_weights=" + (dir / "teacher/best.safetensors") +
                                        " --set distill.teacher=resnet20:in_chans=1,num_classes=10"
                                        " --set distill.teacher_cache=memory"
                                        " --set data.train_transforms=flip"},
        {"self-distill-fashion.conf", ""},
        {"born-again-fashion.conf", " --set born_again.generations=1"},
        {"dml-fashion.conf", ""}};
    int n = 0;
    for (const auto& [config, extra] : runs) {
        CAPTURE(config);
        CAPTURE(extra);
        retort::testing::CliRun r = retort::testing::run_retort(
            "distill --config " + tools + config + small + extra + " --out " +
            (dir / (config + std::to_string(n++))));
        CHECK_MESSAGE(r.status == 0, r.output);
    }
}
