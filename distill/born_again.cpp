// distill/born_again.cpp: born-again networks: the generations, their teachers, resuming, and the
// final evaluation of every generation and of the ensembles (see born_again.h for the formula,
// the seeds and the run directory).
//
// Shapes: x (B, C, H, W) float32, labels (B) int64, logits (B, K); P (n, K) the softmax
// probabilities of a model over a split of n samples, in the loader's fixed order.
//
// Paper: Furlanello et al., "Born-Again Neural Networks", ICML 2018 (the BAN loss: cross-entropy
// to the previous generation's output; BAN+L adds the label's cross-entropy; the ensemble of the
// born-again students averages their predictions). Cross-checked against nocotan's unofficial
// PyTorch reimplementation (born_again_neuralnet): a fresh copy of the model per generation, the
// previous generation's saved weights as the frozen teacher, and an ensemble that averages the
// generations' outputs; that code mixes CE and KD at alpha = 0.9, T = 20, here the paper's
// unweighted sum at T = 1 is the default and T is a key.
//
// Backward saves what soft_target_loss saves (self_distillation.h); the teacher runs without a
// graph. The ensembles' probabilities are summed in float64, generation by generation in a fixed
// order, so the numbers do not depend on the thread count.
#include "distill/born_again.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>

#include "data/loader.h"
#include "distill/checkpoint.h"
#include "distill/distiller.h"
#include "distill/metrics_csv.h"
#include "distill/mutual_learning.h"
#include "distill/self_distillation.h"
#include "engine/autograd.h"
#include "engine/dist/communicator.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/registry.h"

namespace retort {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string percent(double v) {
    return std::isfinite(v) ? cat(std::fixed, std::setprecision(2), v, "%") : std::string("n/a");
}

// A model of `spec` built without moving the default generator (its weights are loaded next).
std::shared_ptr<Model> model_for_weights(const std::string& spec) {
    Generator& gen = default_generator();
    const Generator saved = gen;
    std::shared_ptr<Model> model = create_model(spec);
    gen = saved;
    return model;
}

// The metadata entry of a weights file, or "".
std::string metadata_of(const std::string& path, const std::string& key) {
    const auto metadata = read_safetensors(path).metadata;
    const auto it = metadata.find(key);
    return it == metadata.end() ? "" : it->second;
}

// The top-1 of the last test row of RUN/metrics.csv (the last epoch's), or NaN.
double last_test_top1(const std::string& run_dir) {
    const std::string path = (fs::path(run_dir) / "metrics.csv").string();
    if (!fs::exists(path)) return kNaN;
    const MetricsTable table = read_metrics_table(path);
    if (!table.has("top1")) return kNaN;
    double found = kNaN;
    for (std::size_t row = 0; row < table.rows(); ++row)
        if (table.split[row] == "test") found = table.numbers.at("top1")[row];
    return found;
}

// A run's wall time from its last.safetensors, or NaN.
double run_seconds(const std::string& run_dir) {
    const std::string path = (fs::path(run_dir) / "last.safetensors").string();
    return fs::exists(path) ? read_checkpoint(path).progress.seconds : kNaN;
}

// The evaluation loader of a split, as the trainer builds it.
std::unique_ptr<DataLoader> eval_loader(const std::shared_ptr<const Dataset>& split,
                                        const TrainConfig& c) {
    if (!split || split->size() == 0) return nullptr;
    LoaderOptions o;
    o.batch_size = c.run.eval_batch_size;
    o.shuffle = false;
    o.workers = c.data.workers;
    o.seed = c.run.seed;
    o.transforms = c.data.eval_transforms;
    return std::make_unique<DataLoader>(split, o);
}

// A model's softmax probabilities over a split, and the labels, in the loader's order.
struct SplitScores {
    std::vector<double> probs;  // (n, K) row-major
    std::vector<std::int64_t> labels;
    std::int64_t classes = 0;
};

SplitScores score_split(Model& model, DataLoader& loader) {
    model.eval();
    NoGradGuard no_grad;
    SplitScores s;
    Batch batch;
    loader.start_epoch(0);
    while (loader.next(batch)) {
        const Tensor logits = model.forward(batch.images);
        s.classes = logits.size(1);
        const std::vector<double> p = softmax(logits, 1).to_vector<double>();
        const std::vector<std::int64_t> y = batch.labels.to_vector<std::int64_t>();
        s.probs.insert(s.probs.end(), p.begin(), p.end());
        s.labels.insert(s.labels.end(), y.begin(), y.end());
    }
    return s;
}

// Top-1 in percent of probabilities (n, K) against the labels; NaN for an empty split.
double top1_of(const std::vector<double>& probs, const std::vector<std::int64_t>& labels,
               std::int64_t classes) {
    const std::int64_t n = static_cast<std::int64_t>(labels.size());
    if (n == 0) return kNaN;
    const TopkHits hits = count_topk(from_vector(probs, {n, classes}), from_vector(labels));
    return 100.0 * static_cast<double>(hits.top1) / static_cast<double>(n);
}

// Running sums of the members' probabilities on one split.
struct EnsembleSum {
    std::vector<double> sum;
    std::int64_t members = 0;

    void add(const SplitScores& s) {
        if (sum.empty()) sum.assign(s.probs.size(), 0.0);
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += s.probs[i];
        ++members;
    }
    double top1(const SplitScores& like) const {
        if (members == 0 || like.labels.empty()) return kNaN;
        std::vector<double> mean(sum.size());
        for (std::size_t i = 0; i < sum.size(); ++i) mean[i] = sum[i] / static_cast<double>(members);
        return top1_of(mean, like.labels, like.classes);
    }
};

json::Value json_number(double v) { return std::isfinite(v) ? json::Value(v) : json::Value(); }

std::string member_list(const std::vector<std::int64_t>& members) {
    if (members.empty()) return "";
    return members.size() == 1 ? cat(members[0]) : cat(members.front(), "..", members.back());
}

}  // namespace

// ---- generations ----

std::uint64_t generation_seed(std::uint64_t run_seed, std::int64_t generation) {
    // One bit less than SplitMix64 gives, so that every seed is also a valid run.seed and a JSON
    // integer.
    return generation == 0 ? run_seed : peer_seed(run_seed, generation) >> 1;
}

std::string generation_dir(const std::string& run_dir, std::int64_t generation) {
    return (fs::path(run_dir) / cat("gen-", generation)).string();
}

GenerationState generation_state(const std::string& dir, std::int64_t epochs) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return GenerationState::absent;
    const std::string last = (fs::path(dir) / "last.safetensors").string();
    if (!fs::exists(last, ec)) return GenerationState::unstarted;
    return read_checkpoint(last).progress.epoch >= epochs ? GenerationState::finished
                                                          : GenerationState::unfinished;
}

std::string check_first_generation(const DistillConfig& config) {
    const std::string& first = config.born_again.first;
    std::error_code ec;
    require(fs::is_directory(first, ec), "born_again.first: no run directory at ", first,
            " (give the directory of a finished `retort train` run of [model], or leave it empty to "
            "train generation 0 here)");
    const std::string best = (fs::path(first) / "best.safetensors").string();
    require(fs::is_regular_file(best, ec), "born_again.first: the run directory ", first,
            " has no best.safetensors (the run has not finished an epoch yet, or it is not a "
            "`retort train` run)");
    const std::string saved = (fs::path(first) / "config").string();
    require(fs::is_regular_file(saved, ec), "born_again.first: the run directory ", first,
            " has no config: it is not a run directory");
    Config theirs = distill_config_schema();
    try {
        theirs.load_file(saved);
    } catch (const Error& e) {
        fail("born_again.first: ", saved, " is not a readable run config: ", e.what());
    }
    // The same validation split for every generation: the same data, held out the same way.
    const TrainConfig& ours = config.train;
    auto same_path = [](const std::string& a, const std::string& b) {
        std::error_code e;
        return a == b || fs::weakly_canonical(a, e) == fs::weakly_canonical(b, e);
    };
    std::string differs;
    auto compare = [&](const std::string& key, const std::string& mine, const std::string& other, bool same) {
        if (!same) differs += cat(differs.empty() ? "" : ", ", key, " = ", other, " (here ", mine, ")");
    };
    compare("data.path", ours.data.path, theirs.get_string("data.path"),
            same_path(ours.data.path, theirs.get_string("data.path")));
    compare("data.format", ours.data.format, theirs.get_string("data.format"),
            ours.data.format == theirs.get_string("data.format"));
    compare("data.val_size", cat(ours.data.val_size), cat(theirs.get_int("data.val_size")),
            ours.data.val_size == theirs.get_int("data.val_size"));
    compare("run.seed", cat(ours.run.seed), cat(theirs.get_int("run.seed")),
            static_cast<std::int64_t>(ours.run.seed) == theirs.get_int("run.seed"));
    require(differs.empty(), "born_again.first: the run in ", first, " was trained with ", differs,
            ": generation 0 must hold out the same validation samples as the generations trained "
            "here");
    std::shared_ptr<Model> model = model_for_weights(ours.model);
    try {
        model->load_state_dict(load_model_weights(best));
    } catch (const Error& e) {
        const std::string saved_for = metadata_of(best, "model");
        fail("born_again.first: ", best, " does not fit [model] ", ours.model,
             saved_for.empty() ? std::string() : " (it was saved for model " + saved_for + ")", ": ",
             e.what());
    }
    return best;
}

void run_generation_quietly(const GenerationJob& job) {
    if (job.resume) job.trainer.resume(job.dir);
    else job.trainer.start(job.dir, job.config);
    job.trainer.run();
}

// ---- the run ----

BornAgain::BornAgain(const DistillConfig& config) : config_(config) {
    internal_check(config_.mode == "born_again", "BornAgain needs mode = born_again");
    if (!config_.born_again.first.empty()) first_weights_ = check_first_generation(config_);
    data_ = open_data(config_.train);
    std::shared_ptr<Model> probe = model_for_weights(config_.train.model);
    check_model_fits_data(*probe, config_.train.model, data_, config_.train);
}

BornAgain::~BornAgain() = default;

void BornAgain::message(const std::string& line) const {
    if (!console_) return;
    std::fprintf(console_, "%s\n", line.c_str());
    std::fflush(console_);
}

BornAgainSummary BornAgain::start(const std::string& run_dir, const GenerationRunner& runner) {
    check_new_run_dir(run_dir, "distill");
    // Several ranks: all check before rank 0 creates (then it writes alone).
    const std::shared_ptr<dist::Communicator> ranks = dist::world();
    if (ranks->size() > 1) ranks->barrier("the check of the run directory");
    if (ranks->is_root()) {
        std::error_code ec;
        fs::create_directories(run_dir, ec);
        require(!ec && fs::is_directory(run_dir), "cannot create run directory ", run_dir, ": ",
                ec.message());
        Config saved = config_.resolved;
        saved.set("run.dir", run_dir, "born_again");
        saved.save((fs::path(run_dir) / "config").string());
    }
    return train_generations(run_dir, runner);
}

BornAgainSummary BornAgain::resume(const std::string& run_dir, const GenerationRunner& runner) {
    require(fs::is_directory(run_dir), "no run directory ", run_dir);
    const std::int64_t first = first_weights_.empty() ? 0 : 1;
    bool all_finished = true;
    for (std::int64_t k = first; k <= config_.born_again.generations; ++k)
        all_finished = all_finished && generation_state(generation_dir(run_dir, k),
                                                         config_.train.run.epochs) ==
                                           GenerationState::finished;
    const std::int64_t n = config_.born_again.generations;
    require(!all_finished || !fs::exists(fs::path(run_dir) / "generations.json"), "the born-again run in ",
            run_dir, " has finished ", n == 1 ? "its generation" : cat("all ", n, " generations"),
            " after generation 0; to add generations, resume with --set born_again.generations=N (N > ",
            n, ")");
    if (dist::world()->is_root())
        config_.resolved.save((fs::path(run_dir) / "config").string());  // records a raised generations
    return train_generations(run_dir, runner);
}

BornAgainSummary BornAgain::train_generations(const std::string& run_dir,
                                              const GenerationRunner& runner) {
    if (!first_weights_.empty())
        message(cat("born-again generation 0 of ", config_.born_again.generations, ": ",
                    first_weights_, " (born_again.first), not trained here"));
    for (std::int64_t k = first_weights_.empty() ? 0 : 1; k <= config_.born_again.generations; ++k)
        train_generation(k, run_dir, runner);
    BornAgainSummary summary = summarize(run_dir);
    if (dist::world()->is_root()) write_generations_summary(run_dir, summary);
    return summary;
}

std::string BornAgain::teacher_weights(std::int64_t k, const std::string& run_dir) const {
    if (k == 1 && !first_weights_.empty()) return first_weights_;
    const std::string path = (fs::path(generation_dir(run_dir, k - 1)) / "best.safetensors").string();
    require(fs::is_regular_file(path), "born-again generation ", k, " is taught by generation ",
            k - 1, ", but ", path, " does not exist");
    return path;
}

void BornAgain::train_generation(std::int64_t k, const std::string& run_dir,
                                 const GenerationRunner& runner) {
    const std::string dir = generation_dir(run_dir, k);
    const std::int64_t generations = config_.born_again.generations;
    const GenerationState state = generation_state(dir, config_.train.run.epochs);
    if (state == GenerationState::finished) {
        message(cat("born-again generation ", k, " of ", generations, ": finished earlier in ", dir,
                    ", not run again"));
        return;
    }
    // A generation stopped before its first checkpoint has nothing to continue from.
    if (state == GenerationState::unstarted) fs::remove_all(dir);

    const std::uint64_t seed = generation_seed(config_.train.run.seed, k);
    manual_seed(seed);
    std::shared_ptr<Model> model = create_model(config_.train.model);
    std::string lines = cat("born-again generation ", k, " of ", generations, ": ",
                            config_.train.model, " from seed ", seed);
    TrainerAddons addons;
    LossFn loss;
    if (k == 0) {
        lines += ", trained from the labels alone (as `retort train`)";
    } else {
        const std::string weights = teacher_weights(k, run_dir);
        DistillConfig as_teacher = config_;
        as_teacher.teacher = config_.train.model;
        as_teacher.teacher_weights = weights;
        std::shared_ptr<Model> teacher = load_teacher(as_teacher, *model);
        teacher->to(parse_device(config_.train.run.device));  // where the generation trains
        const std::string val_top1 = metadata_of(weights, "val_top1");
        lines += cat(", taught by ", weights, " (epoch ", metadata_of(weights, "epoch"), ", val top1 ",
                     val_top1 == "none" || val_top1.empty() ? std::string("n/a") : percent(std::stod(val_top1)),
                     "); loss = ",
                     config_.born_again.with_labels ? "CE + " : "", "T^2 KL at T = ",
                     config_.born_again.T);
        addons.term_names = {"ce", "kd"};
        const double ce_weight = config_.born_again.with_labels ? 1.0 : 0.0;
        const double T = config_.born_again.T, smoothing = config_.train.optim.label_smoothing;
        loss = [teacher, ce_weight, T, smoothing](Model& network, const Batch& batch, const StepContext&) {
            Tensor logits = network.forward(batch.images);
            Tensor teacher_logits;
            {
                NoGradGuard no_grad;
                teacher_logits = teacher->forward(batch.images);
            }
            const SoftTargetLoss l =
                soft_target_loss(logits, teacher_logits, batch.labels, ce_weight, 1.0, T, smoothing);
            return LossOutput{l.total, logits, {l.ce.item(), l.kd.item()}};
        };
    }
    Trainer trainer(config_.train, model, data_, addons);
    if (loss) trainer.set_loss(loss);
    Config config = config_.resolved;
    config.set("run.dir", dir, "born_again");
    runner(GenerationJob{trainer, *model, dir, state == GenerationState::unfinished, config, lines});
}

BornAgainSummary BornAgain::summarize(const std::string& run_dir) const {
    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<DataLoader> val = eval_loader(data_.val, config_.train);
    std::unique_ptr<DataLoader> test = eval_loader(data_.test, config_.train);
    BornAgainSummary summary;
    EnsembleSum students_val, students_test, all_val, all_test;
    SplitScores val_scores, test_scores;  // the latest generation's; the labels are every one's
    for (std::int64_t k = 0; k <= config_.born_again.generations; ++k) {
        const bool given = k == 0 && !first_weights_.empty();
        const std::string dir = given ? config_.born_again.first : generation_dir(run_dir, k);
        const std::string weights = given ? first_weights_ : (fs::path(dir) / "best.safetensors").string();
        GenerationRecord r;
        r.generation = k;
        r.dir = given ? dir : fs::path(dir).filename().string();
        r.seed = generation_seed(config_.train.run.seed, k);
        const std::string epoch = metadata_of(weights, "epoch");
        r.best_epoch = epoch.empty() ? 0 : std::stoll(epoch);
        r.last_test_top1 = last_test_top1(dir);
        r.seconds = run_seconds(dir);

        std::shared_ptr<Model> model = model_for_weights(config_.train.model);
        model->load_state_dict(load_model_weights(weights));
        r.best_val_top1 = r.best_test_top1 = kNaN;
        if (val) {
            val_scores = score_split(*model, *val);
            r.best_val_top1 = top1_of(val_scores.probs, val_scores.labels, val_scores.classes);
            if (k > 0) students_val.add(val_scores);
            all_val.add(val_scores);
        }
        if (test) {
            test_scores = score_split(*model, *test);
            r.best_test_top1 = top1_of(test_scores.probs, test_scores.labels, test_scores.classes);
            if (k > 0) students_test.add(test_scores);
            all_test.add(test_scores);
        }
        summary.generations.push_back(r);
    }
    for (std::int64_t k = 0; k <= config_.born_again.generations; ++k) {
        if (k > 0) summary.students.members.push_back(k);
        summary.all.members.push_back(k);
    }
    summary.students.val_top1 = students_val.top1(val_scores);
    summary.students.test_top1 = students_test.top1(test_scores);
    summary.all.val_top1 = all_val.top1(val_scores);
    summary.all.test_top1 = all_test.top1(test_scores);
    summary.eval_seconds = seconds_since(start);
    summary.total_seconds = summary.eval_seconds;
    for (const GenerationRecord& r : summary.generations)
        if (std::isfinite(r.seconds)) summary.total_seconds += r.seconds;
    return summary;
}

std::string BornAgain::describe() const {
    const BornAgainConfig& b = config_.born_again;
    return cat("born-again networks: generation 0 ",
               b.first.empty() ? std::string("trained from the labels") : "from " + b.first,
               ", then ", b.generations, " generation", b.generations == 1 ? "" : "s", " of ",
               config_.train.model, ", each taught by the one before: loss = ",
               b.with_labels ? "CE + " : "", "T^2 KL at T = ", b.T,
               "\n  each generation in RUN_DIR/gen-K; at the end generations.{json,md}: every "
               "generation and the ensembles of 1..N and 0..N on val and test");
}

// ---- the summary ----

void write_generations_summary(const std::string& run_dir, const BornAgainSummary& s) {
    json::Array generations;
    for (const GenerationRecord& r : s.generations)
        generations.push_back(json::Object{{"generation", r.generation},
                                           {"dir", r.dir},
                                           {"seed", static_cast<std::int64_t>(r.seed)},
                                           {"best_epoch", r.best_epoch},
                                           {"best_val_top1", json_number(r.best_val_top1)},
                                           {"best_test_top1", json_number(r.best_test_top1)},
                                           {"last_test_top1", json_number(r.last_test_top1)},
                                           {"seconds", json_number(r.seconds)}});
    auto ensemble = [](const EnsembleRecord& e, const char* what) {
        json::Array members;
        for (std::int64_t m : e.members) members.push_back(m);
        return json::Object{{"members", members},
                            {"what", what},
                            {"val_top1", json_number(e.val_top1)},
                            {"test_top1", json_number(e.test_top1)}};
    };
    const json::Object summary{
        {"generations", generations},
        {"ensembles", json::Array{ensemble(s.students, "the born-again generations 1..N (the paper's)"),
                                  ensemble(s.all, "every generation 0..N")}},
        {"eval_seconds", json_number(s.eval_seconds)},
        {"total_seconds", json_number(s.total_seconds)}};
    write_file_atomically((fs::path(run_dir) / "generations.json").string(), json::dump(summary) + "\n");

    std::string md = cat("# ", run_dir, ": born-again generations\n\n",
                         "Top-1 (%) of each generation's best.safetensors (chosen by validation), "
                         "the last epoch's test top-1, and the training time.\n\n",
                         "| generation | dir | seed | best epoch | val top-1 | test top-1 | "
                         "test top-1 (last) | seconds |\n|---|---|---|---|---|---|---|---|\n");
    for (const GenerationRecord& r : s.generations)
        md += cat("| ", r.generation, " | ", r.dir, " | ", r.seed, " | ", r.best_epoch, " | ",
                  percent(r.best_val_top1), " | ", percent(r.best_test_top1), " | ",
                  percent(r.last_test_top1), " | ",
                  std::isfinite(r.seconds) ? cat(std::fixed, std::setprecision(1), r.seconds) : "n/a",
                  " |\n");
    md += cat("\nEnsembles (softmax probabilities averaged):\n\n",
              "| generations | val top-1 | test top-1 |\n|---|---|---|\n",
              "| ", member_list(s.students.members), " (born-again students) | ",
              percent(s.students.val_top1), " | ", percent(s.students.test_top1), " |\n",
              "| ", member_list(s.all.members), " (all) | ", percent(s.all.val_top1), " | ",
              percent(s.all.test_top1), " |\n",
              "\nTotal time: ", cat(std::fixed, std::setprecision(1), s.total_seconds),
              " s (the generations' training and evaluation, then ",
              cat(std::fixed, std::setprecision(1), s.eval_seconds), " s for this evaluation).\n");
    write_file_atomically((fs::path(run_dir) / "generations.md").string(), md);
}

}  // namespace retort
