// tools/cmd_bench.cpp: `retort bench`: speed measured in one run against a reference measured in
// the same run (the machine's FMA peak, or the data loader against the training step), because
// machines, and one machine from minute to minute, differ too much for absolute figures.
//
//   retort bench peak                                  f32 FMA peak of this machine (GFLOP/s)
//   retort bench gemm [--shapes MxNxK[:tt],...]        GEMM GFLOP/s and % of that peak
//   retort bench model SPEC [--train] [--input CxHxW]  forward (or training step) images/s
//   retort bench kd TEACHER STUDENT [--input CxHxW]    one distillation step, images/s
//   retort bench loader [--data DIR] [--model SPEC]    the loader's images/s against the step's
//
// Every subcommand takes --threads N, --batch N (where a batch applies) and --json (one JSON
// object per line: the same records tools/bench-cpu.sh turns into the README's table).
#include <chrono>
#include <cstdio>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/loader_bench.h"
#include "engine/cpu/fma_peak.h"
#include "engine/cpu/gemm.h"
#include "engine/cuda/blas.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/runtime.h"
#include "engine/flops.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tools/bench_report.h"
#include "tools/bench_workloads.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

namespace {

OptionSpec threads_option() { return {"threads", "0", "CPU threads of the kernels (0: all cores)"}; }
OptionSpec json_option() { return {"json", "", "print one JSON object per measurement", true}; }

void apply_threads(const Options& opts) {
    const auto threads = opts.get_int("threads", 0, 1024);
    if (threads > 0) set_num_threads(static_cast<int>(threads));
}

int bench_peak(const std::vector<std::string>& args) {
    Options opts("bench peak", args, {threads_option(), json_option()});
    if (opts.help_requested()) return 0;
    apply_threads(opts);
    const cpu::FmaPeak peak = cpu::measure_fma_peak();
    BenchRecord("peak").integer("threads", peak.threads).text("isa", peak.isa)
        .number("gflops", peak.gflops).print(opts.get_flag("json"));
    return 0;
}

struct GemmShape {
    std::int64_t m = 0, n = 0, k = 0;
    bool trans_a = false, trans_b = false;
    std::string label;
};

// "MxNxK" or "MxNxK:tn" (the transposes of A and B: n = as stored, t = transposed).
GemmShape parse_gemm_shape(const std::string& text) {
    GemmShape s;
    s.label = text;
    std::string dims = text, trans = "nn";
    if (auto colon = text.find(':'); colon != std::string::npos) {
        dims = text.substr(0, colon);
        trans = text.substr(colon + 1);
    }
    require(trans.size() == 2 && (trans[0] == 'n' || trans[0] == 't') &&
                (trans[1] == 'n' || trans[1] == 't'),
            "gemm shape '", text, "': the transposes are two letters of n and t, e.g. 512x512x512:nt");
    s.trans_a = trans[0] == 't';
    s.trans_b = trans[1] == 't';
    std::int64_t* fields[3] = {&s.m, &s.n, &s.k};
    std::size_t pos = 0;
    for (int i = 0; i < 3; ++i) {
        const std::size_t end = i < 2 ? dims.find('x', pos) : dims.size();
        require(end != std::string::npos, "gemm shape '", text, "' is not MxNxK");
        const std::string part = dims.substr(pos, end - pos);
        require(!part.empty() && part.size() <= 6 &&
                    part.find_first_not_of("0123456789") == std::string::npos,
                "gemm shape '", text, "': '", part, "' is not a size from 1 to 999999");
        *fields[i] = std::stoll(part);
        require(*fields[i] >= 1, "gemm shape '", text, "': sizes start at 1");
        pos = end + 1;
    }
    require(s.m * s.k + s.k * s.n + s.m * s.n <= (std::int64_t(1) << 30),
            "gemm shape '", text, "' needs more than 4 GiB of matrices");
    return s;
}

std::vector<GemmShape> parse_gemm_shapes(const std::string& list) {
    std::vector<GemmShape> shapes;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        const std::size_t comma = std::min(list.find(',', pos), list.size());
        if (comma > pos) shapes.push_back(parse_gemm_shape(list.substr(pos, comma - pos)));
        pos = comma + 1;
    }
    require(!shapes.empty(), "--shapes lists no shape");
    return shapes;
}

// Square sizes, then the skinny products that training actually runs: convolutions of a CIFAR
// ResNet-18 step as (Cout) x (B*H*W) x (Cin*9) at batch 64, their weight gradients (:nt), and a
// ViT-tiny's (B*N) x 192 projections and 65 x 65 attention.
constexpr const char* kDefaultGemmShapes =
    "256x256x256,512x512x512,1024x1024x1024,2048x2048x2048,"
    "64x65536x576,128x16384x1152,256x4096x2304,512x1024x4608,"
    "64x576x65536:nt,256x2304x4096:nt,"
    "4160x576x192,4160x768x192,4160x192x768,65x65x48,65x48x65";

// GEMM TFLOP/s on a GPU through cuBLAS, in the chosen precision. No peak is measured: a card's
// matrix peak depends on its clocks and on the precision; compare with its data sheet (an H100
// SXM: 989 dense bf16/f16 TFLOP/s, 495 TF32, 67 f32).
int bench_gpu_gemm(const Options& opts, Device device) {
    require_available(device);
    set_precision(parse_precision(opts.get("precision")));
    const std::vector<GemmShape> shapes = parse_gemm_shapes(opts.get("shapes"));
    const double seconds = opts.get_double("seconds", 0.01, 60);
    for (const GemmShape& s : shapes) {
        const Tensor a = randn({s.m * s.k}).to(device), b = randn({s.k * s.n}).to(device);
        Tensor c = zeros({s.m * s.n}, DType::f32, device);
        const std::int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
        auto run = [&] {
            cuda::gemm(device, s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.device_data<float>(),
                       lda, b.device_data<float>(), ldb, 0.0f, c.device_data<float>(), s.n);
        };
        run();
        cuda::synchronize(device);
        std::int64_t reps = 0;
        const auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        do {
            for (int i = 0; i < 10; ++i) run();
            reps += 10;
            cuda::synchronize(device);
            elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (elapsed < seconds);
        BenchRecord("gemm").text("shape", s.label).integer("m", s.m).integer("n", s.n)
            .integer("k", s.k).text("device", device.str()).text("gpu", cuda::device_name(device.index))
            .text("precision", precision_name(precision()))
            .number("tflops", 2.0 * s.m * s.n * s.k * reps / elapsed / 1e12, 2)
            .print(opts.get_flag("json"));
    }
    return 0;
}

int bench_gemm(const std::vector<std::string>& args) {
    Options opts("bench gemm", args,
                 {{"shapes", kDefaultGemmShapes, "comma-separated MxNxK[:tt] (t: transposed)"},
                  {"kernel", "", "micro-kernel to use (default: the fastest this CPU runs)"},
                  {"seconds", "0.3", "time per shape"},
                  {"device", "cpu", "cpu, cuda or cuda:N (cuda: cuBLAS, --precision applies)"},
                  {"precision", "f32", "on a GPU: f32, tf32, bf16 or f16 products"},
                  threads_option(), json_option()});
    if (opts.help_requested()) return 0;
    apply_threads(opts);
    const Device device = parse_device(opts.get("device"));
    if (device.is_cuda()) return bench_gpu_gemm(opts, device);
    if (!opts.get("kernel").empty()) cpu::set_gemm_kernel(opts.get("kernel"));
    const std::vector<GemmShape> shapes = parse_gemm_shapes(opts.get("shapes"));
    const double seconds = opts.get_double("seconds", 0.01, 60);
    const bool as_json = opts.get_flag("json");

    const cpu::FmaPeak peak = cpu::measure_fma_peak();
    BenchRecord("peak").integer("threads", peak.threads).text("isa", peak.isa)
        .number("gflops", peak.gflops).print(as_json);
    for (const GemmShape& s : shapes) {
        const Tensor a = randn({s.m * s.k}), b = randn({s.k * s.n});
        Tensor c = zeros({s.m * s.n});
        const std::int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
        auto run = [&] {
            cpu::gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data<float>(), lda,
                      b.data<float>(), ldb, 0.0f, c.data<float>(), s.n);
        };
        run();  // warm the caches and the threads
        std::int64_t reps = 0;
        const auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        do {
            run();
            ++reps;
            elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (elapsed < seconds);
        const double gflops = 2.0 * s.m * s.n * s.k * reps / elapsed / 1e9;
        BenchRecord("gemm").text("shape", s.label).integer("m", s.m).integer("n", s.n)
            .integer("k", s.k).integer("threads", num_threads()).text("kernel", cpu::gemm_kernel_name())
            .number("gflops", gflops).number("pct_of_peak", 100.0 * gflops / peak.gflops)
            .print(as_json);
    }
    return 0;
}

std::vector<OptionSpec> model_options() {
    return {{"batch", "64", "images per step"},
            {"input", "", "input size CxHxW (default: the model's channels and image size)"},
            {"steps", "10", "timed steps (after 3 warm-up steps)"},
            {"train", "", "time a training step (forward, backward, SGD) instead of a forward",
             true},
            threads_option(), json_option(),
            {"attention", "gemm", "ViT attention: gemm (matmul + softmax) or fused (engine/ops/attention.h)"},
            {"depthwise", "cudnn", "on a GPU with cuDNN: depthwise convolutions through cudnn or the kernel"},
            {"device", "cpu", "cpu, cuda or cuda:N"},
            {"precision", "f32", "products in f32, tf32, bf16 or f16 (engine/precision.h)"}};
}

// --precision, --attention and --depthwise of `bench model` and `bench kd`: process-wide choices.
void apply_model_choices(const Options& opts) {
    set_precision(parse_precision(opts.get("precision")));
    set_attention_kernel(parse_attention_kernel(opts.get("attention")));
    const std::string depthwise = opts.get("depthwise");
    require(depthwise == "cudnn" || depthwise == "kernel", "--depthwise must be cudnn or kernel, got '",
            depthwise, "'");
    cuda::set_cudnn_depthwise(depthwise == "cudnn");
}

// Positional arguments (model specs) come first; the options follow.
std::vector<std::string> take_positionals(std::vector<std::string>& args, std::size_t count,
                                          const char* usage) {
    std::vector<std::string> positionals;
    while (positionals.size() < count && !args.empty() && args.front().rfind("--", 0) != 0) {
        positionals.push_back(args.front());
        args.erase(args.begin());
    }
    const bool help = !args.empty() && (args.front() == "--help" || args.front() == "-h");
    require(help || positionals.size() == count, "usage: ", usage);
    return positionals;
}

int bench_model(std::vector<std::string> args) {
    const auto specs = take_positionals(args, 1, "retort bench model SPEC [--train] [options]");
    Options opts("bench model SPEC", args, model_options());
    if (opts.help_requested()) return 0;
    apply_threads(opts);
    ModelBenchOptions o;
    o.spec = specs[0];
    o.batch = opts.get_int("batch", 1, 65536);
    o.steps = opts.get_int("steps", 1, 100000);
    o.input = opts.get("input");
    o.train = opts.get_flag("train");
    o.device = parse_device(opts.get("device"));
    apply_model_choices(opts);
    run_model_bench(o).print(opts.get_flag("json"));
    return 0;
}

int bench_kd(std::vector<std::string> args) {
    const auto specs = take_positionals(args, 2, "retort bench kd TEACHER STUDENT [options]");
    std::vector<OptionSpec> spec_list = model_options();
    spec_list.erase(spec_list.begin() + 3);  // a KD step always trains the student
    spec_list.push_back({"T", "4", "KD temperature"});
    Options opts("bench kd TEACHER STUDENT", args, spec_list);
    if (opts.help_requested()) return 0;
    apply_threads(opts);
    KdBenchOptions o;
    o.teacher = specs[0];
    o.student = specs[1];
    o.batch = opts.get_int("batch", 1, 65536);
    o.steps = opts.get_int("steps", 1, 100000);
    o.input = opts.get("input");
    o.temperature = opts.get_double("T", 0.01, 1000);
    o.device = parse_device(opts.get("device"));
    apply_model_choices(opts);
    run_kd_bench(o).print(opts.get_flag("json"));
    return 0;
}

int bench_loader(const std::vector<std::string>& args) {
    Options opts("bench loader", args,
                 {{"model", "resnet20:in_chans=1,num_classes=10", "model whose training step is timed"},
                  {"data", "/usr/share/datasets/fashion-mnist", "dataset directory (or synthetic)"},
                  {"batch", "128", "batch size"},
                  {"steps", "20", "training steps to time (after 2 warm-up steps)"},
                  {"workers", "2", "loader worker threads"},
                  {"transforms", "random_crop:padding=4; flip; normalize:mean=0.2860,std=0.3530",
                   "per-sample transforms of the loader"},
                  threads_option(), json_option()});
    if (opts.help_requested()) return 0;
    apply_threads(opts);
    const bool as_json = opts.get_flag("json");
    const std::int64_t batch = opts.get_int("batch", 1, 65536);
    const std::int64_t steps = opts.get_int("steps", 1, 100000);

    DataOptions data_options;
    data_options.path = opts.get("data");
    DatasetSplits data = load_dataset(data_options);
    LoaderOptions loader_options;
    loader_options.batch_size = batch;
    loader_options.workers = static_cast<int>(opts.get_int("workers", 0, 64));
    loader_options.transforms = opts.get("transforms");
    DataLoader loader(data.train, loader_options);
    const double loader_rate = measure_loader_images_per_second(loader, 200);
    BenchRecord("loader").text("data", data.train->describe()).integer("batch", batch)
        .integer("workers", loader_options.workers).text("transforms", loader_options.transforms)
        .number("img_per_s", loader_rate, 0).print(as_json);

    std::shared_ptr<Model> model = create_model(opts.get("model"));
    model->train();
    SGD optimizer(model->parameters(), SgdOptions{.lr = 0.01, .momentum = 0.9});
    loader.start_epoch(0);
    Batch b;
    double seconds = 0;
    for (std::int64_t step = 0; step < steps + 2; ++step) {
        if (!loader.next(b)) {
            loader.start_epoch(step);
            loader.next(b);
        }
        model->check_input(b.images);
        const auto start = std::chrono::steady_clock::now();
        Tensor loss = cross_entropy(model->forward(b.images), b.labels);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (step >= 2) seconds += s;  // the first steps allocate and warm the caches
    }
    const double step_rate = static_cast<double>(steps * batch) / seconds;
    BenchRecord("train_step").text("model", opts.get("model")).integer("batch", batch)
        .integer("threads", num_threads()).number("img_per_s", step_rate, 0)
        .number("loader_over_step", loader_rate / step_rate).print(as_json);
    return 0;
}

void print_bench_usage() {
    std::printf(
        "usage: retort bench <what> [options]   (each takes --threads N, --json, --help)\n\n"
        "  peak                         the f32 FMA peak of this machine, GFLOP/s\n"
        "  gemm [--shapes LIST]         GEMM GFLOP/s and %% of the peak measured in the same run\n"
        "  model SPEC [--train]         forward or training-step images/s (--batch, --input CxHxW)\n"
        "  kd TEACHER STUDENT           one KD step: teacher forward, student forward+backward+SGD\n"
        "  loader [--data DIR]          the data loader's images/s against the training step's\n");
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        print_bench_usage();
        return args.empty() ? 1 : 0;
    }
    const std::string what = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (what == "peak") return bench_peak(rest);
    if (what == "gemm") return bench_gemm(rest);
    if (what == "model") return bench_model(rest);
    if (what == "kd") return bench_kd(rest);
    if (what == "loader") return bench_loader(rest);
    fail("unknown benchmark '", what, "'; valid: peak, gemm, model, kd, loader");
}

}  // namespace retort::cli
