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
// Lifecycle: construct (checks the model against the data with a trial batch; writes nothing),
// then start() a new run directory or resume() one, then run().
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
#include "engine/optim.h"
#include "models/model.h"

namespace retort {

// Accuracy and mean loss of a model on a split; top1 / top5 in percent.
struct EvalResult {
    std::int64_t count = 0;
    double loss = 0, top1 = 0, top5 = 0;
};

// Runs the model in eval mode without recording a graph over every batch of the loader (epoch 0
// of it), and leaves the model in eval mode.
EvalResult evaluate(Model& model, DataLoader& loader);

// How many rows of logits (B, K) have their label among the top 1 and top 5 entries (a tie
// counts for the lower class index, as torch.topk orders it; a NaN logit is a miss).
struct TopkHits {
    std::int64_t top1 = 0, top5 = 0;
};
TopkHits count_topk(const Tensor& logits, const Tensor& labels);

// Where the loop is when it asks for a loss.
struct StepContext {
    std::int64_t epoch = 0;            // 0-based epoch being trained
    std::int64_t step = 0;             // optimizer steps taken before this one
    std::int64_t steps_per_epoch = 0;
    std::int64_t total_steps = 0;
};

struct LossOutput {
    Tensor loss;    // scalar; backward() is called on it
    Tensor logits;  // (B, K) for the train accuracy in metrics.csv
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

// "runs/<model name>-<YYYYmmdd-HHMMSS>" (local time).
std::string default_run_dir(const std::string& model_spec);
// An Error unless `dir` can hold a new run: it is absent and could be created (the nearest
// existing parent is a writable directory), or it is an empty directory.
void check_new_run_dir(const std::string& dir);

class Trainer {
public:
    // Builds the loaders and the optimizer, and runs a trial batch of the training and the
    // evaluation transforms through the model (eval mode, no graph, no random draws): a model
    // that does not fit the data fails here, before any file is written.
    Trainer(TrainConfig config, std::shared_ptr<Model> model, DatasetSplits data);
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
    // Trains until epoch `until_epoch` (1-based, inclusive; 0: run.epochs) is done.
    const TrainProgress& run(std::int64_t until_epoch = 0);

    Model& model() { return *model_; }
    Optimizer& optimizer() { return *optimizer_; }
    const TrainProgress& progress() const { return progress_; }
    std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
    const std::string& run_dir() const { return run_dir_; }
    // The evaluations of the last epoch run (count 0 when the split is absent).
    const EvalResult& last_val() const { return last_val_; }
    const EvalResult& last_test() const { return last_test_; }

private:
    void check_model_fits_data();
    void train_epoch(std::int64_t epoch);
    void finish_epoch(std::int64_t epoch, double train_loss, double train_seconds,
                      std::int64_t train_images);
    double elapsed() const;

    TrainConfig config_;
    std::shared_ptr<Model> model_;
    DatasetSplits data_;
    std::vector<Tensor> params_;
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
};

}  // namespace retort
