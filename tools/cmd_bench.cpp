// tools/cmd_bench.cpp: `retort bench`: the data loader's images per second next to the training
// step's, measured in the same run on the same machine, so one can see whether training ever
// waits for data.
//
//   retort bench [--model SPEC] [--data DIR] [--batch N] [--steps N] [--workers N]
//                [--transforms SPEC] [--threads N]
#include <chrono>
#include <cstdio>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/loader_bench.h"
#include "engine/flops.h"
#include "engine/retort.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

int run_bench(const std::vector<std::string>& args) {
    Options opts("bench", args,
                 {{"model", "resnet20:in_chans=1,num_classes=10", "model whose training step is timed"},
                  {"data", "/usr/share/datasets/fashion-mnist", "dataset directory (or synthetic)"},
                  {"batch", "128", "batch size"},
                  {"steps", "20", "training steps to time (after 2 warm-up steps)"},
                  {"workers", "2", "loader worker threads"},
                  {"transforms", "random_crop:padding=4; flip; normalize:mean=0.2860,std=0.3530",
                   "per-sample transforms of the loader"},
                  {"threads", "0", "CPU threads of the kernels (0: OpenMP's default)"}});
    if (opts.help_requested()) return 0;
    const std::int64_t batch = opts.get_int("batch", 1, 65536);
    const std::int64_t steps = opts.get_int("steps", 1, 100000);
    const std::int64_t threads = opts.get_int("threads", 0, 1024);
    if (threads > 0) set_num_threads(static_cast<int>(threads));

    DataOptions data_options;
    data_options.path = opts.get("data");
    DatasetSplits data = load_dataset(data_options);
    LoaderOptions loader_options;
    loader_options.batch_size = batch;
    loader_options.workers = static_cast<int>(opts.get_int("workers", 0, 64));
    loader_options.transforms = opts.get("transforms");
    DataLoader loader(data.train, loader_options);
    const double loader_rate = measure_loader_images_per_second(loader, 200);
    std::printf("data:     %s\nloader:   %.0f images/s (batch %lld, %d workers, %s)\n",
                data.train->describe().c_str(), loader_rate, static_cast<long long>(batch),
                loader_options.workers, loader_options.transforms.c_str());

    std::shared_ptr<Model> model = create_model(opts.get("model"));
    model->train();
    SGD optimizer(model->parameters(), SgdOptions{.lr = 0.01, .momentum = 0.9});
    loader.start_epoch(0);
    Batch b;
    double seconds = 0;
    std::int64_t flops = 0;
    for (std::int64_t step = 0; step < steps + 2; ++step) {
        if (!loader.next(b)) {
            loader.start_epoch(step);
            loader.next(b);
        }
        model->check_input(b.images);
        const auto start = std::chrono::steady_clock::now();
        FlopCounter counter;
        Tensor loss = cross_entropy(model->forward(b.images), b.labels);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (step >= 2) {  // the first steps allocate and warm the caches
            seconds += s;
            flops += counter.flops();
        }
    }
    const double step_rate = static_cast<double>(steps * batch) / seconds;
    std::printf("training: %.0f images/s (%s, forward+backward+SGD, %d threads; the forward "
                "products alone are %.1f GFLOP/s of step time)\n",
                step_rate, opts.get("model").c_str(), num_threads(), flops / seconds / 1e9);
    std::printf("the loader delivers %.0fx what the training step consumes\n", loader_rate / step_rate);
    return 0;
}

}  // namespace retort::cli
