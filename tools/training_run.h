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
//
// While the trainer runs, SIGINT (Ctrl-C) and SIGTERM ask it to stop at the next step boundary:
// it saves last.safetensors there (a mid-epoch checkpoint that resumes exactly, see
// distill/trainer.h), run_trainer prints where it stopped and how to continue, and the command
// exits with 128 + the signal (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the
// signal ended. A second signal ends the process at once: the checkpoint on disk is then the
// previous one, whole (every file is written atomically).
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
    std::string command = "train";  // for the resume hint after a stop
    std::string resume_dir;         // what --resume takes to continue (""; run_dir)
};

// Thrown by run_trainer when a signal stopped the run, after the checkpoint is saved and the
// resume hint printed; main() returns exit_status.
struct RunInterrupted {
    int exit_status;  // 128 + the signal
};
// 128 + the signal that asked for the stop (130 if the request came from elsewhere).
int interrupted_exit_status();

// The options of a run command: --config, --out, --data, --resume, then `extra`.
std::vector<OptionSpec> run_options(std::vector<OptionSpec> extra = {});
// The text --help prints after the option table: --set, then the schema's keys.
void print_run_help(const Config& schema);

// The configuration and run directory from the parsed options and the --set overrides.
RunRequest prepare_run(const RunCommand& command, const Options& options,
                       const std::vector<std::string>& overrides);

// Starts (or resumes) the run in request.run_dir, prints what runs where (the model, the data,
// `extra_lines`, the run directory or the resume point), trains to the end, and prints the
// result. The trainer then holds the outcome (progress(), last_test()). Throws RunInterrupted if
// a signal stopped it.
void run_trainer(Trainer& trainer, const Model& model, const DatasetSplits& data,
                const TrainConfig& config, const RunRequest& request,
                const std::string& extra_lines = "");

}  // namespace retort::cli
