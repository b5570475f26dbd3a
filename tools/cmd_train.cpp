// tools/cmd_train.cpp: `retort train`: trains a model from a config file and writes a run
// directory (config, metrics.csv, best.safetensors, last.safetensors), or continues one.
//
//   retort train --config FILE [--data DIR] [--set section.key=value ...] [--out RUN_DIR]
//   retort train --resume RUN_DIR [--set run.epochs=N ...]
//
// Everything is checked before the first step and before any file is written: the config (types,
// ranges, unknown keys), the model spec, the dataset, a trial batch through the model, and the
// run directory (it must be new or empty: an existing run is never overwritten; continue it with
// --resume). A resumed run reads RUN_DIR/config and RUN_DIR/last.safetensors and continues at the
// next epoch exactly as if it had not stopped; --set may then change only the keys that do not
// alter the computation, and run.epochs (see distill/train_config.h).
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "distill/trainer.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

namespace {

namespace fs = std::filesystem;

// Takes every "--set X" / "--set=X" out of args (Options keeps one value per name).
std::vector<std::string> take_overrides(std::vector<std::string>& args) {
    std::vector<std::string> overrides, rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--set") {
            require(i + 1 < args.size(), "option --set needs a value (section.key=value)");
            overrides.push_back(args[++i]);
        } else if (args[i].starts_with("--set=")) {
            overrides.push_back(args[i].substr(6));
        } else {
            rest.push_back(args[i]);
        }
    }
    args = rest;
    return overrides;
}

std::string describe_split(const std::shared_ptr<const Dataset>& d) {
    return d && d->size() > 0 ? std::to_string(d->size()) : "0";
}

int train(Config& config, const std::string& run_dir, bool resuming) {
    const TrainConfig tc = read_train_config(config);
    std::shared_ptr<Model> model = build_model(tc);
    DatasetSplits data = open_data(tc);
    Trainer trainer(tc, model, data);
    if (resuming) {
        trainer.resume(run_dir);
        config.save((fs::path(run_dir) / "config").string());  // records any --set run.epochs
    } else {
        trainer.start(run_dir, config);
    }
    std::printf("model %s: %lld parameters\n", tc.model.c_str(),
                static_cast<long long>(model->num_parameters()));
    std::printf("data: %s; train %s, val %s, test %s samples; %lld steps per epoch of %lld\n",
                data.train->describe().c_str(), describe_split(data.train).c_str(),
                describe_split(data.val).c_str(), describe_split(data.test).c_str(),
                static_cast<long long>(trainer.steps_per_epoch()),
                static_cast<long long>(tc.data.batch_size));
    if (resuming)
        std::printf("resuming %s after epoch %lld (step %lld)\n", run_dir.c_str(),
                    static_cast<long long>(trainer.progress().epoch),
                    static_cast<long long>(trainer.progress().step));
    else
        std::printf("run directory: %s\n", run_dir.c_str());
    std::fflush(stdout);

    trainer.set_console(stdout, ::isatty(STDOUT_FILENO) == 1);
    const TrainProgress& p = trainer.run();
    std::printf("done: %lld epoch%s in %.1f s", static_cast<long long>(p.epoch),
                p.epoch == 1 ? "" : "s", p.seconds);
    if (p.best_top1 >= 0)
        std::printf("; best val top1 %.2f%% at epoch %lld", p.best_top1,
                    static_cast<long long>(p.best_epoch));
    if (trainer.last_test().count > 0)
        std::printf("; test top1 %.2f%% (last epoch)", trainer.last_test().top1);
    std::printf("\nwrote %s/{config,metrics.csv,best.safetensors,last.safetensors}\n", run_dir.c_str());
    return 0;
}

}  // namespace

int run_train(const std::vector<std::string>& raw_args) {
    std::vector<std::string> args = raw_args;
    const std::vector<std::string> overrides = take_overrides(args);
    Options opts("train", args,
                 {{"config", "", "config file ([section] and key = value lines; keys below)"},
                  {"out", "", "run directory (default: run.dir, or runs/<model>-<timestamp>)"},
                  {"data", "", "dataset directory: the same as --set data.path=DIR"},
                  {"resume", "", "continue the run in this directory from its last.safetensors"}});
    if (opts.help_requested()) {
        std::printf("  --set        section.key=value, overrides the config (repeatable)\n\n"
                    "config keys:\n%s",
                    train_config_schema().reference().c_str());
        return 0;
    }
    const std::string config_path = opts.get("config"), resume_dir = opts.get("resume");
    require(config_path.empty() != resume_dir.empty(),
            "train: give --config FILE to start a run, or --resume RUN_DIR to continue one (not both)");

    Config config = train_config_schema();
    if (!resume_dir.empty()) {
        require(opts.get("out").empty(), "train: --out cannot be used with --resume (the run stays in ",
                resume_dir, ")");
        require(fs::is_directory(resume_dir), "train: no run directory ", resume_dir);
        const fs::path saved = fs::path(resume_dir) / "config";
        require(fs::exists(saved), "train: ", resume_dir, " has no config file: it is not a run directory");
        require(fs::exists(fs::path(resume_dir) / "last.safetensors"), "train: ", resume_dir,
                " has no last.safetensors: the run saved no checkpoint yet (it saves one at the end "
                "of every epoch)");
        config.load_file(saved.string());
        std::vector<std::string> resume_overrides = overrides;
        if (!opts.get("data").empty()) resume_overrides.push_back("data.path=" + opts.get("data"));
        apply_resume_overrides(config, resume_overrides);
        config.set("run.dir", resume_dir, "--resume");  // where the run lives now
        return train(config, resume_dir, true);
    }

    config.load_file(config_path);
    if (!opts.get("data").empty()) config.apply_override("data.path=" + opts.get("data"));
    for (const std::string& assignment : overrides) config.apply_override(assignment);
    const TrainConfig tc = read_train_config(config);  // every value checked before anything runs
    std::string run_dir = opts.get("out");
    if (run_dir.empty()) run_dir = tc.run.dir;
    if (run_dir.empty()) run_dir = default_run_dir(tc.model);
    check_new_run_dir(run_dir);
    config.set("run.dir", run_dir, "--out");  // the saved config says where the run lives
    return train(config, run_dir, false);
}

}  // namespace retort::cli
