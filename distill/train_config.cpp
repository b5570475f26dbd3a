// distill/train_config.cpp: the schema of a training run's configuration, in one place, and its
// typed form (see train_config.h for the table of keys).
//
// The ranges are deliberately generous but finite: they exist to catch typos and absurd values
// (a batch of 10^9 images, a negative number of epochs, a NaN learning rate) before any work or
// any file is made, not to second-guess an experiment.
#include "distill/train_config.h"

#include <charconv>
#include <limits>
#include <optional>
#include <sstream>

#include "engine/device.h"
#include "engine/error.h"

namespace retort {

Config train_config_schema() {
    constexpr std::int64_t kBig = 1'000'000'000;
    Config c;
    c.declare_required("model", "spec", "model spec, e.g. resnet20:in_chans=1,num_classes=10 (see retort models)");

    c.declare_string("data", "path", "/usr/share/datasets/fashion-mnist", "dataset directory");
    c.declare_string("data", "format", "auto", "dataset format (auto: detected from the files)",
                     {"auto", "idx", "cifar10", "cifar100", "folder", "synthetic"});
    c.declare_int("data", "val_size", -1, -1, kBig,
                  "training samples held out for validation; -1: the format's default (5000 for IDX and CIFAR)");
    c.declare_int("data", "batch_size", 128, 1, 65536, "training batch size");
    c.declare_int("data", "workers", 2, 0, 64, "loader threads (0: batches are built on the training thread)");
    c.declare_string("data", "train_transforms", "",
                     "per-sample transforms for training, e.g. random_crop:padding=4; flip; normalize:mean=0.286,std=0.353");
    c.declare_string("data", "eval_transforms", "", "per-sample transforms for validation and test");
    c.declare_string("data", "batch_transform", "", "batch transform for training: mixup:alpha=A or cutmix:alpha=A");

    c.declare_string("optim", "name", "sgd", "optimizer", {"sgd", "adamw"});
    c.declare_double("optim", "lr", 0.1, 0, 100, "base learning rate", /*min_exclusive=*/true);
    c.declare_double("optim", "momentum", 0.9, 0, 1, "SGD momentum");
    c.declare_bool("optim", "nesterov", true, "SGD: Nesterov momentum");
    c.declare_double("optim", "beta1", 0.9, 0, 0.999999, "AdamW: decay of the first moment (below 1)");
    c.declare_double("optim", "beta2", 0.999, 0, 0.999999, "AdamW: decay of the second moment (below 1)");
    c.declare_double("optim", "eps", 1e-8, 0, 1, "AdamW: added to the denominator", true);
    c.declare_double("optim", "weight_decay", 5e-4, 0, 10, "weight decay (SGD: L2 in the gradient; AdamW: decoupled)");
    c.declare_bool("optim", "decay_norm_and_bias", false,
                   "decay biases and norm scales too (false: only weights with dim >= 2 are decayed)");
    c.declare_double("optim", "clip_grad_norm", 0, 0, 1e9, "clip the gradients' global L2 norm to this; 0: off");
    c.declare_double("optim", "label_smoothing", 0, 0, 0.999, "label smoothing of the cross-entropy");

    c.declare_string("schedule", "name", "cosine", "learning-rate schedule, applied every step",
                     {"cosine", "step", "multistep", "constant"});
    c.declare_double("schedule", "warmup_epochs", 0, 0, 100000, "linear warmup length in epochs (may be fractional)");
    c.declare_double("schedule", "warmup_start_factor", 0.1, 0, 1, "the warmup starts at this fraction of lr");
    c.declare_double("schedule", "min_lr", 0, 0, 100, "cosine: the final learning rate");
    c.declare_int("schedule", "step_size", 30, 1, kBig, "step: epochs between two decays");
    c.declare_double("schedule", "gamma", 0.1, 0, 1, "step, multistep: the decay factor");
    ConfigKey milestones;
    milestones.section = "schedule";
    milestones.key = "milestones";
    milestones.default_value = "30,60";
    milestones.help = "multistep: epochs at which lr is multiplied by gamma";
    milestones.validate = [](const std::string& text) -> std::string {
        if (parse_milestones(text)) return "";
        return "must be increasing whole epochs in [1, 100000] separated by commas, got '" + text + "'";
    };
    c.declare(std::move(milestones));

    c.declare_int("run", "epochs", 5, 1, 100000, "training epochs");
    c.declare_int("run", "seed", 0, 0, std::numeric_limits<std::int64_t>::max(),
                  "seed of initialization, validation split, shuffling, augmentation and dropout");
    c.declare_string("run", "dir", "", "run directory (\"\": runs/<model>-<YYYYmmdd-HHMMSS>; --out overrides)");
    c.declare_int("run", "log_every", 50, 1, kBig, "steps between train rows of metrics.csv (and progress lines)");
    c.declare_int("run", "threads", 0, 0, 1024, "CPU threads for the kernels (0: the default)");
    c.declare_string("run", "device", "cpu",
                     "where the model trains: cpu, cuda or cuda:N (--device overrides)");
    c.declare_string("run", "precision", "f32",
                     "matrix products: f32, tf32 (GPU tensor cores), bf16 or f16 (16-bit operands, "
                     "f32 sums; f16 with loss scaling)",
                     {"f32", "tf32", "bf16", "f16"});
    c.declare_string("run", "attention", "gemm",
                     "ViT attention: gemm (batched products + softmax) or fused (one kernel, the "
                     "probabilities never stored; engine/ops/attention.h)",
                     {"gemm", "fused"});
    c.declare_string("run", "depthwise", "cudnn",
                     "on a GPU with cuDNN: depthwise convolutions through cudnn or the direct kernel",
                     {"cudnn", "kernel"});
    c.declare_double("run", "loss_scale", 65536, 1, 1e38,
                     "precision = f16: the initial loss scale (halved on each gradient overflow, "
                     "doubled after 2000 good steps)");
    c.declare_int("run", "max_steps_per_epoch", 0, 0, kBig, "cap on training steps per epoch (0: the whole split)");
    c.declare_int("run", "eval_batch_size", 256, 1, 65536, "batch size of validation and test");
    c.declare_string("run", "on_nonfinite", "stop",
                     "a NaN or infinite loss (or gradient norm): stop the run, or skip the step",
                     {"stop", "skip"});
    c.declare_int("run", "max_skipped_steps", 100, 1, kBig,
                  "on_nonfinite = skip: the run stops after this many skipped steps in a row");
    c.declare_int("run", "checkpoint_every", 0, 0, kBig,
                  "steps between checkpoints inside an epoch (0: only at each epoch's end)");
    c.declare_int("run", "bucket_mib", 25, 1, 4096,
                  "with several ranks: MiB of gradients per all-reduce bucket (smaller buckets start "
                  "sooner during backward; larger ones make fewer calls)");
    c.declare_bool("run", "sync_batchnorm", false,
                   "with several ranks: BatchNorm statistics over all ranks' samples (SyncBatchNorm) "
                   "instead of each rank's own");
    return c;
}

std::optional<std::vector<std::int64_t>> parse_milestones(const std::string& text) {
    std::vector<std::int64_t> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        const std::size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
        item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
        std::int64_t m = 0;
        auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), m);
        // epochs are at most 100000 (run.epochs' bound), so milestone * steps cannot overflow
        if (item.empty() || error != std::errc() || end != item.data() + item.size() || m <= 0 ||
            m > 100000 ||
            (!out.empty() && m <= out.back()))
            return std::nullopt;
        out.push_back(m);
    }
    return out;
}

TrainConfig read_train_config(const Config& c) {
    c.check_complete();
    TrainConfig t;
    t.model = c.get_string("model.spec");
    require(!t.model.empty(), "model.spec is empty: give a model spec such as resnet20:in_chans=1,num_classes=10");

    t.data.path = c.get_string("data.path");
    t.data.format = c.get_string("data.format");
    t.data.val_size = c.get_int("data.val_size");
    t.data.batch_size = c.get_int("data.batch_size");
    t.data.workers = static_cast<int>(c.get_int("data.workers"));
    t.data.train_transforms = c.get_string("data.train_transforms");
    t.data.eval_transforms = c.get_string("data.eval_transforms");
    t.data.batch_transform = c.get_string("data.batch_transform");
    require(!t.data.path.empty(), "data.path is empty: give the dataset directory");

    t.optim.name = c.get_string("optim.name");
    t.optim.lr = c.get_double("optim.lr");
    t.optim.momentum = c.get_double("optim.momentum");
    t.optim.nesterov = c.get_bool("optim.nesterov");
    t.optim.beta1 = c.get_double("optim.beta1");
    t.optim.beta2 = c.get_double("optim.beta2");
    t.optim.eps = c.get_double("optim.eps");
    t.optim.weight_decay = c.get_double("optim.weight_decay");
    t.optim.decay_norm_and_bias = c.get_bool("optim.decay_norm_and_bias");
    t.optim.clip_grad_norm = c.get_double("optim.clip_grad_norm");
    t.optim.label_smoothing = c.get_double("optim.label_smoothing");
    if (t.optim.name == "sgd")
        require(!t.optim.nesterov || t.optim.momentum > 0,
                "optim.nesterov = true needs optim.momentum > 0 (set optim.nesterov = false for plain SGD)");

    t.schedule.name = c.get_string("schedule.name");
    t.schedule.warmup_epochs = c.get_double("schedule.warmup_epochs");
    t.schedule.warmup_start_factor = c.get_double("schedule.warmup_start_factor");
    t.schedule.min_lr = c.get_double("schedule.min_lr");
    t.schedule.step_size = c.get_int("schedule.step_size");
    t.schedule.gamma = c.get_double("schedule.gamma");
    t.schedule.milestones = parse_milestones(c.get_string("schedule.milestones")).value();

    t.run.epochs = c.get_int("run.epochs");
    t.run.seed = static_cast<std::uint64_t>(c.get_int("run.seed"));
    t.run.dir = c.get_string("run.dir");
    t.run.log_every = c.get_int("run.log_every");
    t.run.threads = static_cast<int>(c.get_int("run.threads"));
    t.run.device = c.get_string("run.device");
    t.run.precision = c.get_string("run.precision");
    t.run.attention = c.get_string("run.attention");
    t.run.depthwise = c.get_string("run.depthwise");
    t.run.loss_scale = c.get_double("run.loss_scale");
    // a misspelt device, or one this machine lacks, is an error before anything runs
    require_available(parse_device(t.run.device));
    t.run.max_steps_per_epoch = c.get_int("run.max_steps_per_epoch");
    t.run.eval_batch_size = c.get_int("run.eval_batch_size");
    t.run.skip_nonfinite = c.get_string("run.on_nonfinite") == "skip";
    t.run.sync_batchnorm = c.get_bool("run.sync_batchnorm");
    t.run.bucket_mib = c.get_int("run.bucket_mib");
    t.run.max_skipped_steps = c.get_int("run.max_skipped_steps");
    t.run.checkpoint_every = c.get_int("run.checkpoint_every");

    require(t.schedule.warmup_epochs < static_cast<double>(t.run.epochs),
            "schedule.warmup_epochs (", t.schedule.warmup_epochs, ") must be less than run.epochs (",
            t.run.epochs, ")");
    return t;
}

const std::vector<std::string>& resume_overridable_keys() {
    static const std::vector<std::string> keys = {"run.epochs", "run.threads", "run.device", "run.log_every", "run.bucket_mib", "run.attention", "run.depthwise",
                                                  "data.workers", "data.path"};
    return keys;
}

void apply_resume_overrides(Config& config, const std::vector<std::string>& overrides,
                            const std::vector<std::string>& allowed) {
    for (const std::string& assignment : overrides) {
        const std::string name = assignment.substr(0, assignment.find('='));
        bool ok = false;
        for (const std::string& key : allowed) ok = ok || name == key;
        if (!ok) {
            std::string list;
            for (const std::string& key : allowed) list += (list.empty() ? "" : ", ") + key;
            fail("--set ", assignment, ": ", name,
                 " cannot change when resuming (the run would no longer continue the interrupted "
                 "one); only these may: ", list);
        }
        config.apply_override(assignment);
    }
}

}  // namespace retort
