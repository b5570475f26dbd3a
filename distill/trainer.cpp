// distill/trainer.cpp: the training loop (see trainer.h), its evaluation, and the pieces built
// from the config: optimizer, schedule, loaders, run directory.
//
// Shapes: images (B, C, H, W) float32, labels (B) int64, soft targets and logits (B, K).
// The loop matches a standard PyTorch classification script: model.train(); for each batch
// loss = F.cross_entropy(model(x), y, label_smoothing); opt.zero_grad(); loss.backward();
// clip_grad_norm_ (optional); opt.step(); scheduler.step() (per step); then model.eval() and
// torch.no_grad() for validation and test. A distillation run's pre-training stage is the
// reference code's separate init loop (RepDistiller helper/pretrain.py: its own SGD at the
// constant base lr), folded into the same loop so that one checkpoint covers both stages.
#include "distill/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>

#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/precision.h"
#include "engine/cuda/runtime.h"
#include "engine/autograd.h"
#include "engine/io/atomic_file.h"
#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/parallel.h"
#include "engine/random.h"
#include "layers/norm.h"
#include "models/registry.h"

namespace retort {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// lr = base for every step.
class ConstantLR : public LrSchedule {
public:
    double lr(std::int64_t, double base_lr) const override { return base_lr; }
};

// A linear warmup from start_factor * base to base over the first `warmup` steps, then the inner
// schedule (which counts its steps from the start of the run, as PyTorch's milestones do).
class LinearWarmup : public LrSchedule {
public:
    LinearWarmup(std::unique_ptr<LrSchedule> inner, std::int64_t warmup, double start_factor)
        : inner_(std::move(inner)), warmup_(warmup), start_factor_(start_factor) {}
    double lr(std::int64_t t, double base_lr) const override {
        if (t >= warmup_) return inner_->lr(t, base_lr);
        return base_lr * (start_factor_ + (1 - start_factor_) * static_cast<double>(t) / warmup_);
    }

private:
    std::unique_ptr<LrSchedule> inner_;
    std::int64_t warmup_;
    double start_factor_;
};

// The constant base lr for the pre-training stage's steps, then the main schedule counted from
// the main stage's first step.
class AfterPreStage : public LrSchedule {
public:
    AfterPreStage(std::unique_ptr<LrSchedule> main, std::int64_t pre_steps)
        : main_(std::move(main)), pre_steps_(pre_steps) {}
    double lr(std::int64_t t, double base_lr) const override {
        return t < pre_steps_ ? base_lr : main_->lr(t - pre_steps_, base_lr);
    }

private:
    std::unique_ptr<LrSchedule> main_;
    std::int64_t pre_steps_;
};

// The parameters the optimizer updates: the model's, then the objectives' as "objectives.<name>".
// Frozen ones (requires_grad == false, e.g. a self-distillation teacher) are saved with their
// module but never trained, so the optimizer does not hold them.
std::vector<std::pair<std::string, Tensor>> trained_parameters(const Model& model,
                                                               const Module* objectives) {
    std::vector<std::pair<std::string, Tensor>> params;
    for (auto& [name, p] : model.named_parameters())
        if (p.requires_grad()) params.emplace_back(name, p);
    if (objectives)
        for (auto& [name, p] : objectives->named_parameters())
            if (p.requires_grad()) params.emplace_back("objectives." + name, p);
    return params;
}

std::string format_fixed(double value, int digits) {
    char text[48];
    std::snprintf(text, sizeof text, "%.*f", digits, value);
    return text;
}

std::string format_cell(double value) {
    if (std::isnan(value)) return "";
    char text[32];
    std::snprintf(text, sizeof text, "%.6f", value);
    return text;
}

std::string model_name(const std::string& spec) { return spec.substr(0, spec.find(':')); }

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

LoaderOptions eval_loader_options(const TrainConfig& c) {
    LoaderOptions o;
    o.batch_size = c.run.eval_batch_size;
    o.shuffle = false;
    o.workers = c.data.workers;
    o.seed = c.run.seed;
    o.transforms = c.data.eval_transforms;
    o.device = parse_device(c.run.device);
    return o;
}

bool has_samples(const std::shared_ptr<const Dataset>& d) { return d && d->size() > 0; }

// Set from a signal handler, read between steps: a lock-free atomic is the one kind of shared
// object a handler may touch (C++17 [support.signal]).
std::atomic<bool> stop_flag{false};
static_assert(std::atomic<bool>::is_always_lock_free);

// The buffers of the model and the objectives (BatchNorm's running statistics, memory banks).
std::vector<Tensor> module_buffers(const Model& model, const Module* objectives) {
    std::vector<Tensor> buffers;
    for (const auto& [_, b] : model.named_buffers()) buffers.push_back(b);
    if (objectives)
        for (const auto& [_, b] : objectives->named_buffers()) buffers.push_back(b);
    return buffers;
}

std::vector<Tensor> copy_of(const std::vector<Tensor>& tensors) {
    NoGradGuard no_grad;
    std::vector<Tensor> copies;
    for (const Tensor& t : tensors) copies.push_back(t.clone());
    return copies;
}

// Puts the saved values back into the tensors themselves (the modules hold those, not copies).
void restore_values(const std::vector<Tensor>& tensors, const std::vector<Tensor>& saved) {
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        Tensor target = tensors[i];  // a handle to the module's own storage
        internal_check(saved[i].numel() == target.numel() && saved[i].device() == target.device(),
                       "restoring buffers: a buffer changed its size or device");
        cuda::copy_bytes(target.raw_device_data(), target.device(), saved[i].raw_device_data(),
                         saved[i].device(),
                         static_cast<std::size_t>(target.numel()) * dtype_size(target.dtype()));
    }
}

}  // namespace

// ---- stopping between two steps ----

void request_stop() noexcept { stop_flag.store(true, std::memory_order_relaxed); }
bool stop_requested() noexcept { return stop_flag.load(std::memory_order_relaxed); }
void clear_stop_request() noexcept { stop_flag.store(false, std::memory_order_relaxed); }

// ---- evaluation ----

TopkHits count_topk(const Tensor& logits, const Tensor& labels) {
    require(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
            "count_topk: logits must be (B, K) and labels (B), got ", shape_str(logits.shape()),
            " and ", shape_str(labels.shape()));
    const std::int64_t batch = logits.size(0), classes = logits.size(1);
    const std::vector<double> x = logits.to_vector<double>();
    const std::vector<std::int64_t> y = labels.to_vector<std::int64_t>();
    TopkHits hits;
    for (std::int64_t b = 0; b < batch; ++b) {
        const double* row = x.data() + b * classes;
        const std::int64_t label = y[b];
        if (label < 0 || label >= classes || std::isnan(row[label])) continue;
        // The label's rank: classes ahead of it (larger logit, or equal with a smaller index).
        std::int64_t rank = 0;
        for (std::int64_t k = 0; k < classes; ++k)
            rank += row[k] > row[label] || (row[k] == row[label] && k < label);
        hits.top1 += rank < 1;
        hits.top5 += rank < 5;
    }
    return hits;
}

EvalResult evaluate(Model& model, DataLoader& loader, dist::Communicator* ranks) {
    model.eval();
    NoGradGuard no_grad;
    EvalResult r;
    double loss_sum = 0;
    std::int64_t top1 = 0, top5 = 0;
    Batch batch;
    loader.start_epoch(0);
    while (loader.next(batch)) {
        if (batch.labels.numel() == 0) continue;  // a last batch smaller than the ranks: not ours
        Tensor logits = model.forward(batch.images);
        loss_sum += cross_entropy(logits, batch.labels, "sum").item();
        const TopkHits hits = count_topk(logits, batch.labels);
        top1 += hits.top1;
        top5 += hits.top5;
        r.count += batch.labels.numel();
    }
    if (ranks && ranks->backend() != "local") {
        const std::vector<double> sums = ranks->sum(
            {loss_sum, static_cast<double>(top1), static_cast<double>(top5), static_cast<double>(r.count)},
            "the evaluation's sums");
        loss_sum = sums[0];
        top1 = std::llround(sums[1]);
        top5 = std::llround(sums[2]);
        r.count = std::llround(sums[3]);
    }
    if (r.count > 0) {
        r.loss = loss_sum / r.count;
        r.top1 = 100.0 * top1 / r.count;
        r.top5 = 100.0 * top5 / r.count;
    }
    return r;
}

LossOutput classification_loss(Model& model, const Batch& batch, double label_smoothing) {
    Tensor logits = model.forward(batch.images);
    const Tensor& target = batch.targets.defined() ? batch.targets : batch.labels;
    return {cross_entropy(logits, target, "mean", label_smoothing), logits, {}};
}

// ---- building a run from its config ----

std::shared_ptr<Model> build_model(const TrainConfig& config) {
    manual_seed(config.run.seed);
    return create_model(config.model);
}

DatasetSplits open_data(const TrainConfig& config) {
    DataOptions o;
    o.path = config.data.path;
    o.format = config.data.format;
    o.val_size = config.data.val_size;
    o.seed = config.run.seed;
    return load_dataset(o);
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig::Optim& o,
                                          const std::vector<std::pair<std::string, Tensor>>& params) {
    std::vector<ParamGroupSpec> groups;
    if (o.decay_norm_and_bias) {
        std::vector<Tensor> all;
        for (const auto& [_, p] : params) all.push_back(p);
        groups.push_back({all, std::nullopt, std::nullopt});
    } else {
        groups = weight_decay_groups(params);
    }
    // weight_decay_groups() may leave a group empty (a model without biases); drop it.
    std::erase_if(groups, [](const ParamGroupSpec& g) { return g.params.empty(); });
    if (o.name == "adamw") {
        AdamWOptions a;
        a.lr = o.lr;
        a.beta1 = o.beta1;
        a.beta2 = o.beta2;
        a.eps = o.eps;
        a.weight_decay = o.weight_decay;
        return std::make_unique<AdamW>(std::move(groups), a);
    }
    SgdOptions s;
    s.lr = o.lr;
    s.momentum = o.momentum;
    s.nesterov = o.nesterov;
    s.weight_decay = o.weight_decay;
    return std::make_unique<SGD>(std::move(groups), s);
}

std::unique_ptr<LrSchedule> make_schedule(const TrainConfig::Schedule& s, std::int64_t epochs,
                                          std::int64_t steps_per_epoch) {
    const std::int64_t total = epochs * steps_per_epoch;
    const std::int64_t warmup = std::min<std::int64_t>(
        std::llround(s.warmup_epochs * static_cast<double>(steps_per_epoch)), total - 1);
    if (s.name == "cosine") {
        WarmupCosineOptions o;
        o.warmup_steps = std::max<std::int64_t>(warmup, 0);
        o.total_steps = total;
        o.warmup_start_factor = s.warmup_start_factor;
        o.min_lr = s.min_lr;
        return std::make_unique<WarmupCosineLR>(o);
    }
    std::unique_ptr<LrSchedule> inner;
    if (s.name == "step") {
        inner = std::make_unique<StepLR>(s.step_size * steps_per_epoch, s.gamma);
    } else if (s.name == "multistep") {
        std::vector<std::int64_t> steps;
        for (std::int64_t m : s.milestones) steps.push_back(m * steps_per_epoch);
        inner = std::make_unique<MultiStepLR>(steps, s.gamma);
    } else {
        inner = std::make_unique<ConstantLR>();
    }
    if (warmup <= 0) return inner;
    return std::make_unique<LinearWarmup>(std::move(inner), warmup, s.warmup_start_factor);
}

std::string default_run_dir(const std::string& model_spec) {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
    return "runs/" + model_name(model_spec) + "-" + stamp;
}

void check_new_run_dir(const std::string& dir, const std::string& command) {
    require(!dir.empty(), "the run directory is empty: give one with --out DIR or run.dir");
    std::error_code ec;
    const fs::path path(dir);
    if (fs::exists(path, ec)) {
        require(fs::is_directory(path, ec), "run directory ", dir, " exists and is not a directory");
        require(fs::is_empty(path, ec), "run directory ", dir,
                " already exists and is not empty; continue it with `retort ", command, " --resume ", dir,
                "` or choose another with --out");
        require(::access(dir.c_str(), W_OK) == 0, "run directory ", dir, " is not writable");
        return;
    }
    // The nearest existing ancestor must be a directory we may write into.
    fs::path parent = fs::absolute(path, ec).parent_path();
    while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.root_path())
        parent = parent.parent_path();
    require(fs::is_directory(parent, ec) && ::access(parent.c_str(), W_OK) == 0,
            "cannot create run directory ", dir, ": ", parent.string(), " is not a writable directory");
}

// ---- the Trainer ----

Trainer::Trainer(TrainConfig config, std::shared_ptr<Model> model, DatasetSplits data,
                 TrainerAddons addons)
    : config_(std::move(config)),
      model_(std::move(model)),
      data_(std::move(data)),
      addons_(std::move(addons)),
      comm_(dist::world()) {
    internal_check(model_ != nullptr, "Trainer needs a model");
    internal_check(addons_.pre_stage_epochs >= 0, "negative pre-stage epochs");
    require(has_samples(data_.train), "the training split is empty");
    if (config_.run.threads > 0) set_num_threads(config_.run.threads);
    device_ = parse_device(config_.run.device);
    require_available(device_);
    // Started by mpirun (even with one rank, to measure what the machinery costs): data parallel.
    distributed_ = comm_->backend() != "local";
    if (distributed_ && device_.is_cuda() && comm_->backend() == "mpi" && dist::have_nccl())
        comm_ = dist::nccl_communicator(*comm_, device_);  // GPU ranks reduce over NCCL
    const int rank = comm_->rank(), ranks = comm_->size();
    require(ranks == 1 || config_.data.batch_size >= ranks, "data.batch_size = ", config_.data.batch_size,
            " is the batch of all ranks together: it must be at least the number of ranks (", ranks, ")");
    set_precision(parse_precision(config_.run.precision));
    set_attention_kernel(parse_attention_kernel(config_.run.attention));
    cuda::set_cudnn_depthwise(config_.run.depthwise == "cudnn");

    LoaderOptions train_options;
    train_options.device = device_;
    train_options.batch_size = config_.data.batch_size;
    train_options.shuffle = true;
    train_options.workers = config_.data.workers;
    train_options.seed = config_.run.seed;
    train_options.transforms = config_.data.train_transforms;
    train_options.batch_transform = config_.data.batch_transform;
    train_options.shard_rank = rank;
    train_options.shard_count = ranks;
    train_loader_ = std::make_unique<DataLoader>(data_.train, train_options);
    // Evaluation is sharded too, unless an extra evaluation (mutual learning's peers) reads the
    // loader: it computes per-process numbers, so each rank then evaluates the whole split.
    LoaderOptions eval_options = eval_loader_options(config_);
    if (!addons_.evaluate) {
        eval_options.shard_rank = rank;
        eval_options.shard_count = ranks;
    }
    if (has_samples(data_.val)) val_loader_ = std::make_unique<DataLoader>(data_.val, eval_options);
    if (has_samples(data_.test)) test_loader_ = std::make_unique<DataLoader>(data_.test, eval_options);

    steps_per_epoch_ = train_loader_->batches_per_epoch();
    if (config_.run.max_steps_per_epoch > 0)
        steps_per_epoch_ = std::min(steps_per_epoch_, config_.run.max_steps_per_epoch);
    require(steps_per_epoch_ > 0, "the training split gives no batches");

    check_model_fits_data(*model_, config_.model, data_, config_);  // a trial batch, on the CPU
    model_->to(device_);  // after the trial batch; the optimizer below gets the moved tensors
    if (addons_.objectives) addons_.objectives->to(device_);  // their connectors and buffers
    const auto named = trained_parameters(*model_, addons_.objectives.get());
    for (const auto& [_, p] : named) params_.push_back(p);
    optimizer_ = make_optimizer(config_.optim, named);
    if (distributed_) {
        if (config_.run.sync_batchnorm) {
            // Every rank must run each forward pass (SyncBatchNorm's collectives): no batch may
            // leave a rank without samples.
            const std::int64_t last = data_.train->size() % config_.data.batch_size;
            require(last == 0 || last >= ranks || steps_per_epoch_ < train_loader_->batches_per_epoch(),
                    "run.sync_batchnorm: the last batch of an epoch has ", last, " samples, fewer than the ",
                    ranks, " ranks; change data.batch_size so that it leaves none or at least ", ranks);
            set_batchnorm_sync(comm_);
        }
        reducer_ = std::make_unique<dist::GradientReducer>(comm_, params_, config_.run.bucket_mib << 20);
        // The replicas start from rank 0's weights and buffers (they were drawn from the same
        // seed, but a replica that differs in one bit would drift: make it certain).
        std::vector<Tensor> state;
        for (const auto& [_, p] : model_->named_parameters()) state.push_back(p);
        if (addons_.objectives)
            for (const auto& [_, p] : addons_.objectives->named_parameters()) state.push_back(p);
        for (const Tensor& b : module_buffers(*model_, addons_.objectives.get())) state.push_back(b);
        reducer_->broadcast_from(0, state);
    }
    schedule_ = make_schedule(config_.schedule, config_.run.epochs, steps_per_epoch_);
    if (addons_.pre_stage_epochs > 0)
        schedule_ = std::make_unique<AfterPreStage>(std::move(schedule_),
                                                    addons_.pre_stage_epochs * steps_per_epoch_);
    const double smoothing = config_.optim.label_smoothing;
    loss_ = [smoothing](Model& m, const Batch& b, const StepContext&) {
        return classification_loss(m, b, smoothing);
    };
}

Trainer::~Trainer() {
    if (distributed_ && config_.run.sync_batchnorm) set_batchnorm_sync(nullptr);
}

void check_model_classes(const Model& model, const Dataset& data, const std::string& spec) {
    const ModelInfo& info = model.info();
    require(data.num_classes() == info.num_classes, "model ", spec, " has ", info.num_classes,
            " outputs, but ", data.describe(), " has ", data.num_classes(),
            " classes (set num_classes in the model spec)");
}

void check_model_fits_data(Model& model, const std::string& spec, const DatasetSplits& data,
                           const TrainConfig& config) {
    check_model_classes(model, *data.train, spec);
    // One small batch through each transform pipeline and the model, in eval mode without a
    // graph: nothing random is drawn and no BatchNorm statistic moves.
    auto trial = [&](const std::shared_ptr<const Dataset>& split, const std::string& transforms,
                     const char* which) {
        LoaderOptions o;
        o.batch_size = std::min<std::int64_t>(2, split->size());
        o.shuffle = false;
        o.workers = 0;
        o.seed = config.run.seed;
        o.transforms = transforms;
        Batch batch;
        try {
            DataLoader loader(split, o);
            loader.start_epoch(0);
            require(loader.next(batch), "no batch came out");
            model.eval();
            NoGradGuard no_grad;
            model.check_input(batch.images);
            model.forward(batch.images);
        } catch (const Error& e) {
            model.train();
            fail("a trial batch of the ", which, " data (transforms \"", transforms,
                 "\") does not fit model ", spec, ": ", e.what(),
                 " (the model's in_chans and img_size, or the transforms, must change)");
        }
        model.train();
    };
    trial(data.train, config.data.train_transforms, "training");
    if (has_samples(data.val)) trial(data.val, config.data.eval_transforms, "validation");
    else if (has_samples(data.test)) trial(data.test, config.data.eval_transforms, "test");
}

std::vector<std::string> Trainer::metrics_columns() const {
    std::vector<std::string> columns;
    if (addons_.pre_stage_epochs > 0) columns.push_back("stage");
    if (config_.run.skip_nonfinite) columns.push_back("skipped");
    for (const std::string& term : addons_.term_names) columns.push_back("loss." + term);
    for (const std::string& column : addons_.eval_columns) columns.push_back(column);
    return columns;
}

void Trainer::set_console(std::FILE* out, bool live) {
    printer_ = ProgressPrinter(out, live, config_.run.log_every);
}

void Trainer::start(const std::string& run_dir, const Config& config) {
    check_new_run_dir(run_dir);  // every rank checks, so every rank fails alike
    if (distributed_) comm_->barrier("the check of the run directory");
    if (writes_files()) {
        std::error_code ec;
        fs::create_directories(run_dir, ec);
        require(!ec && fs::is_directory(run_dir), "cannot create run directory ", run_dir, ": ",
                ec.message());
        config.save((fs::path(run_dir) / "config").string());
        metrics_ = MetricsCsv((fs::path(run_dir) / "metrics.csv").string(), -1, metrics_columns());
    }
    run_dir_ = run_dir;
    progress_ = TrainProgress{};
    progress_.loss_scale = config_.run.loss_scale;  // a resumed run reads its own checkpoint's
    seconds_at_start_ = 0;  // run() restarts the clock; this one times the first save
    clock_start_ns_ = now_ns();
    // The starting point: resuming from it is starting again with the same seed, so a run killed
    // before its first epoch ends can be resumed like any other.
    save_position_checkpoint();
}

void Trainer::resume(const std::string& run_dir) {
    require(fs::is_directory(run_dir), "no run directory ", run_dir);
    const std::string path = (fs::path(run_dir) / "last.safetensors").string();
    require(fs::exists(path), "run directory ", run_dir,
            " has no last.safetensors: the run saved no checkpoint yet (it saves one when it "
            "starts)");
    Checkpoint checkpoint = read_checkpoint(path);
    const std::int64_t pre = addons_.pre_stage_epochs;
    require(checkpoint.progress.epoch < total_epochs(), "the run in ", run_dir,
            " has already done ", checkpoint.progress.epoch, " of its ", total_epochs(), " epochs",
            pre > 0 ? cat(" (", pre, " of them the pre-training stage)") : std::string(),
            "; to train longer, resume with --set run.epochs=N (N > ",
            checkpoint.progress.epoch - pre, ")");
    const EpochTally& partial = checkpoint.progress.partial;
    require(partial.steps < steps_per_epoch_, "checkpoint ", path, " stopped after step ",
            partial.steps, " of epoch ", checkpoint.progress.epoch + 1, ", but an epoch of this run has ",
            steps_per_epoch_, " steps (did the data change?): it cannot continue that epoch");
    require(partial.steps == 0 || partial.window_terms.size() == addons_.term_names.size(),
            "checkpoint ", path, " holds ", partial.window_terms.size(),
            " loss-term sums for its unfinished epoch, but this run's loss has ",
            addons_.term_names.size(), " terms");
    restore_checkpoint(checkpoint, path, *model_, *optimizer_, config_.model,
                       addons_.objectives.get());
    run_dir_ = run_dir;
    progress_ = checkpoint.progress;
    checkpoint_note_ = cat(path, " (", describe_position(progress_), ")");
    // Every rank has read the checkpoint before rank 0 touches the directory.
    if (distributed_) comm_->barrier("reading the checkpoint");
    if (writes_files()) {
        remove_stale_temporary_files(run_dir);  // what a kill during a save left
        metrics_ = MetricsCsv((fs::path(run_dir) / "metrics.csv").string(), progress_.step,
                              metrics_columns());
    }
}

double Trainer::elapsed() const { return seconds_at_start_ + (now_ns() - clock_start_ns_) * 1e-9; }

const TrainProgress& Trainer::run(std::int64_t until_epoch) {
    require(!run_dir_.empty(), "Trainer::run: call start() or resume() first");
    if (until_epoch <= 0) until_epoch = total_epochs();
    until_epoch = std::min(until_epoch, total_epochs());
    seconds_at_start_ = progress_.seconds;
    clock_start_ns_ = now_ns();
    stopped_ = false;
    for (std::int64_t epoch = progress_.epoch; epoch < until_epoch && !stopped_; ++epoch) {
        if (!train_epoch(epoch)) break;
        // A stop asked for during the evaluation: the epoch's checkpoint is already the place
        // to continue from.
        if (agreed_stop() && epoch + 1 < until_epoch) {
            stopped_ = true;
            printer_.message(cat("stopped: the checkpoint ", checkpoint_note_, " is where the run continues"));
        }
    }
    // Rank 0's files (best.safetensors, the checkpoint) are complete before any rank reads them
    // (the next born-again generation loads its teacher from there).
    if (distributed_) {
        comm_->barrier("the end of the run");
        printer_.message(cat("data parallel: ", comm_->size(), comm_->size() == 1 ? " rank" : " ranks", " over ",
                             comm_->backend(), "; each step all-reduces ",
                             format_fixed(reducer_->bytes_per_step() / 1048576.0, 2), " MiB of gradients in ",
                             reducer_->bucket_count(), reducer_->bucket_count() == 1 ? " bucket" : " buckets",
                             "; rank 0 waited ",
                             format_fixed(reducer_->wait_seconds(), 2), " s for them after backward"));
    }
    return progress_;
}

bool Trainer::agreed_stop() {
    if (!distributed_) return stop_requested();
    return comm_->sum({stop_requested() ? 1.0 : 0.0}, "the stop flags")[0] > 0;
}

void Trainer::share_buffers() {
    if (!reducer_) return;
    reducer_->broadcast_from(0, module_buffers(*model_, addons_.objectives.get()));
}

std::string Trainer::stage_of(std::int64_t epoch) const {
    return epoch < addons_.pre_stage_epochs ? "pre" : "main";
}

bool Trainer::train_epoch(std::int64_t epoch) {
    const std::int64_t pre = addons_.pre_stage_epochs;
    EpochTally& tally = progress_.partial;
    const bool fresh = tally.steps == 0;  // else a checkpoint stopped part way through it
    if (fresh) {
        tally = EpochTally{};
        tally.window_terms.assign(addons_.term_names.size(), 0.0);
    }
    if (pre > 0 && epoch == 0 && fresh)
        printer_.message(cat("pre-training stage: epochs 1 to ", pre, " of ", total_epochs()));
    if (pre > 0 && epoch == pre && fresh) {
        // The main stage starts from a fresh optimizer state, as the reference code's new
        // optimizer after its init loop; a run resumed at this epoch resets it the same way.
        // (Resumed part way through the epoch, the checkpoint already holds the new state.)
        optimizer_ = make_optimizer(config_.optim, trained_parameters(*model_, addons_.objectives.get()));
        printer_.message(cat("main stage: epochs ", pre + 1, " to ", total_epochs()));
    }
    const double epoch_start = elapsed();
    const std::int64_t images_before = tally.images;  // images/s counts this process's share only
    const std::int64_t overflows_before = progress_.overflow_skipped;
    printer_.begin_epoch(epoch + 1, total_epochs(), steps_per_epoch_, tally.steps);
    model_->train();
    train_loader_->start_epoch(epoch, tally.steps);

    Batch batch;
    stop_seen_ = false;
    while (tally.steps < steps_per_epoch_) {
        // One process reads its flag; ranks read the flag summed with the last step's numbers, so
        // that all of them stop after the same step.
        if (!distributed_ ? stop_requested() : stop_seen_) {
            save_stop_checkpoint();
            return false;
        }
        internal_check(train_loader_->next(batch), "the loader ran out of batches early");
        train_step(epoch, batch);
        const std::int64_t every = config_.run.checkpoint_every;
        if (every > 0 && tally.steps % every == 0 && tally.steps < steps_per_epoch_)
            save_position_checkpoint();
        const double mean_loss = tally.trained > 0 ? tally.loss / tally.trained : kNaN;
        printer_.step(tally.steps, mean_loss, optimizer_->lr(), tally.images - images_before,
                      elapsed() - epoch_start);
    }
    if (tally.window_steps > 0 || tally.window_skipped > 0) write_train_row(epoch);
    const double train_loss = tally.trained > 0 ? tally.loss / tally.trained : kNaN;
    const std::int64_t skipped = tally.steps - tally.trained, images = tally.images - images_before;
    tally = EpochTally{};  // the epoch's checkpoint is at a boundary
    finish_epoch(epoch, train_loss, elapsed() - epoch_start, images);
    const std::int64_t overflows = progress_.overflow_skipped - overflows_before;
    if (overflows > 0)
        printer_.message(cat("epoch ", epoch + 1, ": skipped ", overflows,
                             overflows == 1 ? " step" : " steps", " whose float16 gradients ",
                             "overflowed; the loss scale is now ", progress_.loss_scale));
    if (skipped > overflows)
        printer_.message(cat("epoch ", epoch + 1, ": skipped ", skipped - overflows,
                             skipped - overflows == 1 ? " step" : " steps",
                             " with a non-finite loss or gradient norm (", progress_.skipped,
                             " in the run so far)"));
    return true;
}

void Trainer::train_step(std::int64_t epoch, const Batch& batch) {
    EpochTally& tally = progress_.partial;
    apply_lr_schedule(*optimizer_, *schedule_, progress_.step);
    const StepContext ctx{epoch,
                          progress_.step,
                          steps_per_epoch_,
                          total_epochs() * steps_per_epoch_,
                          addons_.pre_stage_epochs,
                          config_.run.epochs};
    // A skipped step must leave no trace, but the forward pass in train mode has already moved
    // BatchNorm's running statistics (and an objective's memory bank): skip mode keeps a copy of
    // the buffers to put back. (Cheap for BatchNorm; a large memory bank costs a copy per step.)
    std::vector<Tensor> buffers, buffers_before;
    if (config_.run.skip_nonfinite) {
        buffers = module_buffers(*model_, addons_.objectives.get());
        buffers_before = copy_of(buffers);
    }
    // This process's share of the batch (all of it, unless several ranks split it; possibly none
    // of it when the last batch has fewer samples than there are ranks).
    const std::int64_t local = batch.labels.numel();
    const std::int64_t whole = batch.global_size > 0 ? batch.global_size : local;
    const bool parallel = distributed_;
    LossOutput out;
    double loss = 0;
    TopkHits hits;
    std::vector<double> terms(tally.window_terms.size(), 0.0);
    if (local > 0) {
        out = loss_(*model_, batch, ctx);
        internal_check(out.terms.size() == tally.window_terms.size(),
                       "the loss function returned another number of terms than the trainer's addons name");
        loss = out.loss.item();
        hits = count_topk(out.logits.detach(), batch.labels);
        terms = out.terms;
    }
    const double share = static_cast<double>(local) / static_cast<double>(whole);
    if (parallel) {
        // The whole batch's numbers, the same on every rank: its mean loss and terms (each rank's
        // weighted by its share of the batch), its hits, and whether any rank was asked to stop.
        std::vector<double> numbers{loss * share, static_cast<double>(hits.top1),
                                    static_cast<double>(hits.top5), stop_requested() ? 1.0 : 0.0};
        for (double term : terms) numbers.push_back(term * share);
        numbers = comm_->sum(std::move(numbers), "the step's loss and counts");
        loss = numbers[0];
        hits.top1 = std::llround(numbers[1]);
        hits.top5 = std::llround(numbers[2]);
        stop_seen_ = numbers[3] > 0;
        for (std::size_t k = 0; k < terms.size(); ++k) terms[k] = numbers[4 + k];
    }
    // Checked before backward and the update, so a NaN never reaches the weights.
    double grad_norm = 0;
    bool finite = std::isfinite(loss);
    bool overflow = false;  // f16: the scaled gradients overflowed; the step is skipped, not failed
    if (finite) {
        optimizer_->zero_grad();
        Tensor objective = out.loss;  // undefined when this rank has no samples in the batch
        if (local > 0) {
            // d(whole batch's mean)/d(this rank's mean) = its share; the reducer then sums.
            if (parallel) objective = mul(objective, scalar_tensor(share, objective.dtype(), objective.device()));
            if (precision() == Precision::f16)  // float16 products: scale the loss (see below)
                objective = mul(objective, scalar_tensor(progress_.loss_scale, objective.dtype(),
                                                         objective.device()));
        }
        if (reducer_) reducer_->begin(objective);
        if (local > 0) objective.backward();
        if (reducer_) reducer_->finish();
        if (precision() == Precision::f16) overflow = !unscale_gradients();
        if (!overflow && config_.optim.clip_grad_norm > 0) {
            grad_norm = clip_grad_norm(params_, config_.optim.clip_grad_norm);
            finite = std::isfinite(grad_norm);
        }
    }
    if (finite && overflow) {  // nothing learned from this batch; BatchNorm's statistics stay as moved
        ++progress_.overflow_skipped;
        ++tally.window_skipped;
    } else if (finite) {
        optimizer_->step();
        progress_.consecutive_skipped = 0;
        tally.loss += loss;
        ++tally.trained;
        tally.window_loss += loss;
        for (std::size_t k = 0; k < terms.size(); ++k) tally.window_terms[k] += terms[k];
        ++tally.window_steps;
        tally.window_images += whole;
        tally.window_top1 += hits.top1;
        tally.window_top5 += hits.top5;
    } else {
        on_nonfinite_step(epoch, loss, grad_norm);  // or stop the run
        restore_values(buffers, buffers_before);
        ++tally.window_skipped;
    }
    tally.images += whole;
    ++tally.steps;
    ++progress_.step;
    if (progress_.step % config_.run.log_every == 0) write_train_row(epoch);
}

// Loss scaling for float16 products (PyTorch's GradScaler, with its defaults): the loss is
// multiplied by the scale before backward (train_step), so that small gradients do not underflow
// float16; here the gradients (summed over the ranks, if several) are divided by it again before
// any clipping or update. When they overflow (an infinite or NaN norm) the step is skipped and the
// scale halved; after 2000 good steps in a row it doubles. Returns false on an overflow.
bool Trainer::unscale_gradients() {
    TrainProgress& p = progress_;
    const double scaled_norm = clip_grad_norm(params_, INFINITY);  // measures, clips nothing
    if (!std::isfinite(scaled_norm)) {
        p.loss_scale = std::max(p.loss_scale * 0.5, 1.0);
        p.scale_good_steps = 0;
        return false;
    }
    const double inverse = 1.0 / p.loss_scale;
    NoGradGuard no_grad;
    for (Tensor& param : params_) {
        Tensor g = param.grad();
        if (!g.defined()) continue;
        visit_floating(g.dtype(), "loss scaling", [&]<class T>(Type<T>) {
            retort::run(g.device(), g.numel(),
                        kernels::Scale<T>{g.device_data<T>(), static_cast<T>(inverse)});
        });
    }
    if (++p.scale_good_steps == 2000) {
        p.loss_scale *= 2;
        p.scale_good_steps = 0;
    }
    return true;
}

void Trainer::on_nonfinite_step(std::int64_t epoch, double loss, double grad_norm) {
    // A NaN's sign bit means nothing; printf would still show it as "-nan".
    auto text = [](double x) { return std::isnan(x) ? std::string("nan") : cat(x); };
    const std::string value = std::isfinite(loss)
                                  ? cat("the gradient norm is ", text(grad_norm), " (loss ", loss, ")")
                                  : cat("the training loss is ", text(loss));
    const std::string where = cat(" at epoch ", epoch + 1, ", step ", progress_.partial.steps + 1,
                                  " of ", steps_per_epoch_, " (step ", progress_.step + 1,
                                  " of the run)");
    const std::string last_good = cat("; the last good checkpoint is ", checkpoint_note_);
    require(config_.run.skip_nonfinite, value, where, "; the run stops here (run.on_nonfinite = stop)",
            last_good, ". Lower optim.lr or set optim.clip_grad_norm, or set run.on_nonfinite = skip "
            "to skip such steps");
    ++progress_.skipped;
    ++progress_.consecutive_skipped;
    require(progress_.consecutive_skipped <= config_.run.max_skipped_steps, value, where, ": ",
            progress_.consecutive_skipped, " steps in a row were not finite (run.max_skipped_steps = ",
            config_.run.max_skipped_steps, "); the run stops here", last_good,
            ". Lower optim.lr or set optim.clip_grad_norm");
}

// One train row of metrics.csv: the window of steps since the previous row.
void Trainer::write_train_row(std::int64_t epoch) {
    EpochTally& t = progress_.partial;
    const double steps = static_cast<double>(t.window_steps);
    const double images = static_cast<double>(t.window_images);
    MetricsRow row{epoch + static_cast<double>(t.steps) / steps_per_epoch_, progress_.step, "train",
                   t.window_loss / steps, 100.0 * t.window_top1 / images,
                   100.0 * t.window_top5 / images, optimizer_->lr(), elapsed(), {}};
    if (addons_.pre_stage_epochs > 0) row.extra.push_back(stage_of(epoch));
    if (config_.run.skip_nonfinite) row.extra.push_back(std::to_string(t.window_skipped));
    for (double& sum : t.window_terms) {
        row.extra.push_back(format_cell(sum / steps));
        sum = 0;
    }
    if (writes_files()) metrics_.append(row);
    t.window_loss = 0;
    t.window_steps = t.window_images = t.window_top1 = t.window_top5 = t.window_skipped = 0;
}

void Trainer::save_position_checkpoint() {
    const std::string path = (fs::path(run_dir_) / "last.safetensors").string();
    progress_.seconds = elapsed();
    if (writes_files()) {
        metrics_.sync();  // the rows first: a checkpoint never outlives the rows before it
        save_checkpoint(path, *model_, *optimizer_, progress_, config_.model, addons_.objectives.get());
    }
    checkpoint_note_ = cat(path, " (", describe_position(progress_), ")");
}

void Trainer::save_stop_checkpoint() {
    save_position_checkpoint();
    const std::string path = (fs::path(run_dir_) / "last.safetensors").string();
    stopped_ = true;
    printer_.message(cat("stopped ", describe_position(progress_), ": saved ", path));
}

void Trainer::finish_epoch(std::int64_t epoch, double train_loss, double train_seconds,
                           std::int64_t train_images) {
    const double epoch_start = elapsed() - train_seconds;
    const bool main_stage = epoch >= addons_.pre_stage_epochs;
    EpochSummary summary;
    summary.epoch = epoch + 1;
    summary.epochs = total_epochs();
    summary.train_loss = train_loss;
    summary.images_per_second = train_seconds > 0 ? train_images / train_seconds : 0;

    auto report = [&](DataLoader* loader, const char* split, EvalResult& result) -> double {
        result = EvalResult{};
        if (!loader) return -1;
        printer_.evaluating(split);
        result = evaluate(*model_, *loader, addons_.evaluate ? nullptr : comm_.get());
        MetricsRow row{static_cast<double>(epoch + 1), progress_.step, split, result.loss,
                       result.top1, result.top5, optimizer_->lr(), elapsed(), {}};
        if (addons_.pre_stage_epochs > 0) row.extra.push_back(stage_of(epoch));
        if (config_.run.skip_nonfinite) row.extra.emplace_back();  // a training count
        if (addons_.evaluate) {
            const std::vector<double> cells = addons_.evaluate(split, *loader);
            internal_check(cells.size() == addons_.eval_columns.size(),
                           "the extra evaluation returned another number of values than its columns");
            // the loss terms are training quantities: empty cells on evaluation rows
            row.extra.resize(row.extra.size() + addons_.term_names.size());
            for (double cell : cells) row.extra.push_back(format_cell(cell));
        }
        if (writes_files()) metrics_.append(row);
        return result.top1;
    };
    share_buffers();  // every replica evaluates rank 0's running statistics
    summary.val_top1 = report(val_loader_.get(), "val", last_val_);
    summary.test_top1 = report(test_loader_.get(), "test", last_test_);
    model_->train();

    progress_.epoch = epoch + 1;
    // Without a validation split there is nothing to choose by: best follows last. The
    // pre-training stage does not train the classifier for its own sake: it is never "best".
    if (main_stage && (!val_loader_ || summary.val_top1 > progress_.best_top1)) {
        progress_.best_top1 = std::max(summary.val_top1, progress_.best_top1);
        progress_.best_epoch = epoch + 1;
        summary.best = val_loader_ != nullptr;
        char top1[32];
        std::snprintf(top1, sizeof top1, "%.4f", summary.val_top1);
        if (writes_files())
            save_weights((fs::path(run_dir_) / "best.safetensors").string(), *model_,
                     {{"model", config_.model},
                      {"epoch", std::to_string(epoch + 1)},
                      {"val_top1", val_loader_ ? top1 : "none"}});
    }
    // Before the checkpoint, so that what the hook records is saved with this epoch.
    const std::string addon_line = addons_.end_epoch ? addons_.end_epoch(epoch + 1, run_dir_) : "";
    progress_.seconds = elapsed();
    const std::string last = (fs::path(run_dir_) / "last.safetensors").string();
    if (writes_files()) {
        metrics_.sync();  // the rows first: a checkpoint never outlives the rows before it
        save_checkpoint(last, *model_, *optimizer_, progress_, config_.model, addons_.objectives.get());
    }
    checkpoint_note_ = cat(last, " (", describe_position(progress_), ")");
    summary.seconds = elapsed() - epoch_start;
    printer_.end_epoch(summary);
    if (!addon_line.empty()) printer_.message(addon_line);
}

}  // namespace retort
