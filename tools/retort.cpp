// tools/retort.cpp: the `retort` command: finds the subcommand and runs it. Each subcommand lives
// in its own file (tools/cmd_<name>.cpp) and registers itself in the table in tools/commands.h.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "distill/trainer.h"
#include "engine/dist/communicator.h"
#include "engine/error.h"
#include "tools/commands.h"
#include "tools/ranks.h"
#include "tools/training_run.h"

namespace {

void print_usage() {
    std::printf("retort: a deep-learning framework for knowledge distillation\n\n"
                "usage: retort <command> [options]\n\ncommands:\n");
    for (const retort::cli::Command& c : retort::cli::commands())
        std::printf("  %-10s %s\n", c.name, c.summary);
    std::printf("\nrun `retort <command> --help` for a command's options\n");
}

}  // namespace

// OpenMP reads how its idle threads wait once, when the program starts. libgomp's default lets
// them spin for a long while (about 300,000 rounds) before sleeping; on a machine whose cores are
// shared (a laptop with a browser open, CI, two runs at once) spinning threads take the cores
// from the ones doing the work, and a training step was measured 10x slower. Sleeping at once
// (OMP_WAIT_POLICY=PASSIVE) avoids that but pays a kernel wake-up at every parallel region: on
// an idle 2-core machine it cost 15-20% of a resnet18 training step and 20 points of GEMM
// efficiency at 512^3. So unless the user chose, retort restarts itself once with a short spin
// (GOMP_SPINCOUNT=30000: long enough to span the gap between two kernels of one step, short
// enough not to hold a shared core for long).
void ensure_short_openmp_spin(char** argv) {
#ifdef RETORT_HAVE_OPENMP
    if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr)
        return;
    setenv("GOMP_SPINCOUNT", "30000", 1);
    execv("/proc/self/exe", argv);  // returns only if the restart failed: carry on as we are
#else
    (void)argv;
#endif
}

int main(int argc, char** argv) {
    ensure_short_openmp_spin(argv);
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        print_usage();
        return args.empty() ? 1 : 0;
    }
    for (const retort::cli::Command& c : retort::cli::commands()) {
        if (args[0] != c.name) continue;
        namespace cli = retort::cli;
        namespace dist = retort::dist;
        try {
            std::vector<std::string> rest(args.begin() + 1, args.end());
            // bench: `bench model --train --ranks N` times data-parallel training steps
            const bool run_command = args[0] == "train" || args[0] == "distill" || args[0] == "bench";
            if (run_command) {  // data parallel: start the ranks, or join them (tools/ranks.h)
                const cli::RankOptions ranks = cli::take_rank_options(rest);
                if (ranks.ranks > 0) cli::launch_ranks(c.name, rest, ranks);
                retort::require(ranks.seed_groups == 0 || args[0] == "distill",
                                "--seed-groups is an option of retort distill --seeds");
                cli::set_seed_groups(ranks.seed_groups);
                cli::join_ranks_if_launched(ranks);
            }
            const int status = c.run(rest);
            dist::finalize();
            // A signal that came as the run finished anyway: the work is done, but the caller
            // asked to interrupt and learns that it arrived.
            return retort::stop_requested() ? cli::interrupted_exit_status() : status;
        } catch (const retort::cli::RunInterrupted& stop) {
            dist::finalize();
            return stop.exit_status;  // run_trainer said where it stopped and how to continue
        } catch (const retort::Error& e) {
            const auto world = dist::world();
            if (world->size() > 1) {  // end every rank now: none may wait for this one
                std::fprintf(stderr, "retort %s: error on rank %d of %d: %s\n", c.name, world->rank(),
                             world->size(), e.what());
                std::fflush(stderr);
                world->abort(1);
            }
            std::fprintf(stderr, "retort %s: error: %s\n", c.name, e.what());
            return 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "retort %s: unexpected error: %s\n", c.name, e.what());
            return 2;
        }
    }
    std::fprintf(stderr, "retort: unknown command '%s'\n\n", args[0].c_str());
    print_usage();
    return 1;
}
