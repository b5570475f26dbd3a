// distill/checkpoint.h: what a run saves so that it can stop and continue exactly.
//
// A checkpoint is one .safetensors file, written atomically (temporary file, then rename):
//
//   model.<name>       the model's state dict (parameters and buffers, PyTorch names)
//   objectives.<name>  a distillation run only: the objectives' own state (connectors, memory
//                      banks, margins), named <objective>.<state-dict name>
//   optim.<name>       the optimizer's state_dict(): step counts, momentum / Adam moments, lrs
//   rng.seed           int64 scalars: the default Generator (dropout, DropPath, any draw made
//   rng.offset           during training), as its 64-bit pattern
//   progress.epoch     int64: epochs completed
//   progress.step      int64: optimizer steps taken
//   progress.best_top1 float64: the best validation top-1 so far (percent; -1 before any)
//   progress.best_epoch int64: the epoch that reached it (0: none)
//   progress.seconds   float64: wall time of the run so far (metrics.csv continues from it)
//   progress.skipped   int64: steps skipped for a non-finite loss (run.on_nonfinite = skip)
//   progress.consecutive_skipped  int64: of them, the ones in a row just before the checkpoint
//   partial.*          only in a checkpoint saved part way through an epoch (a stop request, see
//                      trainer.h): the epoch's steps taken and its running sums (EpochTally)
//   metadata           format = retort-checkpoint, format_version = 1, model = <spec>
//
// Everything else a run depends on is a pure function of the config and these numbers: the
// loader's order and augmentation are drawn from (seed, epoch, sample), and the learning-rate
// schedule from the step. So a run resumed from the checkpoint of epoch e computes the same bits
// as one that never stopped (on the CPU; tests/test_train.cpp and tests/test_distill.cpp check
// it). A checkpoint saved after step k of an epoch resumes the same way: the loader skips the
// epoch's first k batches (they are a function of seed and epoch too) and the partial.* sums let
// the rest of the epoch write the rows an unbroken epoch writes (tests/test_crash_safety.cpp).
// The progress.skipped entries and partial.* are newer than format version 1's first files: a
// checkpoint without them reads as "none skipped, at an epoch boundary", which is what it was.
//
// A weights file (best.safetensors) holds only the state dict, under the model's own names, so
// PyTorch, `retort infer` and a distillation teacher can read it as it is; its metadata says
// format = retort-weights, the model spec, the epoch and the validation top-1.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/optim/optimizer.h"
#include "models/model.h"

namespace retort {

// An epoch in progress: the steps taken and the sums the rest of the epoch adds to. All zero at
// an epoch boundary; saved (as partial.*) only by a checkpoint taken part way through an epoch.
struct EpochTally {
    std::int64_t steps = 0;    // steps of this epoch taken, skipped ones included
    std::int64_t trained = 0;  // of them, the ones whose loss was finite
    std::int64_t images = 0;   // images of every step taken (the console's images/s)
    double loss = 0;           // sum of the trained steps' losses (the epoch's mean train loss)
    // Since the last train row of metrics.csv: the trained steps, their loss, images and top-1 /
    // top-5 hits, one sum per loss term, and the steps skipped.
    std::int64_t window_steps = 0, window_images = 0, window_top1 = 0, window_top5 = 0;
    std::int64_t window_skipped = 0;
    double window_loss = 0;
    std::vector<double> window_terms;
};

struct TrainProgress {
    std::int64_t epoch = 0;       // epochs completed
    std::int64_t step = 0;        // steps taken: batches trained on, skipped ones included
    double best_top1 = -1;        // best validation top-1 in percent; -1 before any evaluation
    std::int64_t best_epoch = 0;  // 0: none yet
    double seconds = 0;           // wall time of the run so far
    std::int64_t skipped = 0;     // steps skipped for a non-finite loss or gradient norm
    std::int64_t consecutive_skipped = 0;  // the latest of them, in a row (0 after a good step)
    // run.precision = f16: the loss scale, and the good steps since it last changed
    // (distill/trainer.cpp); saved so that a resumed run scales as an unbroken one
    double loss_scale = 65536;
    std::int64_t scale_good_steps = 0;
    std::int64_t overflow_skipped = 0;  // f16 steps skipped for a gradient overflow
    EpochTally partial;           // the epoch after `epoch`, if it has begun
};

// Where a checkpoint stands, for messages: "after epoch 2 (step 40)", or for one saved part way
// through an epoch "after step 7 of epoch 3 (step 47 of the run)".
std::string describe_position(const TrainProgress& progress);

struct Checkpoint {
    std::map<std::string, Tensor> model;      // state dict, names without the "model." prefix
    std::map<std::string, Tensor> objectives;  // "objectives." entries without the prefix
    std::map<std::string, Tensor> optimizer;  // Optimizer::state_dict() names
    std::uint64_t rng_seed = 0, rng_offset = 0;
    TrainProgress progress;
    std::string model_spec;
};

constexpr int kCheckpointFormatVersion = 1;

// `objectives` (may be null): modules trained with the model but not part of it (a distillation
// run's objectives), saved as objectives.<name>.
void save_checkpoint(const std::string& path, const Model& model, const Optimizer& optimizer,
                     const TrainProgress& progress, const std::string& model_spec,
                     const Module* objectives = nullptr);
// Reads and checks a checkpoint (every entry present, scalars of the right type, the format and
// its version); a missing, truncated or foreign file is an Error that names it.
Checkpoint read_checkpoint(const std::string& path);
// Puts the state into the model, the objectives (if any), the optimizer and the default
// generator; checks everything (names, shapes, the model spec, objectives present on both sides
// or neither) before changing anything.
void restore_checkpoint(const Checkpoint& checkpoint, const std::string& path, Model& model,
                        Optimizer& optimizer, const std::string& model_spec,
                        Module* objectives = nullptr);

// Writes the model's state dict alone (best.safetensors).
void save_weights(const std::string& path, const Model& model,
                  const std::map<std::string, std::string>& metadata);
// The model's state dict from a weights file or from a checkpoint's "model." entries, so both
// best.safetensors and last.safetensors (and PyTorch's files) can be evaluated.
std::map<std::string, Tensor> load_model_weights(const std::string& path);

}  // namespace retort
