// tests/test_train.cpp: training runs: the config format and its errors, metrics.csv written and
// read back row by row (a file not as the writer leaves it refused with file and line), the loop on
// synthetic data (the loss falls, metrics.csv, best / last checkpoints), resuming bit for bit,
// refusal of bad configs and bad run directories before any work, and `retort train` /
// `retort eval` end to end.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "distill/trainer.h"
#include "engine/engine.h"
#include "tests/cli_run.h"
#include "models/registry.h"

using namespace retort;
namespace fs = std::filesystem;
using retort::testing::run_retort;
using retort::testing::TempDir;
using retort::testing::CliRun;

namespace {

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A tiny run: 12x12 one-channel images of 4 classes; 80 training, 16 validation, 32 test samples.
const char* kTinyConfig = R"(# a tiny run for tests
[model]
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
epochs = 2
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

// Everything a row holds except the wall time.
std::string without_seconds(const std::vector<MetricsRow>& rows) {
    std::string out;
    for (const MetricsRow& r : rows)
        out += cat(r.epoch, ",", r.step, ",", r.split, ",", r.loss, ",", r.top1, ",", r.top5, ",", r.lr, "\n");
    return out;
}

}  // namespace

TEST_CASE("train config: a file with comments, quotes and overrides resolves, and str() round-trips") {
    Config c = train_config_schema();
    c.parse("  # comment line\n[model]\n  spec =  resnet8:num_classes=4   # trailing comment\n"
            "[optim]\nname=adamw\nlr = 3e-4\nnesterov = no\n[ data ]\n"
            "train_transforms = \"random_crop:padding=4; flip\"\n\n[schedule]\nmilestones = 2, 5\n",
            "good.cfg");
    c.apply_override("run.epochs=7");
    c.apply_override("optim.lr = 0.01");
    const TrainConfig t = read_train_config(c);
    CHECK(t.model == "resnet8:num_classes=4");
    CHECK(t.optim.name == "adamw");
    CHECK(t.optim.lr == 0.01);
    CHECK_FALSE(t.optim.nesterov);
    CHECK(t.data.train_transforms == "random_crop:padding=4; flip");
    CHECK(t.schedule.milestones == std::vector<std::int64_t>{2, 5});
    CHECK(t.run.epochs == 7);
    CHECK(t.data.batch_size == 128);  // a default
    CHECK(t.data.path == "/usr/share/datasets/fashion-mnist");
    CHECK(c.is_set("optim.lr"));
    CHECK_FALSE(c.is_set("data.batch_size"));

    // str() lists every key; reading it back gives the same configuration.
    const std::string text = c.str();
    CHECK(text.find("batch_size = 128") != std::string::npos);
    CHECK(text.find("eval_transforms = \"\"") != std::string::npos);
    Config again = train_config_schema();
    again.parse(text, "resolved");
    CHECK(again.str() == text);
    CHECK(again.get_double("optim.lr") == 0.01);
    CHECK(train_config_schema().reference().find("batch_size (int, default 128, [1, 65536])") !=
          std::string::npos);
}

TEST_CASE("train config: every mistake is an error naming the file and line or the --set argument") {
    auto parse = [](const std::string& text) {
        Config c = train_config_schema();
        c.parse("[model]\nspec = resnet8\n" + text, "run.cfg");
        read_train_config(c);
    };
    auto set = [](const std::string& assignment) {
        Config c = train_config_schema();
        c.parse("[model]\nspec = resnet8\n", "run.cfg");
        c.apply_override(assignment);
        read_train_config(c);
    };
    using Case = std::pair<std::function<void()>, std::string>;
    const std::vector<Case> cases = {
        {[&] { parse("[optimizer]\nlr = 1\n"); }, "run.cfg:3: unknown section [optimizer]; valid sections: model, data, optim, schedule, run"},
        {[&] { parse("[optim]\nlrate = 1\n"); }, "run.cfg:4: unknown key 'lrate' in [optim]; valid keys: name, lr, momentum"},
        {[&] { parse("[optim]\nlr = 0.1\n\nlr = 0.2\n"); }, "run.cfg:6: optim.lr is given twice (first at line 4)"},
        {[&] { parse("[data]\nbatch_size = 1000000000\n"); }, "run.cfg:4: data.batch_size must be in [1, 65536], got 1000000000"},
        {[&] { parse("[data]\nbatch_size = 12.5\n"); }, "run.cfg:4: data.batch_size must be an integer, got '12.5'"},
        {[&] { parse("[data]\nbatch_size = 99999999999999999999999\n"); }, "data.batch_size must be in [1, 65536]"},
        {[&] { parse("[run]\nepochs = -1\n"); }, "run.cfg:4: run.epochs must be in [1, 100000], got -1"},
        {[&] { parse("[run]\nepochs = 0\n"); }, "run.epochs must be in [1, 100000], got 0"},
        {[&] { parse("[optim]\nlr = nan\n"); }, "run.cfg:4: optim.lr must be a finite number, got 'nan'"},
        {[&] { parse("[optim]\nlr = inf\n"); }, "optim.lr must be a finite number, got 'inf'"},
        {[&] { parse("[optim]\nlr = 0\n"); }, "run.cfg:4: optim.lr must be in (0, 100], got 0"},
        {[&] { parse("[optim]\nlr = -0.1\n"); }, "optim.lr must be in (0, 100], got -0.1"},
        {[&] { parse("[optim]\nlr = fast\n"); }, "optim.lr must be a finite number, got 'fast'"},
        {[&] { parse("[optim]\nweight_decay = -1\n"); }, "optim.weight_decay must be in [0, 10], got -1"},
        {[&] { parse("[optim]\nname = adam\n"); }, "run.cfg:4: optim.name must be one of sgd, adamw; got 'adam'"},
        {[&] { parse("[optim]\nnesterov = maybe\n"); }, "optim.nesterov must be true or false, got 'maybe'"},
        {[&] { parse("[schedule]\nmilestones = 60,30\n"); }, "run.cfg:4: schedule.milestones must be increasing whole epochs in [1, 100000]"},
        {[&] { parse("[schedule]\nmilestones = 30,99999999999\n"); }, "schedule.milestones must be increasing whole epochs in [1, 100000]"},
        {[&] { parse("[schedule]\nwarmup_epochs = 5\n"); }, "schedule.warmup_epochs (5) must be less than run.epochs (5)"},
        {[&] { parse("[optim]\nmomentum = 0\n"); }, "optim.nesterov = true needs optim.momentum > 0"},
        {[&] { parse("[data]\nformat = jpeg\n"); }, "data.format must be one of auto, idx, cifar10, cifar100, folder, synthetic; got 'jpeg'"},
        {[&] { parse("[run\nepochs = 1\n"); }, "run.cfg:3: a section header looks like [name], got '[run'"},
        {[&] { parse("[run]\nepochs\n"); }, "run.cfg:4: expected 'key = value' or '[section]', got 'epochs'"},
        {[&] { parse("[run]\n= 3\n"); }, "run.cfg:4: an assignment needs a key before '='"},
        {[] {
             Config c = train_config_schema();
             c.parse("epochs = 1\n", "run.cfg");
         }, "run.cfg:1: 'epochs' is outside any [section]"},
        {[] {
             Config c = train_config_schema();
             c.parse("[run]\nepochs = 1\n", "run.cfg");
             read_train_config(c);
         }, "model.spec is required: set it in the [model] section of the config (spec = ...) or with --set model.spec=..."},
        {[&] { set("optim.lr=nan"); }, "--set optim.lr=nan: optim.lr must be a finite number, got 'nan'"},
        {[&] { set("optim.lrr=1"); }, "--set optim.lrr=1: unknown key 'lrr' in [optim]; valid keys: name, lr,"},
        {[&] { set("epochs=1"); }, "--set epochs=1: 'epochs' is not of the form section.key"},
        {[&] { set("run.epochs"); }, "--set run.epochs: expected section.key=value"},
        {[&] { set("data.batch_size=0"); }, "--set data.batch_size=0: data.batch_size must be in [1, 65536], got 0"},
    };
    for (const auto& [f, message] : cases) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(f(), doctest::Contains(message.c_str()), Error);
    }
    Config c = train_config_schema();
    CHECK_THROWS_WITH_AS(c.load_file("/nonexistent/run.cfg"),
                         doctest::Contains("cannot open config file /nonexistent/run.cfg"), Error);
    CHECK_THROWS_WITH_AS(apply_resume_overrides(c, {"optim.lr=0.5"}),
                         doctest::Contains("--set optim.lr=0.5: optim.lr cannot change when resuming"), Error);
}

TEST_CASE("train: metrics.csv reads back row by row, and a file the writer did not leave is refused") {
    TempDir dir;
    {
        MetricsCsv csv(dir / "metrics.csv");
        csv.append({0.5, 3, "train", 2.25, 40, 90, 0.1, 1.5});
        csv.append({1, 6, "val", std::nan(""), 50, 100, 0.05, 3});  // a diverged loss reads back
    }
    const std::vector<MetricsRow> rows = read_metrics_csv(dir / "metrics.csv");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].epoch == 0.5);
    CHECK(rows[0].step == 3);
    CHECK(rows[0].split == "train");
    CHECK(rows[0].loss == 2.25);
    CHECK(rows[0].top5 == 90);
    CHECK(rows[1].split == "val");
    CHECK(std::isnan(rows[1].loss));
    CHECK(rows[1].lr == 0.05);
    CHECK(rows[1].seconds == 3);

    const std::string header = std::string(kMetricsColumns) + "\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"epoch,step,split,loss\n1,6,val,2\n",
         "bad.csv:1: the header must be exactly epoch,step,split,loss,top1,top5,lr,seconds, but it is "
         "epoch,step,split,loss"},
        {"1,6,val,2,50,100,0.1,3\n", "bad.csv:1: the first line must be a header naming the columns"},
        {"", "bad.csv: the file is empty"},
        {header + "1,6,val,,50,100,0.1,3\n", "bad.csv:2: column 'loss' is empty"},
        {header + "\n1,6,,2,50,100,0.1,3\n", "bad.csv:3: column 'split' is empty"},
        {header + "1,6,val,2,5O,100,0.1,3\n", "bad.csv:2: column 'top1' holds '5O', which is not a number"},
        {header + "1,6,val,2,50,100,0.1\n", "bad.csv:2: the row has 7 fields but the header names 8 columns"},
    };
    for (const auto& [text, message] : cases) {
        CAPTURE(text);
        write_file(dir / "bad.csv", text);
        CHECK_THROWS_WITH_AS(read_metrics_csv(dir / "bad.csv"), doctest::Contains(message.c_str()), Error);
    }
    CHECK_THROWS_WITH_AS(read_metrics_csv(dir / "none.csv"), doctest::Contains("cannot open metrics file"), Error);
}

TEST_CASE("train: a few epochs on synthetic data: the loss falls, metrics.csv, best and last load") {
    TempDir dir;
    Config config = tiny_config({"run.epochs=3", "data.workers=0"});
    const TrainConfig tc = read_train_config(config);
    std::shared_ptr<Model> model = build_model(tc);
    Trainer trainer(tc, model, open_data(tc));
    CHECK(trainer.steps_per_epoch() == 5);  // 80 samples in batches of 16
    trainer.start(dir / "run", config);
    const TrainProgress& p = trainer.run();
    CHECK(p.epoch == 3);
    CHECK(p.step == 15);
    CHECK(p.best_epoch >= 1);

    const std::string csv = read_text(dir / "run/metrics.csv");
    CHECK(csv.starts_with("epoch,step,split,loss,top1,top5,lr,seconds\n"));
    const std::vector<MetricsRow> rows = read_metrics_csv(dir / "run/metrics.csv");
    std::vector<MetricsRow> train, val, test;
    for (const MetricsRow& r : rows)
        (r.split == "train" ? train : r.split == "val" ? val : test).push_back(r);
    CHECK(train.size() == 9);  // steps 2 and 4 and the epoch's end (5), three epochs
    REQUIRE(val.size() == 3);
    REQUIRE(test.size() == 3);
    CHECK(train[0].epoch == doctest::Approx(0.4));
    CHECK(train[0].step == 2);
    CHECK(train[2].epoch == doctest::Approx(1.0));
    CHECK(val[2].epoch == 3);
    CHECK(val[2].step == 15);
    CHECK(train.back().loss < train.front().loss);  // it learns
    CHECK(train.back().lr < train.front().lr);      // the cosine decays
    for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].seconds >= rows[i - 1].seconds);
    for (const MetricsRow& r : val) CHECK((r.top1 >= 0 && r.top1 <= r.top5 && r.top5 == 100));

    // best.safetensors is the state dict of the best validation epoch; last is the checkpoint.
    const std::string config_text = read_text(dir / "run/config");
    CHECK(config_text.find("spec = resnet8:in_chans=1,num_classes=4") != std::string::npos);
    std::shared_ptr<Model> fresh = create_model(tc.model);
    fresh->load_state_dict(load_safetensors(dir / "run/best.safetensors"));
    Checkpoint last = read_checkpoint(dir / "run/last.safetensors");
    CHECK(last.progress.epoch == 3);
    CHECK(last.progress.step == 15);
    CHECK(last.progress.best_epoch == p.best_epoch);
    CHECK(last.model_spec == tc.model);
    fresh->load_state_dict(load_model_weights(dir / "run/last.safetensors"));
    for (const auto& [name, t] : model->state_dict())
        CHECK_MESSAGE(same_bits(t, last.model.at(name)), name);
    auto meta = read_safetensors(dir / "run/best.safetensors").metadata;
    CHECK(meta.at("epoch") == std::to_string(p.best_epoch));
    CHECK(meta.at("model") == tc.model);
}

TEST_CASE("train: a run stopped after epoch 1 and resumed ends with the same bits as a straight run") {
    // Dropout in the model, shuffling and random crops / flips in the loader: every random thing
    // a run draws must be covered by the checkpoint.
    const std::vector<std::string> overrides = {
        "model.spec=wrn_16_1:in_chans=1,num_classes=4,drop_rate=0.3", "schedule.warmup_epochs=0.5",
        "optim.clip_grad_norm=5", "optim.label_smoothing=0.1", "run.max_steps_per_epoch=4"};
    TempDir dir;
    Config config = tiny_config(overrides);
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);

    std::shared_ptr<Model> straight = build_model(tc);
    {
        Trainer trainer(tc, straight, data);
        trainer.start(dir / "straight", config);
        trainer.run();
    }
    const std::uint64_t offset_after = default_generator().offset();

    {
        std::shared_ptr<Model> first = build_model(tc);
        Trainer trainer(tc, first, data);
        trainer.start(dir / "resumed", config);
        trainer.run(1);
        CHECK(trainer.progress().epoch == 1);
    }
    // A crash in epoch 2 left a row behind; the resumed run must drop it.
    {
        std::ofstream out(dir / "resumed/metrics.csv", std::ios::app);
        out << "1.5000,6,train,9.9,0,0,0.05,1.00\n1.7500,7,tr";
    }
    std::shared_ptr<Model> resumed = build_model(tc);
    randn({1000});  // the generator moves on, as in a new process; resume must put it back
    Trainer trainer(tc, resumed, data);
    trainer.resume(dir / "resumed");
    CHECK(trainer.progress().epoch == 1);
    trainer.run();
    CHECK(default_generator().offset() == offset_after);

    const NamedTensors a = straight->state_dict(), b = resumed->state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(same_bits(a[i].second, b[i].second), a[i].first);
    const Checkpoint ca = read_checkpoint(dir / "straight/last.safetensors");
    const Checkpoint cb = read_checkpoint(dir / "resumed/last.safetensors");
    for (const auto& [name, t] : ca.optimizer) CHECK_MESSAGE(same_bits(t, cb.optimizer.at(name)), name);
    CHECK(ca.progress.best_epoch == cb.progress.best_epoch);
    CHECK(without_seconds(read_metrics_csv(dir / "straight/metrics.csv")) ==
          without_seconds(read_metrics_csv(dir / "resumed/metrics.csv")));
    CHECK(read_text(dir / "straight/best.safetensors") == read_text(dir / "resumed/best.safetensors"));
}

TEST_CASE("train: absurd configs, bad specs and bad data are refused before a run directory exists") {
    TempDir dir;
    const std::string out = dir / "run";
    auto train_with = [&](const std::string& extra, const std::string& set = "") {
        write_file(dir / "bad.cfg", std::string(kTinyConfig) + extra);
        return run_retort("train --config " + (dir / "bad.cfg") + " --out " + out + " " + set);
    };
    // The tiny config with one line changed.
    auto train_edited = [&](const std::string& from, const std::string& to) {
        std::string text = kTinyConfig;
        REQUIRE(text.find(from) != std::string::npos);
        text.replace(text.find(from), from.size(), to);
        write_file(dir / "bad.cfg", text);
        return run_retort("train --config " + (dir / "bad.cfg") + " --out " + out);
    };
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {train_edited("batch_size = 16", "batch_size = 1000000000"), "bad.cfg:8: data.batch_size must be in [1, 65536], got 1000000000"},
        {train_with("", "--set run.epochs=-1"), "--set run.epochs=-1: run.epochs must be in [1, 100000], got -1"},
        {train_edited("lr = 0.05", "lr = nan"), "bad.cfg:13: optim.lr must be a finite number, got 'nan'"},
        {train_with("[run]\nepochz = 3\n"), "unknown key 'epochz' in [run]; valid keys: epochs, seed, dir"},
        {train_with("", "--set model.spec=resnet9"), "unknown model 'resnet9'"},
        {train_with("", "--set model.spec=resnet8:in_chans=3,num_classes=4"), "input has 1 channels, the model expects 3"},
        {train_with("", "--set model.spec=resnet8:in_chans=1,num_classes=10"), "has 10 outputs, but"},
        {train_with("", "--set data.path=/nonexistent/data --set data.format=idx"), "/nonexistent/data"},
        {train_with("", "--set data.train_transforms=sharpen"), "sharpen"},
        {run_retort("train --config " + (dir / "missing.cfg")), "cannot open config file"},
        {run_retort("train"), "give --config FILE to start a run, or --resume RUN_DIR"},
        {run_retort("train --config a --resume b"), "(not both)"},
    };
    retort::testing::check_refused(cases, out);
    // An existing, non-empty directory is never overwritten.
    fs::create_directories(out);
    write_file(out + "/notes.txt", "keep me");
    CliRun r = train_with("");
    CHECK(r.status != 0);
    CHECK(r.output.find("already exists and is not empty; continue it with `retort train --resume") != std::string::npos);
    CHECK(read_text(out + "/notes.txt") == "keep me");
    CHECK_FALSE(fs::exists(out + "/config"));
}

TEST_CASE("train: --resume of a missing, incomplete, corrupt or finished run is a clear error") {
    TempDir dir;
    fs::create_directories(dir / "empty");
    fs::create_directories(dir / "nockpt");
    write_file(dir / "nockpt/config", tiny_config().str());
    fs::create_directories(dir / "corrupt");
    write_file(dir / "corrupt/config", tiny_config().str());
    write_file(dir / "corrupt/last.safetensors", "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": garbage");
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {run_retort("train --resume " + (dir / "missing")), "no run directory " + (dir / "missing")},
        {run_retort("train --resume " + (dir / "empty")), "has no config file: it is not a run directory"},
        {run_retort("train --resume " + (dir / "nockpt")), "has no last.safetensors: the run saved no checkpoint yet"},
        {run_retort("train --resume " + (dir / "corrupt")), "is unreadable (corrupt or truncated?)"},
        {run_retort("train --resume " + (dir / "nockpt") + " --out x"), "--out cannot be used with --resume"},
    };
    for (const auto& [r, expected] : cases) {
        CAPTURE(r.output);
        CHECK(r.status != 0);
        CHECK(r.output.find(expected) != std::string::npos);
    }

    // A real checkpoint, then damaged copies of it.
    Config config = tiny_config({"run.epochs=1", "data.workers=0"});
    const TrainConfig tc = read_train_config(config);
    DatasetSplits data = open_data(tc);
    {
        Trainer trainer(tc, build_model(tc), data);
        trainer.start(dir / "run", config);
        trainer.run();
    }
    const std::string ckpt = dir / "run/last.safetensors";
    Trainer trainer(tc, build_model(tc), data);
    CHECK_THROWS_WITH_AS(trainer.resume(dir / "run"),
                         doctest::Contains("has already done 1 of its 1 epochs; to train longer, resume with --set run.epochs=N"),
                         Error);
    CliRun finished = run_retort("train --resume " + (dir / "run") + " --set optim.lr=1");
    CHECK(finished.output.find("optim.lr cannot change when resuming") != std::string::npos);

    const std::string bytes = read_text(ckpt);
    write_file(dir / "truncated.safetensors", bytes.substr(0, bytes.size() - 100));
    CHECK_THROWS_WITH_AS(read_checkpoint(dir / "truncated.safetensors"),
                         doctest::Contains("is unreadable (corrupt or truncated?)"), Error);
    CHECK_THROWS_WITH_AS(read_checkpoint(dir / "run/best.safetensors"),
                         doctest::Contains("is not a retort training checkpoint"), Error);
    CHECK_THROWS_WITH_AS(read_checkpoint(dir / "none.safetensors"),
                         doctest::Contains("no checkpoint at"), Error);
    auto contents = read_safetensors(ckpt);
    contents.tensors.erase("progress.step");
    save_safetensors(dir / "nostep.safetensors", contents.tensors, contents.metadata);
    CHECK_THROWS_WITH_AS(read_checkpoint(dir / "nostep.safetensors"),
                         doctest::Contains("has no 'progress.step'"), Error);

    Checkpoint c = read_checkpoint(ckpt);
    std::shared_ptr<Model> other = create_model("resnet14:in_chans=1,num_classes=4");
    CHECK_THROWS_WITH_AS(restore_checkpoint(c, ckpt, *other, trainer.optimizer(), "resnet14:in_chans=1,num_classes=4"),
                         doctest::Contains("was saved for model 'resnet8:in_chans=1,num_classes=4'"), Error);
    c.model.begin()->second = zeros({3});
    CHECK_THROWS_WITH_AS(restore_checkpoint(c, ckpt, trainer.model(), trainer.optimizer(), tc.model),
                         doctest::Contains("model tensor '"), Error);
}

TEST_CASE("cli: retort train on synthetic data, then retort eval on its best checkpoint") {
    TempDir dir;
    write_file(dir / "tiny.cfg", kTinyConfig);
    const std::string out = dir / "run";
    CliRun r = run_retort("train --config " + (dir / "tiny.cfg") + " --out " + out + " --set run.seed=3");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("run directory: " + out) != std::string::npos);
    CHECK(r.output.find("epoch 1/2  step 2/5") != std::string::npos);  // plain lines: not a terminal
    CHECK(r.output.find("epoch 2/2: train loss ") != std::string::npos);
    CHECK(r.output.find("img/s") != std::string::npos);
    CHECK(r.output.find("done: 2 epochs") != std::string::npos);
    for (const char* f : {"config", "metrics.csv", "best.safetensors", "last.safetensors"})
        CHECK_MESSAGE(fs::exists(out + "/" + f), f);
    CHECK(read_text(out + "/config").find("seed = 3") != std::string::npos);

    // eval on the validation split reproduces the val top-1 of the best epoch.
    const auto best = read_safetensors(out + "/best.safetensors").metadata;
    const std::string data = "synthetic:num_classes=4,size=96,test_size=32,channels=1,height=12,width=12";
    CliRun e = run_retort("eval --model resnet8:in_chans=1,num_classes=4 --weights " + out +
                       "/best.safetensors --data " + data + " --split val --val-size 16 --seed 3");
    REQUIRE_MESSAGE(e.status == 0, e.output);
    char expected[64];
    std::snprintf(expected, sizeof expected, "16 images, loss ");
    CHECK(e.output.find(expected) != std::string::npos);
    std::snprintf(expected, sizeof expected, "top1 %.2f%%", std::stod(best.at("val_top1")));
    CHECK_MESSAGE(e.output.find(expected) != std::string::npos, e.output, " expected ", expected);
    CliRun t = run_retort("eval --model resnet8:in_chans=1,num_classes=4 --weights " + out +
                       "/last.safetensors --data " + data);
    REQUIRE_MESSAGE(t.status == 0, t.output);
    CHECK(t.output.find("test split") != std::string::npos);
    CHECK(t.output.find("32 images") != std::string::npos);

    // Resuming a finished run with more epochs continues it.
    CliRun more = run_retort("train --resume " + out + " --set run.epochs=3");
    REQUIRE_MESSAGE(more.status == 0, more.output);
    CHECK(more.output.find("resuming " + out + " after epoch 2") != std::string::npos);
    CHECK(more.output.find("epoch 3/3: train loss") != std::string::npos);
    CHECK(read_text(out + "/config").find("epochs = 3") != std::string::npos);

    const std::vector<std::pair<CliRun, std::string>> bad = {
        {run_retort("eval --model resnet8:in_chans=1,num_classes=4 --weights " + out + "/best.safetensors"), "--data is required"},
        {run_retort("eval --model resnet8:in_chans=1,num_classes=4 --weights " + out + "/best.safetensors --data " + data + " --split dev"), "--split must be test, val or train"},
        {run_retort("eval --model resnet8:in_chans=1,num_classes=5 --weights " + out + "/best.safetensors --data " + data), "load_state_dict"},
        {run_retort("eval --model resnet8:in_chans=1,num_classes=4 --weights " + (dir / "nope.safetensors") + " --data " + data), "no weights file at"},
        {run_retort("eval --model resnet8:in_chans=1,num_classes=4 --weights " + out + "/best.safetensors --data " + data + " --split val --val-size 0"), "the val split"},
    };
    for (const auto& [run, expected] : bad) {
        CAPTURE(run.output);
        CHECK(run.status != 0);
        CHECK(run.output.find(expected) != std::string::npos);
    }
}

TEST_CASE("the progress line's time left counts only the steps this process timed") {
    ProgressPrinter printer(nullptr, false, 50);
    // A fresh epoch of 400 steps: 100 steps in 50 s leave 300 steps, 150 s.
    printer.begin_epoch(3, 10, 400);
    std::string text = printer.line(100, 0.5, 1e-3, 12800, 50.0);
    CHECK(text.find("epoch 3/10  step 100/400") != std::string::npos);
    CHECK(text.find("256 img/s") != std::string::npos);
    CHECK(text.find("ETA 2:30") != std::string::npos);
    // Resumed after step 300: the 20 steps since took 10 s, so the 80 left take 40 s (counting
    // all 320 steps into those 10 s would say 2.5 s).
    printer.begin_epoch(3, 10, 400, 300);
    text = printer.line(320, 0.5, 1e-3, 2560, 10.0);
    CHECK(text.find("ETA 0:40") != std::string::npos);
    // Before the first timed step there is nothing to estimate from.
    CHECK(printer.line(300, 0.5, 1e-3, 0, 0.0).find("ETA 0:00") != std::string::npos);
}
