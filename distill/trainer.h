// distill/trainer.h: the training loop of `retort train`, built to be reused by distillation.
//
// One epoch:
//     loader.start_epoch(e)
//     for each batch:  lr = schedule(step);  {loss, logits} = loss_fn(model, batch)
//                      zero_grad; loss.backward(); clip (optional); optimizer.step(); ++step
//                      every run.log_every steps: a train row in metrics.csv
//     then, in eval mode and without a graph: loss / top-1 / top-5 on val and test (rows too),
//     best.safetensors when val top-1 improved (a tie keeps the earlier epoch),
//     last.safetensors (the checkpoint, see checkpoint.h).
//
// The loss is a hook: LossFn maps (model, batch, where we are) to a scalar loss and the student's
// logits (for the train accuracy). The default is cross-entropy against the labels, or against
// the batch's soft targets when mixup / cutmix made them, with label smoothing. A distillation
// objective replaces it with a function that also runs a frozen teacher (under NoGradGuard) and
// adds its terms; nothing else in the loop changes.
//
// What distillation adds (TrainerAddons; `retort train` leaves them empty):
//   - objectives: modules trained with the model but not part of it (connectors, memory banks).
//     Their parameters join the model's in the one optimizer (named "objectives.<name>", under
//     the same weight-decay rule) and their state is saved in last.safetensors; best.safetensors
//     holds the model alone, so it loads like any trained model. Frozen parameters (requires_grad
//     == false, such as the teacher snapshot of self-distillation) are saved but not trained: the
//     optimizer never holds them (nor does a frozen parameter of the model).
//   - a pre-training stage: pre_stage_epochs epochs run before the run.epochs epochs of the main
//     stage. The epoch counter (progress, metrics.csv, checkpoints) counts both, so a run with 2
//     pre-stage epochs and run.epochs = 10 has 12 epochs and can stop and resume anywhere. The
//     pre-stage trains at the constant base lr; the main stage starts with a fresh optimizer
//     (momentum and Adam moments reset, as the reference code builds a new one) and the
//     configured schedule counted from its own first step. best.safetensors is chosen among
//     main-stage epochs only. metrics.csv gets a `stage` column (pre | main).
//   - terms: names of the parts of the loss (LossOutput::terms), written to metrics.csv as
//     columns loss.<name> next to the total, averaged over the same steps as `loss`.
//   - extra evaluation, for models trained next to the model and evaluated with it (the peers
//     of a mutual-learning run, distill/mutual_learning.h): `evaluate` is called after the
//     model's own evaluation of each split ("val", then "test") with that split's loader, and
//     returns one value per name in eval_columns; they fill those metrics.csv columns on the
//     split's row (the columns stay empty on train rows). `end_epoch` is called once both
//     splits are evaluated and best.safetensors is chosen, before last.safetensors is written
//     (progress() then already counts this epoch, and names it as best_epoch if it improved):
//     whatever it records in `objectives` (a best-so-far, say) is saved with the epoch, and
//     files it writes are rewritten if the epoch is run again after a resume. The line it
//     returns (if not empty) is printed after the epoch's summary.
//
// Data parallel (engine/dist): when the process's communicator (dist::world()) is MPI's or NCCL's
// (the process was started by mpirun; with one rank this measures what the machinery costs),
// each rank holds a replica of the model and the objectives and trains on its piece of every batch
// of the single-process run (LoaderOptions::shard_*): same sample order, same augmentation. Each
// rank's loss is weighted by its share of the batch and the gradients are summed over the ranks
// in buckets that start during backward (dist::GradientReducer), so every replica takes the step
// of the whole batch's mean loss. The step's loss, accuracy counts and loss terms are summed over
// the ranks before anything is decided or logged, so the ranks agree on non-finite steps, on stop
// requests and on the best epoch. Rank 0 alone writes the run directory (config, metrics.csv,
// checkpoints); every rank reads it on resume, with any number of ranks. Validation and test are
// sharded the same way and reduced, after the replicas take rank 0's buffers (BatchNorm's running
// statistics are per rank while training, as in PyTorch's DDP). What stays per rank: BatchNorm's
// batch statistics, batch transforms (mixup / cutmix mix within a rank's piece), and objectives
// that relate the samples of a batch (RKD, SP, CRD...) see the rank's piece only.
//
// Lifecycle: construct (checks the model against the data with a trial batch; writes nothing),
// then start() a new run directory or resume() one, then run().
//
// Checkpoints: start() saves one of the starting point, so a run killed at any moment (even in
// its first epoch) leaves a last.safetensors to resume from; then one at each epoch's end, and
// every run.checkpoint_every steps inside an epoch when that is set. Each is written to a
// temporary file and renamed over the previous one.
//
// Stopping (Ctrl-C): request_stop() asks the loop to stop between two steps. It saves
// last.safetensors there, with the epoch's progress (checkpoint.h: partial.*), and run() returns
// with stopped() true; resume() continues from that step exactly as if the run had not stopped
// (the loader skips the batches already trained on). A stop asked for during the evaluation at an
// epoch's end takes effect once the epoch's checkpoint is written. The library installs no signal
// handler: a program (tools/training_run.cpp) calls request_stop() from its own.
//
// A non-finite loss (or gradient norm, when optim.clip_grad_norm computes it) is caught before
// backward / the update, at the step where it appears. run.on_nonfinite = stop (the default)
// throws an Error naming the epoch, the step, the value and the last good checkpoint (the run
// directory's last.safetensors as it was saved, or none). With skip, the step changes nothing: no
// update, and the buffers its forward pass moved (BatchNorm's running statistics) are put back;
// it counts in progress().skipped and in the metrics.csv column `skipped` (train rows: the
// window's skipped steps), and the epoch's summary line says how many; more than
// run.max_skipped_steps in a row stop the run with an Error. A skipped step still counts as a
// step (the schedule and the logging follow the batches); its loss and accuracy are left out of
// the train rows' means.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "data/loader.h"
#include "distill/checkpoint.h"
#include "distill/metrics_csv.h"
#include "distill/progress.h"
#include "distill/train_config.h"
#include "engine/dist/communicator.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/optim.h"
#include "models/model.h"

namespace retort {

// Accuracy and mean loss of a model on a split; top1 / top5 in percent.
struct EvalResult {
    std::int64_t count = 0;
    double loss = 0, top1 = 0, top5 = 0;
};

// Runs the model in eval mode without recording a graph over every batch of the loader (epoch 0
// of it), and leaves the model in eval mode. With a communicator of several ranks (each loader
// holding its rank's shard of the split), the sums are reduced over the ranks, so every rank
// returns the whole split's result.
EvalResult evaluate(Model& model, DataLoader& loader, dist::Communicator* ranks = nullptr);

// How many rows of logits (B, K) have their label among the top 1 and top 5 entries (a tie
// counts for the lower class index, as torch.topk orders it; a NaN logit is a miss).
struct TopkHits {
    std::int64_t top1 = 0, top5 = 0;
};
TopkHits count_topk(const Tensor& logits, const Tensor& labels);

// Where the loop is when it asks for a loss.
struct StepContext {
    std::int64_t epoch = 0;            // 0-based epoch being trained, pre-stage epochs included
    std::int64_t step = 0;             // optimizer steps taken before this one
    std::int64_t steps_per_epoch = 0;
    std::int64_t total_steps = 0;
    std::int64_t pre_stage_epochs = 0;  // epochs of the pre-training stage (0: none)
    std::int64_t epochs = 0;            // epochs of the main stage (run.epochs)

    bool in_pre_stage() const { return epoch < pre_stage_epochs; }
};

struct LossOutput {
    Tensor loss;    // scalar; backward() is called on it
    Tensor logits;  // (B, K) for the train accuracy in metrics.csv
    std::vector<double> terms;  // one value per TrainerAddons::term_names (NaN: not computed)
};

// What a distillation run adds to the loop (see the top of this file).
struct TrainerAddons {
    std::shared_ptr<Module> objectives;
    std::int64_t pre_stage_epochs = 0;
    std::vector<std::string> term_names;
    std::vector<std::string> eval_columns;
    // split: "val" or "test"; returns one value per eval_columns (NaN: an empty cell).
    std::function<std::vector<double>(const std::string& split, DataLoader& loader)> evaluate;
    // epoch: the epochs completed, this one included (1-based); returns a console line or "".
    std::function<std::string(std::int64_t epoch, const std::string& run_dir)> end_epoch;
};
using LossFn = std::function<LossOutput(Model& model, const Batch& batch, const StepContext& ctx)>;

// The default: cross_entropy(model(images), targets if defined else labels, label_smoothing).
LossOutput classification_loss(Model& model, const Batch& batch, double label_smoothing);

// What `retort train` builds from a config before training. build_model() seeds the default
// generator with run.seed first, so the initial weights follow from the seed.
std::shared_ptr<Model> build_model(const TrainConfig& config);
DatasetSplits open_data(const TrainConfig& config);
// Parameters by name (as Module::named_parameters()), so the weight-decay split can follow names.
std::unique_ptr<Optimizer> make_optimizer(const TrainConfig::Optim& optim,
                                          const std::vector<std::pair<std::string, Tensor>>& params);
// The schedule in steps: epochs in the config (warmup, step_size, milestones) times
// steps_per_epoch; the cosine spans all epochs * steps_per_epoch steps.
std::unique_ptr<LrSchedule> make_schedule(const TrainConfig::Schedule& schedule,
                                          std::int64_t epochs, std::int64_t steps_per_epoch);

// An Error unless the model has one output per class of the dataset. (Channels and image size
// are checked on a transformed batch: a transform such as repeat_channels may change them.)
void check_model_classes(const Model& model, const Dataset& data, const std::string& spec);
// check_model_classes, then one small batch of the training and of the evaluation transforms
// through the model (eval mode, no graph, nothing random drawn, no BatchNorm statistic moved):
// an Error naming the split, the transforms and the model spec if it does not fit. The model is
// left in train mode.
void check_model_fits_data(Model& model, const std::string& spec, const DatasetSplits& data,
                           const TrainConfig& config);

// "runs/<model name>-<YYYYmmdd-HHMMSS>" (local time).
std::string default_run_dir(const std::string& model_spec);
// An Error unless `dir` can hold a new run: it is absent and could be created (the nearest
// existing parent is a writable directory), or it is an empty directory. `command` names the
// subcommand that would continue an existing run, for the message.
void check_new_run_dir(const std::string& dir, const std::string& command = "train");

// Asks every Trainer of the process to stop at its next step boundary (see the top of this file).
// Safe to call from a signal handler: it stores to a lock-free atomic flag and nothing else.
void request_stop() noexcept;
bool stop_requested() noexcept;
// Forgets a request (a program that trains again after a stop, and tests).
void clear_stop_request() noexcept;

class Trainer {
public:
    // Builds the loaders and the optimizer, and runs a trial batch of the training and the
    // evaluation transforms through the model (eval mode, no graph, no random draws): a model
    // that does not fit the data fails here, before any file is written.
    Trainer(TrainConfig config, std::shared_ptr<Model> model, DatasetSplits data,
            TrainerAddons addons = {});
    ~Trainer();
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    void set_loss(LossFn loss) { loss_ = std::move(loss); }
    // Where progress goes (nullptr: nowhere, the default) and whether to redraw one line.
    void set_console(std::FILE* out, bool live);

    // A new run: checks and creates run_dir, saves the config there, opens metrics.csv.
    void start(const std::string& run_dir, const Config& config);
    // Continues the run in run_dir from its last.safetensors: model, optimizer, generator and
    // progress; metrics.csv loses any row written after that checkpoint. An Error if the run has
    // already done run.epochs epochs.
    void resume(const std::string& run_dir);
    // Trains until epoch `until_epoch` (1-based, inclusive, pre-stage epochs included; 0: all of
    // them) is done, or until a stop request (then stopped() is true).
    const TrainProgress& run(std::int64_t until_epoch = 0);
    // Whether the last run() ended early for a stop request; last.safetensors then holds where.
    bool stopped() const { return stopped_; }
    // Pre-stage plus main-stage epochs.
    std::int64_t total_epochs() const { return addons_.pre_stage_epochs + config_.run.epochs; }

    Model& model() { return *model_; }
    Optimizer& optimizer() { return *optimizer_; }
    const TrainProgress& progress() const { return progress_; }
    std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
    const std::string& run_dir() const { return run_dir_; }
    // The evaluations of the last epoch run (count 0 when the split is absent).
    const EvalResult& last_val() const { return last_val_; }
    const EvalResult& last_test() const { return last_test_; }

private:
    bool train_epoch(std::int64_t epoch);  // false: stopped part way (a checkpoint holds where)
    bool writes_files() const { return comm_->is_root(); }  // rank 0 alone writes the run directory
    bool agreed_stop();  // stop_requested() on any rank (a collective when there are several)
    void share_buffers();  // rank 0's buffers (running statistics) into every replica
    void train_step(std::int64_t epoch, const Batch& batch);
    bool unscale_gradients();  // float16 loss scaling; false: the gradients overflowed
    void on_nonfinite_step(std::int64_t epoch, double loss, double grad_norm);
    void write_train_row(std::int64_t epoch);
    void save_position_checkpoint();  // last.safetensors at the current step
    void save_stop_checkpoint();
    std::vector<std::string> metrics_columns() const;
    std::string stage_of(std::int64_t epoch) const;  // "pre" or "main"
    void finish_epoch(std::int64_t epoch, double train_loss, double train_seconds,
                      std::int64_t train_images);
    double elapsed() const;

    TrainConfig config_;
    std::shared_ptr<Model> model_;
    DatasetSplits data_;
    TrainerAddons addons_;
    std::shared_ptr<dist::Communicator> comm_;        // the ranks (one: a plain single-process run)
    std::unique_ptr<dist::GradientReducer> reducer_;  // when distributed_
    bool distributed_ = false;  // started by mpirun: ranks (even one) sum gradients and metrics
    bool stop_seen_ = false;  // a rank asked to stop (summed with the last step's numbers)
    std::vector<Tensor> params_;
    Device device_;  // run.device: where the model, its batches and the optimizer's state live
    std::unique_ptr<DataLoader> train_loader_, val_loader_, test_loader_;
    std::unique_ptr<Optimizer> optimizer_;
    std::unique_ptr<LrSchedule> schedule_;
    LossFn loss_;
    std::int64_t steps_per_epoch_ = 0;

    std::string run_dir_;
    MetricsCsv metrics_;
    TrainProgress progress_;
    EvalResult last_val_, last_test_;
    ProgressPrinter printer_{nullptr, false, 1};
    double seconds_at_start_ = 0;  // progress_.seconds when run() began
    std::int64_t clock_start_ns_ = 0;
    bool stopped_ = false;
    std::string checkpoint_note_;  // the last good checkpoint and where it stands, for messages
};

}  // namespace retort
