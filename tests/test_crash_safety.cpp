// tests/test_crash_safety.cpp: runs that are killed, interrupted or hit a NaN.
//
//   - write_file_atomically: the whole new file or the old one, never a temporary file left.
//   - metrics.csv: a last row torn by a kill is dropped when the run resumes.
//   - stop requests (what Ctrl-C does): a checkpoint part way through an epoch, or at its end when
//     the request comes during the evaluation, from which the run continues bit for bit; the
//     checks a resume makes on such a checkpoint.
//   - non-finite losses and gradient norms: run.on_nonfinite = stop names the epoch, the step, the
//     value and the last good checkpoint; skip leaves no trace of the step and counts it.
//   - the `retort` binary killed with SIGKILL twice and resumed; stopped with SIGINT (status 130)
//     and SIGTERM (143); a second SIGINT ending it at once. These start the binary with
//     posix_spawn, watch metrics.csv to know where the run is, and send the signal.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "distill/trainer.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "tests/cli_run.h"
#include "tests/run_files.h"

extern char** environ;

using namespace retort;
using namespace retort::testing;
namespace fs = std::filesystem;
using retort::testing::run_retort;
using retort::testing::TempDir;
using retort::testing::CliRun;
using doctest::Contains;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// doctest's matcher for a message built at run time (it keeps its own copy of the text).
Contains contains(const std::string& text) { return Contains(text.c_str()); }

// A tiny run: 12x12 one-channel images of 4 classes; 80 training samples in 5 batches of 16.
const char* kTinyConfig = R"([model]
spec = resnet8:in_chans=1,num_classes=4

[data]
path = synthetic:num_classes=4,size=96,test_size=32,channels=1,height=12,width=12
val_size = 16
batch_size = 16
workers = 2
train_transforms = "random_crop:padding=2; flip"

[optim]
lr = 0.05

[run]
epochs = 3
log_every = 2
threads = 1
)";

Config tiny_config(const std::vector<std::string>& overrides = {}) {
    Config c = train_config_schema();
    c.parse(kTinyConfig, "tiny.cfg");
    for (const std::string& o : overrides) c.apply_override(o);
    return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() &&
           std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}

void check_same_tensors(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
    REQUIRE(a.size() == b.size());
    for (const auto& [name, t] : a) {
        REQUIRE_MESSAGE(b.count(name), name);
        CHECK_MESSAGE(same_bits(t, b.at(name)), name);
    }
}

// Everything two runs that should agree must agree on: the last checkpoint's model, optimizer
// and progress, best.safetensors to the byte, and metrics.csv but for the wall time.
void check_same_run(const std::string& a, const std::string& b) {
    const Checkpoint ca = read_checkpoint(a + "/last.safetensors");
    const Checkpoint cb = read_checkpoint(b + "/last.safetensors");
    check_same_tensors(ca.model, cb.model);
    check_same_tensors(ca.optimizer, cb.optimizer);
    CHECK(ca.rng_offset == cb.rng_offset);
    CHECK(ca.progress.epoch == cb.progress.epoch);
    CHECK(ca.progress.step == cb.progress.step);
    CHECK(ca.progress.best_epoch == cb.progress.best_epoch);
    CHECK(ca.progress.partial.steps == 0);
    CHECK(cb.progress.partial.steps == 0);
    CHECK(read_text(a + "/best.safetensors") == read_text(b + "/best.safetensors"));
    CHECK(without_seconds(a + "/metrics.csv") == without_seconds(b + "/metrics.csv"));
}

// A loss that is the usual cross-entropy, made non-finite (times `value`) on the given steps.
LossFn poisoned_loss(std::set<std::int64_t> steps, double value = kNaN) {
    return [steps, value](Model& model, const Batch& batch, const StepContext& ctx) {
        LossOutput out = classification_loss(model, batch, 0);
        if (steps.count(ctx.step)) out.loss = out.loss * value;
        return out;
    };
}

// Stop requests are process-wide: a test that makes them must not leave one behind for the
// next test, even when it ends early on a failed REQUIRE.
struct ClearStopRequests {
    ClearStopRequests() { clear_stop_request(); }
    ~ClearStopRequests() { clear_stop_request(); }
};

// ---- the retort binary in a child process ----

struct Child {
    pid_t pid = -1;
    std::string log;
};

// Starts `retort ARGS` with stdout and stderr going to `log`.
Child spawn_retort(const std::vector<std::string>& args, const std::string& log) {
    const std::string binary = std::string(RETORT_BINARY_DIR) + "/retort";
    std::vector<std::string> all = {binary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    Child child;
    child.log = log;
    const int error = posix_spawn(&child.pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(error == 0, "posix_spawn ", binary, ": ", std::strerror(error));
    return child;
}

// The exit status, or 128 + the signal that ended it (as a shell reports it).
int wait_for(const Child& child) {
    int raw = 0;
    while (::waitpid(child.pid, &raw, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

// The largest step of a train row in the run's metrics.csv (0 without one).
std::int64_t latest_step(const std::string& run_dir) {
    std::stringstream in(read_text(run_dir + "/metrics.csv"));
    std::string line;
    std::int64_t latest = 0;
    while (std::getline(in, line)) {
        const std::size_t a = line.find(','), b = line.find(',', a + 1);
        if (b == std::string::npos || line.compare(b + 1, 6, "train,") != 0) continue;
        latest = std::max<std::int64_t>(latest, std::atoll(line.c_str() + a + 1));
    }
    return latest;
}

// Waits until the child's metrics.csv has a train row at `step` or later; false if it exited
// first (the run was faster than the watch). Sanitizer builds are slow: the limit is generous.
bool wait_for_step(const Child& child, const std::string& run_dir, std::int64_t step) {
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < limit) {
        if (latest_step(run_dir) >= step) return true;
        int raw = 0;
        if (::waitpid(child.pid, &raw, WNOHANG) == child.pid) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

// A run of 10 steps per epoch (160 training samples) and 4 epochs, a train row after every step,
// so that a watcher can stop it at a chosen step.
std::vector<std::string> watched_run_args(const std::string& config, const std::string& out) {
    return {"train", "--config", config, "--out", out, "--set",
            "data.path=synthetic:num_classes=4,size=176,test_size=32,channels=1,height=12,width=12",
            "--set", "run.epochs=4", "--set", "run.log_every=1"};
}

}  // namespace

TEST_CASE("crash safety: write_file_atomically replaces a file whole and leaves no temporary file") {
    TempDir dir;
    const std::string path = dir / "file.txt";
    write_file_atomically(path, "first version\n");
    write_file_atomically(path, "second");
    CHECK(read_text(path) == "second");
    int files = 0;
    for (const auto& entry : fs::directory_iterator(dir.path)) {
        ++files;
        CHECK(entry.path().filename() == "file.txt");
    }
    CHECK(files == 1);

    // A writer that never commits (an exception on the way) leaves the old file and no trace.
    {
        AtomicFileWriter writer(path);
        writer.write("half of a new ver");
        CHECK(fs::exists(writer.temp_path()));
    }
    CHECK(read_text(path) == "second");
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

    // What a writer killed part way leaves: removed once its process is gone, and only then.
    write_text(dir / "last.safetensors.tmp.999999999", "half");  // above any pid Linux gives out
    const std::string live = dir / cat("metrics.csv.tmp.", ::getpid());
    write_text(live, "being written");
    write_text(dir / "notes.tmp.txt", "not a temporary file");
    CHECK(remove_stale_temporary_files(dir.path.string()) == 1);
    CHECK_FALSE(fs::exists(dir / "last.safetensors.tmp.999999999"));
    CHECK(fs::exists(live));
    CHECK(fs::exists(dir / "notes.tmp.txt"));
    fs::remove(live);
    fs::remove(dir / "notes.tmp.txt");

    const std::string nowhere = dir / "missing/dir/file.txt";
    CHECK_THROWS_WITH_AS(write_file_atomically(nowhere, "x"),
                         contains("cannot write " + nowhere + ": cannot create the temporary file " +
                                  nowhere + ".tmp."),
                         Error);
    CHECK_FALSE(fs::exists(dir / "missing"));
    CHECK_THROWS_WITH_AS(tiny_config().save(nowhere), contains("cannot write " + nowhere), Error);
}

TEST_CASE("crash safety: metrics.csv: a last row torn by a kill is dropped on resume, even if it looks whole") {
    TempDir dir;
    const std::string path = dir / "metrics.csv";
    // Steps 2 and 4 written whole, then a row cut inside its last number: all fields present,
    // its step (5) not after the checkpoint's, but no newline, so it may be wrong.
    write_text(path, std::string(kMetricsColumns) + "\n" +
                         "0.4000,2,train,1.2,50.000,100.000,0.05,0.10\n"
                         "0.8000,4,train,1.1,50.000,100.000,0.05,0.20\n"
                         "1.0000,5,val,1.000000,50.000,100.000,0.05,0.3");
    {
        MetricsCsv csv(path, 5);
        csv.append(MetricsRow{1.0, 5, "val", 0.5, 75, 100, 0.05, 0.35, {}});
        csv.sync();
    }
    CHECK(read_text(path) == std::string(kMetricsColumns) + "\n" +
                                 "0.4000,2,train,1.2,50.000,100.000,0.05,0.10\n"
                                 "0.8000,4,train,1.1,50.000,100.000,0.05,0.20\n"
                                 "1.0000,5,val,0.500000,75.000,100.000,0.05,0.35\n");
    CHECK(read_metrics_csv(path).size() == 3);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

    // A run killed and not resumed can still be read (plotted): the torn row is left out, but
    // only a last line without its newline, and only if it does not read as a row.
    const std::string header = std::string(kMetricsColumns) + "\n";
    const std::string row = "0.4000,2,train,1.2,50.000,100.000,0.05,0.10\n";
    auto rows_of = [](const std::string& text) {
        std::stringstream in(text);
        return parse_metrics_table(in, "run/metrics.csv", EmptyCells::refused).rows();
    };
    CHECK(rows_of(header + row + "0.8000,4,tra") == 1);
    CHECK(rows_of(header + row + "0.8000,4,train,1.1,50.000,100.000,0.05,0.2") == 2);
    CHECK_THROWS_WITH_AS(rows_of(header + "0.8000,4,tra\n" + row),
                         Contains("run/metrics.csv:2: the row has 3 fields but the header names 8 columns"),
                         Error);
}

TEST_CASE("crash safety: stop requests part way through epochs and during an evaluation resume bit for bit") {
    // A pre-training stage (the optimizer is rebuilt when the main stage starts), a loss term,
    // an extra evaluation column, dropout, random crops and flips, gradient clipping and a train
    // row every 2 steps: every piece of state a stop must carry over.
    Config config = tiny_config({"model.spec=wrn_16_1:in_chans=1,num_classes=4,drop_rate=0.3",
                                 "optim.clip_grad_norm=5", "schedule.warmup_epochs=0.5"});
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);
    TempDir dir;

    // Stops during the given steps (1-based in the run), and during the validation of `stop_eval`
    // epochs; each fires once, whichever trainer is running then.
    std::set<std::int64_t> stop_steps = {3, 7, 12, 17};
    int val_evaluations = 0;
    const int stop_at_val = 2;  // the second validation: the end of epoch 2
    bool stopping = false;
    auto make_trainer = [&](std::shared_ptr<Model> model) {
        TrainerAddons addons;
        addons.pre_stage_epochs = 1;
        addons.term_names = {"ce"};
        addons.eval_columns = {"probe"};
        addons.evaluate = [&](const std::string& split, DataLoader&) {
            if (stopping && split == "val" && ++val_evaluations == stop_at_val) request_stop();
            return std::vector<double>{1.0};
        };
        auto trainer = std::make_unique<Trainer>(tc, model, data, addons);
        trainer->set_loss([&](Model& m, const Batch& b, const StepContext& ctx) {
            if (stopping && stop_steps.erase(ctx.step + 1)) request_stop();
            LossOutput out = classification_loss(m, b, 0);
            out.terms = {out.loss.item()};
            return out;
        });
        return trainer;
    };

    const ClearStopRequests clear_at_exit;
    {
        auto trainer = make_trainer(build_model(tc));
        trainer->start(dir / "straight", config);
        trainer->run();
        CHECK_FALSE(trainer->stopped());
        CHECK(trainer->progress().epoch == 4);
    }
    const std::uint64_t offset_after = default_generator().offset();

    stopping = true;
    std::vector<std::string> stops;
    {
        auto trainer = make_trainer(build_model(tc));
        trainer->start(dir / "stopped", config);
        trainer->run();
        REQUIRE(trainer->stopped());
    }
    for (int segment = 0; segment < 10; ++segment) {
        const Checkpoint c = read_checkpoint(dir / "stopped/last.safetensors");
        stops.push_back(cat(c.progress.epoch, ":", c.progress.partial.steps));
        clear_stop_request();
        randn({100});  // the generator moves on, as in a new process; resume must put it back
        auto trainer = make_trainer(build_model(tc));
        trainer->resume(dir / "stopped");
        trainer->run();
        if (!trainer->stopped()) break;
    }
    // After step 3 of epoch 1 (the pre-training stage); after step 7 of the run, step 2 of the
    // main stage's first epoch (its fresh optimizer is in the checkpoint: no second reset); at
    // the end of epoch 2 (the evaluation's stop); after steps 12 and 17: step 2 of epochs 3, 4.
    CHECK(stops == std::vector<std::string>{"0:3", "1:2", "2:0", "2:2", "3:2"});
    CHECK(stop_steps.empty());
    CHECK(default_generator().offset() == offset_after);
    check_same_run(dir / "straight", dir / "stopped");
}

TEST_CASE("crash safety: a run saves its starting point and every run.checkpoint_every steps, and resumes from either exactly") {
    // Resuming only ever happens in a new process, after a kill: here a fresh trainer resumes
    // from whatever last.safetensors holds, as `retort train --resume` would.
    Config config = tiny_config({"run.epochs=2", "data.workers=0", "run.checkpoint_every=2",
                                 "run.log_every=1"});
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);
    TempDir dir;
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.start(dir / "straight", config);
        trainer.run();
    }
    // A trainer that only starts: its checkpoint is the starting point, and resuming from it is
    // the whole run.
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.start(dir / "started", config);
        const Checkpoint c = read_checkpoint(dir / "started/last.safetensors");
        CHECK(c.progress.step == 0);
        CHECK(c.progress.epoch == 0);
        CHECK(describe_position(c.progress) == "at the start of the run (step 0)");
    }
    randn({10});  // as in a new process: resume must put the generator back
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.resume(dir / "started");
        trainer.run();
    }
    check_same_run(dir / "straight", dir / "started");

    // Steps 1..5 of an epoch of 5: checkpoints after steps 2 and 4 inside the epoch (and at its
    // end). A run cut short after step 3 (run(1) is not it: an exception from the loss is) leaves
    // the checkpoint of step 2, which resumes to the same end.
    struct Cut {};
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.set_loss([](Model& m, const Batch& b, const StepContext& ctx) {
            if (ctx.step == 8) throw Cut{};  // step 9 of the run: step 4 of epoch 2
            return classification_loss(m, b, 0);
        });
        trainer.start(dir / "cut", config);
        CHECK_THROWS_AS(trainer.run(), Cut);
    }
    const Checkpoint c = read_checkpoint(dir / "cut/last.safetensors");
    CHECK(c.progress.epoch == 1);
    CHECK(c.progress.partial.steps == 2);
    CHECK(c.progress.step == 7);
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.resume(dir / "cut");
        trainer.run();
    }
    check_same_run(dir / "straight", dir / "cut");
}

TEST_CASE("crash safety: a checkpoint stopped part way is checked against the run that resumes it") {
    Config config = tiny_config({"run.epochs=2", "data.workers=0"});
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);
    TempDir dir;
    const ClearStopRequests clear_at_exit;
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.set_loss([](Model& m, const Batch& b, const StepContext& ctx) {
            if (ctx.step == 6) request_stop();  // during step 7: the checkpoint is after it
            return classification_loss(m, b, 0);
        });
        trainer.start(dir / "run", config);
        trainer.run();
        REQUIRE(trainer.stopped());
    }
    clear_stop_request();
    const std::string ckpt = dir / "run/last.safetensors";
    const Checkpoint c = read_checkpoint(ckpt);
    CHECK(c.progress.epoch == 1);
    CHECK(c.progress.step == 7);
    CHECK(c.progress.partial.steps == 2);
    CHECK(c.progress.partial.trained == 2);
    CHECK(c.progress.partial.window_steps == 1);  // step 6 wrote a row, step 7 is pending

    // Epochs of 2 steps (another max_steps_per_epoch) cannot continue after step 2.
    const TrainConfig shorter = read_train_config(tiny_config({"run.epochs=2", "run.max_steps_per_epoch=2"}));
    Trainer other(shorter, build_model(shorter), data);
    CHECK_THROWS_WITH_AS(other.resume(dir / "run"),
                         Contains("stopped after step 2 of epoch 2, but an epoch of this run has 2 "
                                  "steps (did the data change?)"),
                         Error);
    // A run whose loss has terms cannot continue a window that summed none.
    TrainerAddons with_terms;
    with_terms.term_names = {"ce"};
    Trainer distilling(tc, build_model(tc), data, with_terms);
    CHECK_THROWS_WITH_AS(distilling.resume(dir / "run"),
                         Contains("holds 0 loss-term sums for its unfinished epoch, but this run's "
                                  "loss has 1 terms"),
                         Error);

    // Damaged copies of the checkpoint.
    auto damaged = [&](const std::string& name, auto change) {
        SafetensorsContents contents = read_safetensors(ckpt);
        change(contents.tensors);
        const std::string path = dir / name;
        save_safetensors(path, contents.tensors, contents.metadata);
        return path;
    };
    auto int64_value = [](std::int64_t v) {
        Tensor t = Tensor::empty({}, DType::i64);
        *t.data<std::int64_t>() = v;
        return t;
    };
    const std::string no_loss = damaged("noloss.safetensors", [](auto& t) { t.erase("partial.loss"); });
    CHECK_THROWS_WITH_AS(read_checkpoint(no_loss), Contains("has no 'partial.loss'"), Error);
    const std::string overtrained = damaged("over.safetensors", [&](auto& t) { t["partial.trained"] = int64_value(3); });
    CHECK_THROWS_WITH_AS(read_checkpoint(overtrained),
                         Contains("has an inconsistent partial epoch (2 steps taken, 3 trained"), Error);
    const std::string too_many = damaged("many.safetensors", [&](auto& t) {
        t["partial.steps"] = int64_value(9);
        t["partial.trained"] = int64_value(9);
    });
    CHECK_THROWS_WITH_AS(read_checkpoint(too_many), Contains("has 9 steps in its last epoch but 7 in all"), Error);
    const std::string bad_terms = damaged("terms.safetensors", [](auto& t) { t["partial.window_terms"] = zeros({2, 2}); });
    CHECK_THROWS_WITH_AS(read_checkpoint(bad_terms),
                         Contains("'partial.window_terms' must be a float64 vector, got float32 (2, 2)"), Error);
    const std::string skipped = damaged("skipped.safetensors", [&](auto& t) { t["progress.skipped"] = int64_value(8); });
    CHECK_THROWS_WITH_AS(read_checkpoint(skipped), Contains("has inconsistent progress (epoch 1, step 7, best epoch 1, skipped 8)"), Error);
    // A checkpoint written before the skip counts and partial epochs existed reads as it was.
    const std::string older = damaged("older.safetensors", [](auto& t) {
        for (auto it = t.begin(); it != t.end();)
            it = it->first.starts_with("partial.") || it->first.starts_with("progress.skipped") ||
                         it->first == "progress.consecutive_skipped"
                     ? t.erase(it)
                     : std::next(it);
    });
    const Checkpoint old = read_checkpoint(older);
    CHECK(old.progress.partial.steps == 0);
    CHECK(old.progress.skipped == 0);
}

TEST_CASE("nonfinite: a NaN or infinite loss stops the run at its step, naming the value and the last good checkpoint") {
    Config config = tiny_config({"data.workers=0"});
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);
    TempDir dir;

    // In the first epoch: the checkpoint of the starting point.
    Trainer early(tc, build_model(tc), data);
    early.set_loss(poisoned_loss({1}));
    early.start(dir / "early", config);
    CHECK_THROWS_WITH_AS(early.run(),
                         contains("the training loss is nan at epoch 1, step 2 of 5 (step 2 of the "
                                  "run); the run stops here (run.on_nonfinite = stop); the last good "
                                  "checkpoint is " + (dir / "early/last.safetensors") +
                                  " (at the start of the run (step 0))"),
                         Error);
    CHECK(read_checkpoint(dir / "early/last.safetensors").progress.step == 0);

    // In the second: the checkpoint of epoch 1 is the one to go back to, and it is untouched.
    Trainer later(tc, build_model(tc), data);
    later.set_loss(poisoned_loss({7}, std::numeric_limits<double>::infinity()));
    later.start(dir / "later", config);
    CHECK_THROWS_WITH_AS(later.run(),
                         contains("the training loss is inf at epoch 2, step 3 of 5 (step 8 of the run); "
                                  "the run stops here (run.on_nonfinite = stop); the last good checkpoint "
                                  "is " + (dir / "later/last.safetensors") + " (after epoch 1 (step 5))"),
                         Error);
    CHECK(read_checkpoint(dir / "later/last.safetensors").progress.step == 5);

    // A finite loss whose gradient is not: caught by the norm that clipping computes.
    const TrainConfig clipped = read_train_config(tiny_config({"data.workers=0", "optim.clip_grad_norm=1"}));
    Trainer grad(clipped, build_model(clipped), data);
    grad.set_loss([](Model& m, const Batch& b, const StepContext& ctx) {
        LossOutput out = classification_loss(m, b, 0);
        // sqrt at 0 is finite, its derivative is not: the loss is unchanged, the gradient NaN
        if (ctx.step == 2) out.loss = out.loss + sqrt(sum(m.parameters()[0]) * 0.0);
        return out;
    });
    grad.start(dir / "grad", config);
    std::string message;
    try {
        grad.run();
    } catch (const Error& e) {
        message = e.what();
    }
    CAPTURE(message);
    CHECK(message.starts_with("the gradient norm is nan (loss "));
    CHECK(message.find(") at epoch 1, step 3 of 5 (step 3 of the run); the run stops here") !=
          std::string::npos);
}

TEST_CASE("nonfinite: run.on_nonfinite = skip leaves no trace of the step, counts it, and stops after too many in a row") {
    Config config = tiny_config({"data.workers=0", "run.on_nonfinite=skip", "run.max_skipped_steps=3"});
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);
    TempDir dir;

    // Steps 3 and 8 of the run are NaN. The state seen by step 4 must be the one step 3 saw.
    std::map<std::string, Tensor> before_skip;
    bool unchanged = false;
    Trainer trainer(tc, build_model(tc), data);
    trainer.set_loss([&](Model& m, const Batch& b, const StepContext& ctx) {
        if (ctx.step == 2)
            for (const auto& [name, t] : m.state_dict()) before_skip[name] = t.clone();
        if (ctx.step == 3) {
            unchanged = true;
            for (const auto& [name, t] : m.state_dict()) unchanged = unchanged && same_bits(t, before_skip.at(name));
        }
        LossOutput out = classification_loss(m, b, 0);
        if (ctx.step == 2 || ctx.step == 7) out.loss = out.loss * kNaN;
        return out;
    });
    std::FILE* console = std::tmpfile();
    REQUIRE(console != nullptr);
    trainer.set_console(console, false);
    trainer.start(dir / "run", config);
    trainer.run();
    CHECK(unchanged);  // weights, and BatchNorm's running statistics, as before the skipped steps
    CHECK(trainer.progress().skipped == 2);
    CHECK(trainer.progress().step == 15);
    CHECK(read_checkpoint(dir / "run/last.safetensors").progress.skipped == 2);

    std::rewind(console);
    std::string printed;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, console)) > 0;) printed.append(buffer, n);
    std::fclose(console);
    CHECK(printed.find("epoch 1: skipped 1 step with a non-finite loss or gradient norm (1 in the run so far)") !=
          std::string::npos);
    CHECK(printed.find("epoch 2: skipped 1 step with a non-finite loss or gradient norm (2 in the run so far)") !=
          std::string::npos);

    // metrics.csv: the skipped column, counted on train rows (a row every 2 steps and at the end
    // of an epoch), empty on evaluation rows; the rows' losses leave the NaNs out.
    const MetricsTable table = read_metrics_table(dir / "run/metrics.csv");
    REQUIRE(table.columns == std::vector<std::string>{"epoch", "step", "split", "loss", "top1", "top5",
                                                      "lr", "seconds", "skipped"});
    std::stringstream lines(read_text(dir / "run/metrics.csv"));
    std::string line;
    std::getline(lines, line);
    std::vector<std::string> skipped_cells;
    while (std::getline(lines, line)) skipped_cells.push_back(line.substr(line.rfind(',') + 1));
    REQUIRE(skipped_cells.size() == 15);  // 3 epochs: train rows at steps 2, 4, 5; val; test
    CHECK(skipped_cells[0] == "0");  // steps 1-2
    CHECK(skipped_cells[1] == "1");  // steps 3-4
    CHECK(skipped_cells[2] == "0");  // step 5
    CHECK(skipped_cells[3] == "");   // val
    CHECK(skipped_cells[4] == "");   // test
    CHECK(skipped_cells[6] == "1");  // steps 7-8
    for (std::size_t row = 0; row < table.rows(); ++row) CHECK(std::isfinite(table.numbers.at("loss")[row]));

    // Four in a row, with at most three allowed.
    Trainer endless(tc, build_model(tc), data);
    endless.set_loss(poisoned_loss({5, 6, 7, 8, 9}));
    endless.start(dir / "endless", config);
    CHECK_THROWS_WITH_AS(endless.run(),
                         Contains("the training loss is nan at epoch 2, step 4 of 5 (step 9 of the run): "
                                  "4 steps in a row were not finite (run.max_skipped_steps = 3); the run "
                                  "stops here; the last good checkpoint is "),
                         Error);
    CHECK(endless.progress().skipped == 4);
    // A train row whose steps were all skipped has no loss or accuracy: "nan", never "-nan".
    const std::string rows = read_text(dir / "endless/metrics.csv");
    CHECK(rows.find("\n1.2000,6,train,nan,nan,nan,") != std::string::npos);
    CHECK(rows.find("-nan") == std::string::npos);
}

TEST_CASE("nonfinite: retort train stops on a NaN with a non-zero status, and bad on_nonfinite keys are refused") {
    TempDir dir;
    write_text(dir / "tiny.cfg", kTinyConfig);
    const std::string out = dir / "run";
    CliRun first = run_retort("train --config " + (dir / "tiny.cfg") + " --out " + out + " --set run.epochs=1");
    REQUIRE_MESSAGE(first.status == 0, first.output);
    // Weights gone bad (as a too large step leaves them) give a NaN loss at the next step.
    const std::string ckpt = out + "/last.safetensors";
    SafetensorsContents contents = read_safetensors(ckpt);
    Tensor& weight = contents.tensors.at("model.fc.weight");
    weight = full(weight.shape(), kNaN);
    save_safetensors(ckpt, contents.tensors, contents.metadata);
    CliRun nan = run_retort("train --resume " + out + " --set run.epochs=2");
    CAPTURE(nan.output);
    CHECK(nan.status == 1);
    CHECK(nan.output.find("retort train: error: the training loss is nan at epoch 2, step 1 of 5 (step 6 "
                          "of the run); the run stops here (run.on_nonfinite = stop); the last good "
                          "checkpoint is " + ckpt + " (after epoch 1 (step 5))") != std::string::npos);

    auto read_train = [](const std::string& extra) {
        Config c = train_config_schema();
        c.parse(std::string(kTinyConfig) + extra, "tiny.cfg");
        return read_train_config(c);
    };
    CHECK(read_train("on_nonfinite = skip\n").run.skip_nonfinite);
    CHECK_FALSE(read_train("").run.skip_nonfinite);
    CHECK(read_train("").run.max_skipped_steps == 100);
    CHECK_THROWS_WITH_AS(read_train("on_nonfinite = ignore\n"),
                         Contains("run.on_nonfinite must be one of stop, skip; got 'ignore'"), Error);
    CHECK_THROWS_WITH_AS(read_train("max_skipped_steps = 0\n"),
                         Contains("run.max_skipped_steps must be in [1, 1000000000], got 0"), Error);
    CliRun refused = run_retort("train --resume " + out + " --set run.on_nonfinite=skip");
    CHECK(refused.output.find("run.on_nonfinite cannot change when resuming") != std::string::npos);
}

TEST_CASE("crash safety: retort train killed twice with SIGKILL resumes to the metrics and weights of an unbroken run") {
    TempDir dir;
    write_text(dir / "tiny.cfg", kTinyConfig);
    const std::string straight = dir / "straight", killed = dir / "killed";
    REQUIRE(wait_for(spawn_retort(watched_run_args(dir / "tiny.cfg", straight), dir / "straight.log")) == 0);

    // The first kill in epoch 2, at a fixed step; the second at a random step of epochs 3 and 4
    // of the resumed run. Whatever the moment, last.safetensors is a whole checkpoint.
    std::random_device entropy;
    const std::int64_t second = 21 + static_cast<std::int64_t>(entropy() % 18);
    INFO("second kill at step ", second);
    Child child = spawn_retort(watched_run_args(dir / "tiny.cfg", killed), dir / "killed.log");
    REQUIRE_MESSAGE(wait_for_step(child, killed, 13), read_text(child.log));
    ::kill(child.pid, SIGKILL);
    CHECK(wait_for(child) == 128 + SIGKILL);
    CHECK(read_checkpoint(killed + "/last.safetensors").progress.epoch == 1);

    child = spawn_retort({"train", "--resume", killed}, dir / "resumed.log");
    REQUIRE_MESSAGE(wait_for_step(child, killed, second), read_text(child.log));
    ::kill(child.pid, SIGKILL);
    CHECK(wait_for(child) == 128 + SIGKILL);
    const Checkpoint after = read_checkpoint(killed + "/last.safetensors");
    CHECK(after.progress.epoch >= 2);

    const Child last = spawn_retort({"train", "--resume", killed}, dir / "finished.log");
    REQUIRE_MESSAGE(wait_for(last) == 0, read_text(last.log));
    check_same_run(straight, killed);
}

TEST_CASE("crash safety: SIGINT stops retort train with status 130 and a checkpoint that resumes exactly, SIGTERM gives 143") {
    TempDir dir;
    write_text(dir / "tiny.cfg", kTinyConfig);
    const std::string straight = dir / "straight", stopped = dir / "stopped";
    REQUIRE(wait_for(spawn_retort(watched_run_args(dir / "tiny.cfg", straight), dir / "straight.log")) == 0);

    Child child = spawn_retort(watched_run_args(dir / "tiny.cfg", stopped), dir / "stopped.log");
    REQUIRE_MESSAGE(wait_for_step(child, stopped, 13), read_text(child.log));
    ::kill(child.pid, SIGINT);
    CHECK(wait_for(child) == 130);
    const std::string printed = read_text(child.log);
    CAPTURE(printed);
    CHECK(printed.find("retort: stopping after this step to save a checkpoint") != std::string::npos);
    CHECK(printed.find("interrupted (SIGINT): stopped after ") != std::string::npos);
    CHECK(printed.find("continue with: retort train --resume " + stopped) != std::string::npos);
    const Checkpoint c = read_checkpoint(stopped + "/last.safetensors");
    CHECK(c.progress.step >= 13);
    CHECK(c.progress.step < 40);

    const Child resumed = spawn_retort({"train", "--resume", stopped}, dir / "resumed.log");
    REQUIRE_MESSAGE(wait_for(resumed) == 0, read_text(resumed.log));
    check_same_run(straight, stopped);

    const std::string terminated = dir / "terminated";
    child = spawn_retort(watched_run_args(dir / "tiny.cfg", terminated), dir / "terminated.log");
    REQUIRE_MESSAGE(wait_for_step(child, terminated, 5), read_text(child.log));
    ::kill(child.pid, SIGTERM);
    CHECK(wait_for(child) == 143);
    CHECK(read_text(child.log).find("interrupted (SIGTERM)") != std::string::npos);
    CHECK(read_checkpoint(terminated + "/last.safetensors").progress.step >= 5);
}

TEST_CASE("crash safety: a second SIGINT ends retort at once, and the checkpoint on disk stays whole") {
    TempDir dir;
    write_text(dir / "tiny.cfg", kTinyConfig);
    const std::string run = dir / "run";
    Child child = spawn_retort(watched_run_args(dir / "tiny.cfg", run), dir / "run.log");
    REQUIRE_MESSAGE(wait_for_step(child, run, 13), read_text(child.log));
    // The second signal once the first is seen: the process may be saving its checkpoint.
    ::kill(child.pid, SIGINT);
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (read_text(child.log).find("stopping after this step") == std::string::npos &&
           std::chrono::steady_clock::now() < limit)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    ::kill(child.pid, SIGINT);
    CHECK(wait_for(child) == 130);
    // Either the stop's checkpoint or epoch 1's: whole, and the run continues from it.
    const Checkpoint c = read_checkpoint(run + "/last.safetensors");
    CHECK(c.progress.step >= 10);
    const Child resumed = spawn_retort({"train", "--resume", run}, dir / "resumed.log");
    CHECK_MESSAGE(wait_for(resumed) == 0, read_text(resumed.log));
    CHECK(read_checkpoint(run + "/last.safetensors").progress.epoch == 4);
}
