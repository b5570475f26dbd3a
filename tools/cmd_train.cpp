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
// alter the computation, and run.epochs (see distill/train_config.h). The options, the run
// directory and the console output are shared with `retort distill` (tools/training_run.h).
#include <cstdio>

#include "distill/trainer.h"
#include "tools/commands.h"
#include "tools/options.h"
#include "tools/training_run.h"

namespace retort::cli {

int run_train(const std::vector<std::string>& raw_args) {
    std::vector<std::string> args = raw_args;
    const std::vector<std::string> overrides = take_overrides(args);
    Options opts("train", args, run_options());
    const RunCommand command{"train", train_config_schema(), resume_overridable_keys(),
                             read_train_config};
    if (opts.help_requested()) {
        print_run_help(command.schema);
        return 0;
    }
    RunRequest request = prepare_run(command, opts, overrides);
    const TrainConfig tc = read_train_config(request.config);
    std::shared_ptr<Model> model = build_model(tc);
    DatasetSplits data = open_data(tc);
    Trainer trainer(tc, model, data);
    run_trainer(trainer, *model, data, tc, request);
    return 0;
}

}  // namespace retort::cli
