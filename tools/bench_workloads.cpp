// tools/bench_workloads.cpp: timing loops of `retort bench model` and `retort bench kd`.
#include "tools/bench_workloads.h"

#include <chrono>
#include <functional>

#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/runtime.h"
#include "engine/engine.h"
#include "layers/fold.h"
#include "models/registry.h"

namespace retort::cli {

namespace {

// "CxHxW" -> {C, H, W}; empty -> the model's own input size.
Shape parse_input(const std::string& text, const Model& model) {
    if (text.empty()) {
        const ModelInfo& info = model.info();
        return {info.in_chans, info.img_size, info.img_size};
    }
    Shape dims;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t end = std::min(text.find('x', pos), text.size());
        const std::string part = text.substr(pos, end - pos);
        require(!part.empty() && part.size() <= 5 &&
                    part.find_first_not_of("0123456789") == std::string::npos && std::stoll(part) > 0,
                "--input '", text, "' is not CxHxW with sizes from 1 to 99999 (e.g. 3x32x32)");
        dims.push_back(std::stoll(part));
        pos = end + 1;
    }
    require(dims.size() == 3, "--input '", text, "' is not CxHxW (e.g. 3x32x32)");
    return dims;
}

std::string input_text(const Shape& chw) {
    return cat(chw[0], "x", chw[1], "x", chw[2]);
}

// Calls step() 3 times untimed, then `steps` times; returns the seconds of the timed ones.
// Seconds for `steps` steps after 3 warm-up steps. On a GPU the clock stops only when the
// queued kernels have finished.
double time_steps(std::int64_t steps, const std::function<void()>& step,
                  Device device = Device::cpu()) {
    for (int i = 0; i < 3; ++i) step();
    cuda::synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < steps; ++i) step();
    cuda::synchronize(device);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The GPU caching allocator's statistics, as fields of a bench record.
void add_gpu_memory(BenchRecord& record, Device device) {
    if (!device.is_cuda()) return;
    const cuda::AllocatorStats s = cuda::device_allocator(device.index).stats();
    const double mib = 1 << 20;
    record.text("gpu", cuda::device_name(device.index))
        .number("gpu_in_use_mib", static_cast<double>(s.in_use) / mib)
        .number("gpu_cached_mib", static_cast<double>(s.cached) / mib)
        .number("gpu_peak_mib", static_cast<double>(s.peak_in_use) / mib)
        .integer("gpu_allocations", s.raw_allocations);
}

struct FixedBatch {
    Tensor images, labels;
};

FixedBatch make_batch(std::int64_t batch, const Shape& chw, std::int64_t num_classes) {
    Generator gen(1234);
    return {randn({batch, chw[0], chw[1], chw[2]}, DType::f32, &gen),
            randint(0, num_classes, {batch}, DType::i64, &gen)};
}

}  // namespace

BenchRecord run_model_bench(const ModelBenchOptions& o) {
    reset_peak_resident();
    const double baseline = resident_mib();
    manual_seed(0);
    require_available(o.device);
    std::shared_ptr<Model> model = create_model(o.spec);
    const Shape chw = parse_input(o.input, *model);
    // Under mpirun (retort bench model --train --ranks N): data parallel, each rank training on
    // its piece of the batch and summing gradients as the Trainer does; the record counts the
    // whole batch.
    const std::shared_ptr<dist::Communicator> ranks = dist::world();
    const bool parallel = ranks->backend() != "local";
    require(!parallel || o.train, "bench model: several ranks time training steps only (add --train)");
    require(!parallel || o.batch >= ranks->size(), "bench model: --batch ", o.batch, " is smaller than the ",
            ranks->size(), " ranks");
    const dist::Range piece = dist::shard_range(o.batch, ranks->rank(), ranks->size());
    const std::int64_t local = parallel ? piece.end - piece.begin : o.batch;
    FixedBatch data = make_batch(local, chw, model->info().num_classes);
    model->check_input(data.images);
    model->to(o.device);
    data.images = data.images.to(o.device);
    data.labels = data.labels.to(o.device);

    double seconds = 0;
    if (o.train) {
        model->train();
        SGD optimizer(model->parameters(), SgdOptions{.lr = 0.01, .momentum = 0.9});
        std::unique_ptr<dist::GradientReducer> reducer;
        if (parallel) reducer = std::make_unique<dist::GradientReducer>(ranks, model->parameters());
        const double share = static_cast<double>(local) / static_cast<double>(o.batch);
        seconds = time_steps(o.steps, [&] {
            Tensor loss = cross_entropy(model->forward(data.images), data.labels);
            optimizer.zero_grad();
            if (reducer) {
                loss = mul(loss, scalar_tensor(share, loss.dtype(), loss.device()));
                reducer->begin(loss);
                loss.backward();
                reducer->finish();
            } else {
                loss.backward();
            }
            optimizer.step();
        }, o.device);
    } else {
        model->eval();
        NoGradGuard no_grad;
        seconds = time_steps(o.steps, [&] { model->forward(data.images); }, o.device);
    }
    BenchRecord record("model");
    record.text("model", o.spec)
        .text("mode", o.train ? "train" : "forward")
        .text("device", o.device.str())
        .text("precision", precision_name(precision()))
        .text("attention", attention_kernel_name(attention_kernel()))
        .text("conv", !o.device.is_cuda() ? "cpu" : !cuda::use_cudnn() ? "kernels"
                      : cuda::cudnn_for(true) ? "cudnn" : "cudnn, depthwise kernel")
        .integer("batch", o.batch)
        .text("input", input_text(chw))
        .integer("threads", num_threads())
        .integer("ranks", ranks->size())
        .number("img_per_s", static_cast<double>(o.steps * o.batch) / seconds)
        .number("ms_per_step", 1000.0 * seconds / static_cast<double>(o.steps))
        .number("peak_mib", peak_resident_mib() - baseline);
    add_gpu_memory(record, o.device);
    return record;
}

BenchRecord run_kd_bench(const KdBenchOptions& o) {
    reset_peak_resident();
    const double baseline = resident_mib();
    manual_seed(0);
    std::shared_ptr<Model> teacher = create_model(o.teacher);
    std::shared_ptr<Model> student = create_model(o.student);
    require(teacher->info().num_classes == student->info().num_classes,
            "bench kd: the teacher has ", teacher->info().num_classes,
            " classes and the student ", student->info().num_classes);
    const Shape chw = parse_input(o.input, *student);
    require_available(o.device);
    FixedBatch data = make_batch(o.batch, chw, student->info().num_classes);
    teacher->check_input(data.images);
    student->check_input(data.images);
    teacher->eval();
    fold_batch_norms(*teacher);  // the teacher is frozen: its inference path
    teacher->to(o.device);
    student->to(o.device);
    data.images = data.images.to(o.device);
    data.labels = data.labels.to(o.device);
    student->train();
    SGD optimizer(student->parameters(), SgdOptions{.lr = 0.01, .momentum = 0.9});
    const double T = o.temperature;
    const double seconds = time_steps(o.steps, [&] {
        Tensor teacher_logits;
        {
            NoGradGuard no_grad;
            teacher_logits = teacher->forward(data.images);
        }
        Tensor logits = student->forward(data.images);
        Tensor kd = kl_div(log_softmax(logits * (1.0 / T), 1), softmax(teacher_logits * (1.0 / T), 1),
                           "batchmean") * (T * T);
        Tensor loss = cross_entropy(logits, data.labels) + kd;
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }, o.device);
    BenchRecord record("kd");
    record.text("teacher", o.teacher)
        .text("student", o.student)
        .text("device", o.device.str())
        .text("precision", precision_name(precision()))
        .integer("batch", o.batch)
        .text("input", input_text(chw))
        .integer("threads", num_threads())
        .number("img_per_s", static_cast<double>(o.steps * o.batch) / seconds)
        .number("ms_per_step", 1000.0 * seconds / static_cast<double>(o.steps))
        .number("peak_mib", peak_resident_mib() - baseline);
    add_gpu_memory(record, o.device);
    return record;
}

}  // namespace retort::cli
