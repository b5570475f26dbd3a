// tools/commands.h: the table of subcommands of the `retort` binary.
#pragma once

#include <string>
#include <vector>

namespace retort::cli {

struct Command {
    const char* name;
    const char* summary;
    int (*run)(const std::vector<std::string>& args);  // returns the exit code
};

// Every subcommand's entry point (one file each).
int run_demo(const std::vector<std::string>& args);
int run_version(const std::vector<std::string>& args);
int run_models(const std::vector<std::string>& args);
int run_summary(const std::vector<std::string>& args);
int run_infer(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_distill(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_plot(const std::vector<std::string>& args);
int run_objective(const std::vector<std::string>& args);

inline const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {"demo", "fit a small MLP by autodiff on generated data and print the falling loss", run_demo},
        {"models", "list every model with its keys, parameter count and taps", run_models},
        {"summary", "print a model's layers, tap shapes, parameters and forward FLOPs", run_summary},
        {"infer", "run a model on a safetensors input and write logits and taps", run_infer},
        {"train", "train a model from a config into a run directory, or resume one", run_train},
        {"distill", "train a student from a frozen teacher with weighted distillation objectives, or resume",
         run_distill},
        {"eval", "loss, top-1 and top-5 of a model's weights on a dataset split", run_eval},
        {"objective", "evaluate one distillation objective on tensors from a safetensors file, with gradients",
         run_objective},
        {"plot", "draw the loss and accuracy curves of training runs into a PNG", run_plot},
        {"bench", "measure speed: FMA peak, GEMM, a model's step, a KD step, the data loader", run_bench},
        {"version", "print the version and how this binary was built", run_version},
    };
    return table;
}

}  // namespace retort::cli
