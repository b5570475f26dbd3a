// distill/train_config.h: the configuration of a training run: its schema (every section and key,
// in one place) and the typed, cross-checked form the trainer reads.
//
// `retort train` uses train_config_schema() as it is; `retort distill` extends it with its own
// sections (a teacher, the objectives' hyperparameters) and reads the shared part with
// read_train_config(). The keys, their defaults and ranges (also in tools/README.md and
// `retort train --help`):
//
//   [model]     spec            model spec, e.g. resnet20:in_chans=1,num_classes=10 (required)
//   [data]      path            dataset directory (/usr/share/datasets/fashion-mnist)
//               format          auto | idx | cifar10 | cifar100 | folder | synthetic (auto)
//               val_size        samples held out of the training files for validation; -1: the
//                               format's default (5,000 for IDX and CIFAR) (-1)
//               batch_size      training batch size, [1, 65536] (128)
//               workers         loader threads, [0, 64] (2)
//               train_transforms, eval_transforms   per-sample transforms ("": none)
//               batch_transform "" | mixup:alpha=A | cutmix:alpha=A ("")
//   [optim]     name            sgd | adamw (sgd)
//               lr              base learning rate, > 0 (0.1)
//               momentum, nesterov                 SGD only (0.9, true)
//               beta1, beta2, eps                  AdamW only (0.9, 0.999, 1e-8)
//               weight_decay    >= 0 (5e-4)
//               decay_norm_and_bias  false: biases and norm scales (dim <= 1) get no decay (false)
//               clip_grad_norm  max global L2 norm of the gradients; 0: off (0)
//               label_smoothing in [0, 1) (0)
//   [schedule]  name            cosine | step | multistep | constant (cosine)
//               warmup_epochs   linear warmup, may be fractional, < run.epochs (0)
//               warmup_start_factor  the warmup starts at this fraction of lr (0.1)
//               min_lr          the cosine's floor (0)
//               step_size       step: epochs between decays (30)
//               gamma           step / multistep: the decay factor (0.1)
//               milestones      multistep: comma-separated epochs ("30,60")
//   [run]       epochs          [1, 100000] (5)
//               seed            model initialization, shuffling, augmentation, dropout (0)
//               dir             run directory; "": runs/<model>-<YYYYmmdd-HHMMSS> (""); --out wins
//               log_every       steps between train rows in metrics.csv and progress lines (50)
//               threads         CPU threads of the kernels; 0: the default (0)
//               max_steps_per_epoch  0: the whole training split (0)
//               eval_batch_size [1, 65536] (256)
//               on_nonfinite    stop | skip: what a NaN or infinite loss (or gradient norm, when
//                               clipping computes it) does: stop the run with the epoch, step,
//                               value and last good checkpoint, or skip the step (stop)
//               max_skipped_steps  skip: steps skipped in a row that stop the run, [1, 10^9] (100)
//               checkpoint_every  steps between checkpoints inside an epoch; 0: only at each
//                               epoch's end (and the run's start) (0)
//
// The schedule runs per optimizer step: epochs given above (warmup, step_size, milestones) are
// converted to steps with the number of steps per epoch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/config.h"

namespace retort {

Config train_config_schema();

struct TrainConfig {
    std::string model;  // the model spec

    struct Data {
        std::string path, format;
        std::int64_t val_size = -1;
        std::int64_t batch_size = 128;
        int workers = 2;
        std::string train_transforms, eval_transforms, batch_transform;
    } data;

    struct Optim {
        std::string name;
        double lr = 0.1, momentum = 0.9;
        bool nesterov = true;
        double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        double weight_decay = 5e-4;
        bool decay_norm_and_bias = false;
        double clip_grad_norm = 0;
        double label_smoothing = 0;
    } optim;

    struct Schedule {
        std::string name;
        double warmup_epochs = 0, warmup_start_factor = 0.1, min_lr = 0;
        std::int64_t step_size = 30;
        double gamma = 0.1;
        std::vector<std::int64_t> milestones;
    } schedule;

    struct Run {
        std::int64_t epochs = 5;
        std::uint64_t seed = 0;
        std::string dir;
        std::int64_t log_every = 50;
        int threads = 0;
        std::string device = "cpu";  // parse_device's names
        std::string precision = "f32";  // engine/precision.h
        std::string attention = "gemm";  // gemm | fused (engine/ops/attention.h)
        std::string depthwise = "cudnn";  // cudnn | kernel (engine/cuda/cudnn_conv.h)
        double loss_scale = 65536;      // the initial scale of an f16 run
        std::int64_t max_steps_per_epoch = 0;
        std::int64_t eval_batch_size = 256;
        bool skip_nonfinite = false;  // run.on_nonfinite = skip
        bool sync_batchnorm = false;  // data parallel: BatchNorm statistics over every rank
        std::int64_t bucket_mib = 25;  // data parallel: gradient bytes per all-reduce bucket, MiB
        std::int64_t max_skipped_steps = 100;
        std::int64_t checkpoint_every = 0;  // steps; 0: epoch ends only
    } run;
};

// Reads the typed values and checks the rules that involve several keys (warmup shorter than
// the run, nesterov with momentum, increasing milestones). Errors name the keys.
TrainConfig read_train_config(const Config& config);

// "30,60" -> {30, 60}; nullopt unless it is a list of strictly increasing positive integers.
std::optional<std::vector<std::int64_t>> parse_milestones(const std::string& text);

// The keys `retort train --resume` lets --set change: those that do not change what is computed
// (threads, loader workers, logging, where the data lives) and run.epochs, to extend a finished or
// shortened run. Any other override is refused, because the resumed run would no longer continue
// the one that was interrupted.
const std::vector<std::string>& resume_overridable_keys();
// Applies the overrides to a run's saved config, refusing those not in `allowed`
// (resume_overridable_keys() for a training run; a distillation run allows a few more).
void apply_resume_overrides(Config& config, const std::vector<std::string>& overrides,
                            const std::vector<std::string>& allowed = resume_overridable_keys());

}  // namespace retort
