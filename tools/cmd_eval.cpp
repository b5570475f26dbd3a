// tools/cmd_eval.cpp: `retort eval`: the loss, top-1 and top-5 accuracy of a model's weights on
// one split of a dataset.
//
//   retort eval --model SPEC --weights W.safetensors --data DIR [--split test|val|train]
//               [--format F] [--batch-size N] [--transforms SPEC] [--val-size N] [--seed S]
//               [--device cpu|cuda|cuda:N]
//
// The weights may be a state dict (best.safetensors, a PyTorch export) or a training checkpoint
// (last.safetensors: its model.* entries are used). The validation split is the one a training
// run with the same --val-size and --seed held out (run.seed in its config). Evaluation runs in
// eval mode without a graph; the loss is the mean cross-entropy, without label smoothing.
#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "distill/checkpoint.h"
#include "distill/trainer.h"
#include "engine/parallel.h"
#include "engine/random.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

int run_eval(const std::vector<std::string>& args) {
    Options opts("eval", args,
                 {{"model", "", "model spec, e.g. resnet20:in_chans=1,num_classes=10"},
                  {"weights", "", "safetensors state dict or training checkpoint"},
                  {"data", "", "dataset directory (or synthetic:...)"},
                  {"split", "test", "test, val or train"},
                  {"format", "auto", "auto, idx, cifar10, cifar100, folder or synthetic"},
                  {"batch-size", "256", "images per forward pass"},
                  {"transforms", "", "per-sample transforms (as data.eval_transforms)"},
                  {"val-size", "-1", "validation samples held out of train (as data.val_size)"},
                  {"seed", "0", "seed of the validation split (as run.seed)"},
                  {"workers", "2", "loader threads"},
                  {"threads", "0", "CPU threads for the kernels (0: the default)"},
                  {"device", "cpu", "cpu, cuda or cuda:N"}});
    if (opts.help_requested()) return 0;
    for (const char* required : {"model", "weights", "data"})
        require(!opts.get(required).empty(), "eval: --", required, " is required");
    const std::string split = opts.get("split");
    require(split == "test" || split == "val" || split == "train",
            "eval: --split must be test, val or train, got '", split, "'");
    const std::string format = opts.get("format");
    const std::vector<std::string> formats = {"auto", "idx", "cifar10", "cifar100", "folder", "synthetic"};
    require(std::find(formats.begin(), formats.end(), format) != formats.end(),
            "eval: --format must be one of auto, idx, cifar10, cifar100, folder, synthetic; got '",
            format, "'");
    LoaderOptions loader_options;
    loader_options.batch_size = opts.get_int("batch-size", 1, 65536);
    loader_options.shuffle = false;
    loader_options.workers = static_cast<int>(opts.get_int("workers", 0, 64));
    loader_options.transforms = opts.get("transforms");
    DataOptions data_options;
    data_options.path = opts.get("data");
    data_options.format = format;
    data_options.val_size = opts.get_int("val-size", -1, 1'000'000'000);
    data_options.seed = static_cast<std::uint64_t>(opts.get_int("seed", 0, INT64_MAX));
    loader_options.seed = data_options.seed;
    if (const int threads = static_cast<int>(opts.get_int("threads", 0, 1024)); threads > 0)
        set_num_threads(threads);
    const Device device = parse_device(opts.get("device"));
    require_available(device);
    loader_options.device = device;

    const std::string spec = opts.get("model");
    std::shared_ptr<Model> model = create_model(spec);
    model->load_state_dict(load_model_weights(opts.get("weights")));
    DatasetSplits data = load_dataset(data_options);
    std::shared_ptr<const Dataset> chosen =
        split == "test" ? data.test : split == "val" ? data.val : data.train;
    require(chosen && chosen->size() > 0, "eval: the ", split, " split of ", data_options.path,
            " is empty", split == "val" ? " (val-size 0?)" : "");
    check_model_classes(*model, *chosen, spec);

    model->to(device);
    DataLoader loader(chosen, loader_options);
    const EvalResult r = evaluate(*model, loader);
    std::printf("%s split (%s): %lld images, loss %.4f, top1 %.2f%%, top5 %.2f%%\n", split.c_str(),
                chosen->describe().c_str(), static_cast<long long>(r.count), r.loss, r.top1, r.top5);
    return 0;
}

}  // namespace retort::cli
