// tools/training_run.h: what `retort train` and `retort distill` share: their options, the
// configuration of a new or a resumed run, and running the trainer with its console output.
//
//   retort CMD --config FILE [--data DIR] [--set section.key=value ...] [--out RUN_DIR]
//   retort CMD --resume RUN_DIR [--set run.epochs=N ...]
//
// A new run: the config file, then --data (as data.path), then the --set overrides, all checked
// before anything runs; the run directory is --out, else run.dir, else runs/<model>-<timestamp>,
// and must be new or empty. A resumed run reads RUN_DIR/config; --set may change only the keys
// the command allows (they do not change what is computed), and RUN_DIR must hold the
// last.safetensors of an earlier epoch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "distill/trainer.h"
#include "engine/io/config.h"
#include "tools/options.h"

namespace retort::cli {

struct RunCommand {
    std::string name;                      // "train", "distill"
    Config schema;                         // every key the command's config may hold
    std::vector<std::string> resume_keys;  // the keys --set may change on --resume
    // Reads and checks a whole configuration (an Error on any problem); returns its training part.
    std::function<TrainConfig(const Config&)> check;
};

struct RunRequest {
    Config config;        // resolved: the file (or the saved config) with the overrides
    std::string run_dir;
    bool resuming = false;
};

// The options of a run command: --config, --out, --data, --resume, then `extra`.
std::vector<OptionSpec> run_options(std::vector<OptionSpec> extra = {});
// The text --help prints after the option table: --set, then the schema's keys.
void print_run_help(const Config& schema);

// The configuration and run directory from the parsed options and the --set overrides.
RunRequest prepare_run(const RunCommand& command, const Options& options,
                       const std::vector<std::string>& overrides);

// Starts (or resumes) the run in request.run_dir, prints what runs where (the model, the data,
// `extra_lines`, the run directory or the resume point), trains to the end, and prints the
// result. The trainer then holds the outcome (progress(), last_test()).
void run_trainer(Trainer& trainer, const Model& model, const DatasetSplits& data,
                const TrainConfig& config, const RunRequest& request,
                const std::string& extra_lines = "");

}  // namespace retort::cli
