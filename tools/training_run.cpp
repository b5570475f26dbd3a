// tools/training_run.cpp: the run-directory and console side of `retort train` and
// `retort distill` (see training_run.h); what differs between them (the loss, the teacher) is
// built by each command.
#include "tools/training_run.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "engine/dist/communicator.h"

namespace retort::cli {

namespace {

namespace fs = std::filesystem;

volatile std::sig_atomic_t stop_signal = 0;  // the signal that asked for the stop

// Only async-signal-safe calls here: a lock-free atomic store, write(2), _exit(2).
extern "C" void on_stop_signal(int signal) {
    if (stop_requested()) ::_exit(128 + signal);  // the second one: at once
    stop_signal = signal;
    request_stop();
    static const char note[] =
        "\nretort: stopping after this step to save a checkpoint (again to quit at once)\n";
    const ssize_t ignored = ::write(STDERR_FILENO, note, sizeof note - 1);
    (void)ignored;
}

// SIGINT and SIGTERM ask the trainer to stop while it runs; the handlers that were there before
// come back afterwards, so the rest of the program stops on a signal as usual.
class StopSignals {
public:
    StopSignals() {
        struct sigaction action {};
        action.sa_handler = on_stop_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;  // a read in the data loader goes on rather than failing
        ::sigaction(SIGINT, &action, &previous_int_);
        ::sigaction(SIGTERM, &action, &previous_term_);
    }
    ~StopSignals() {
        ::sigaction(SIGINT, &previous_int_, nullptr);
        ::sigaction(SIGTERM, &previous_term_, nullptr);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

private:
    struct sigaction previous_int_ {}, previous_term_ {};
};

std::string describe_split(const std::shared_ptr<const Dataset>& d) {
    return d && d->size() > 0 ? std::to_string(d->size()) : "0";
}

RunRequest prepare_resume(const RunCommand& command, const Options& options,
                          const std::vector<std::string>& overrides) {
    const std::string dir = options.get("resume");
    const std::string& cmd = command.name;
    require(options.get("out").empty(), cmd, ": --out cannot be used with --resume (the run stays in ",
            dir, ")");
    require(fs::is_directory(dir), cmd, ": no run directory ", dir);
    const fs::path saved = fs::path(dir) / "config";
    require(fs::exists(saved), cmd, ": ", dir, " has no config file: it is not a run directory");
    require(fs::exists(fs::path(dir) / "last.safetensors"), cmd, ": ", dir,
            " has no last.safetensors: the run saved no checkpoint yet (it saves one when it "
            "starts)");
    RunRequest request{command.schema, dir, true, command.name, ""};
    request.config.load_file(saved.string());
    std::vector<std::string> resume_overrides = overrides;
    if (!options.get("data").empty()) resume_overrides.push_back("data.path=" + options.get("data"));
    if (!options.get("device").empty()) resume_overrides.push_back("run.device=" + options.get("device"));
    apply_resume_overrides(request.config, resume_overrides, command.resume_keys);
    request.config.set("run.dir", dir, "--resume");  // where the run lives now
    command.check(request.config);
    return request;
}

}  // namespace

int interrupted_exit_status() { return 128 + (stop_signal != 0 ? stop_signal : SIGINT); }

std::vector<OptionSpec> run_options(std::vector<OptionSpec> extra) {
    std::vector<OptionSpec> specs = {
        {"config", "", "config file ([section] and key = value lines; keys below)"},
        {"out", "", "run directory (default: run.dir, or runs/<model>-<timestamp>)"},
        {"data", "", "dataset directory: the same as --set data.path=DIR"},
        {"device", "", "cpu, cuda or cuda:N: the same as --set run.device=NAME"},
        {"resume", "", "continue the run in this directory from its last.safetensors"},
        {"ranks", "", "N: data parallel over N CPU ranks on this machine, started with mpirun"},
        {"gpus", "", "N: data parallel over N GPUs of this machine (one rank each, NCCL)"},
        {"dist-timeout", "", "S: seconds a rank waits for the others before the job stops (300)"}};
    for (OptionSpec& spec : extra) specs.push_back(std::move(spec));
    return specs;
}

void print_run_help(const Config& schema) {
    std::printf("  --set        section.key=value, overrides the config (repeatable)\n\n"
                "config keys:\n%s",
                schema.reference().c_str());
}

RunRequest prepare_run(const RunCommand& command, const Options& options,
                       const std::vector<std::string>& overrides) {
    const std::string config_path = options.get("config"), resume_dir = options.get("resume");
    require(config_path.empty() != resume_dir.empty(), command.name,
            ": give --config FILE to start a run, or --resume RUN_DIR to continue one (not both)");
    if (!resume_dir.empty()) return prepare_resume(command, options, overrides);

    RunRequest request{command.schema, "", false, command.name, ""};
    Config& config = request.config;
    config.load_file(config_path);
    if (!options.get("data").empty()) config.apply_override("data.path=" + options.get("data"));
    if (!options.get("device").empty()) config.apply_override("run.device=" + options.get("device"));
    for (const std::string& assignment : overrides) config.apply_override(assignment);
    const TrainConfig tc = command.check(config);  // every value checked before anything runs
    request.run_dir = options.get("out");
    if (request.run_dir.empty()) request.run_dir = tc.run.dir;
    if (request.run_dir.empty()) request.run_dir = default_run_dir(tc.model);
    check_new_run_dir(request.run_dir, command.name);
    config.set("run.dir", request.run_dir, "--out");  // the saved config says where the run lives
    return request;
}

void run_trainer(Trainer& trainer, const Model& model, const DatasetSplits& data,
                const TrainConfig& tc, const RunRequest& request, const std::string& extra_lines) {
    const std::string& run_dir = request.run_dir;
    const StopSignals signals;  // from here on, files are being written: stop at a step boundary
    if (request.resuming) {
        trainer.resume(run_dir);
        if (dist::world()->is_root())  // with several ranks, rank 0 writes the run directory
            request.config.save((fs::path(run_dir) / "config").string());  // records any --set run.epochs
    } else {
        trainer.start(run_dir, request.config);
    }
    std::printf("model %s: %lld parameters\n", tc.model.c_str(),
                static_cast<long long>(model.num_parameters()));
    std::printf("data: %s; train %s, val %s, test %s samples; %lld steps per epoch of %lld\n",
                data.train->describe().c_str(), describe_split(data.train).c_str(),
                describe_split(data.val).c_str(), describe_split(data.test).c_str(),
                static_cast<long long>(trainer.steps_per_epoch()),
                static_cast<long long>(tc.data.batch_size));
    if (!extra_lines.empty()) std::printf("%s\n", extra_lines.c_str());
    if (request.resuming)
        std::printf("resuming %s %s\n", run_dir.c_str(), describe_position(trainer.progress()).c_str());
    else
        std::printf("run directory: %s\n", run_dir.c_str());
    std::fflush(stdout);

    trainer.set_console(stdout, ::isatty(STDOUT_FILENO) == 1);
    const TrainProgress& p = trainer.run();
    if (trainer.stopped()) {
        const int signal = stop_signal != 0 ? stop_signal : SIGINT;
        const std::string resume = request.resume_dir.empty() ? run_dir : request.resume_dir;
        std::printf("interrupted (%s): stopped %s; the checkpoint %s/last.safetensors holds it\n"
                    "continue with: retort %s --resume %s\n",
                    signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "stop request",
                    describe_position(p).c_str(), run_dir.c_str(), request.command.c_str(), resume.c_str());
        std::fflush(stdout);
        throw RunInterrupted{interrupted_exit_status()};
    }
    std::printf("done: %lld epoch%s in %.1f s", static_cast<long long>(p.epoch),
                p.epoch == 1 ? "" : "s", p.seconds);
    if (p.best_top1 >= 0)
        std::printf("; best val top1 %.2f%% at epoch %lld", p.best_top1,
                    static_cast<long long>(p.best_epoch));
    if (trainer.last_test().count > 0)
        std::printf("; test top1 %.2f%% (last epoch)", trainer.last_test().top1);
    std::printf("\nwrote %s/{config,metrics.csv,best.safetensors,last.safetensors}\n", run_dir.c_str());
    std::fflush(stdout);
}

}  // namespace retort::cli
