// tools/ranks.h: running `retort train` / `retort distill` as several ranks (data parallel).
//
//   mpirun -np N retort distill --config FILE ...   MPI starts the ranks (any number of nodes)
//   retort distill --ranks N --config FILE ...      retort starts mpirun with N CPU ranks here
//   retort distill --gpus N --config FILE ...       the same with one GPU per rank (--device cuda)
//
// A process started by mpirun joins the job before its command runs (join_ranks_if_launched):
// MPI is initialized and becomes the process's communicator (dist::set_world), ranks above 0 send
// their console output to /dev/null (rank 0 prints and writes the run directory), each rank gets
// hardware threads / ranks-per-node CPU threads unless OMP_NUM_THREADS says otherwise, and each
// rank sees one GPU, the one of its rank on the node (CUDA_VISIBLE_DEVICES = the local rank, unless
// already set). An error on any rank is printed with its rank and ends the whole job (MPI_Abort),
// so no rank is left waiting; a rank that dies or hangs stops the others within the dist timeout
// (--dist-timeout S or RETORT_DIST_TIMEOUT, default 300 s).
#pragma once

#include <string>
#include <vector>

namespace retort::cli {

// What main() takes out of a run command's arguments before the command parses them.
struct RankOptions {
    int ranks = 0;             // --ranks N or --gpus N (0: not given)
    bool gpus = false;         // --gpus: one GPU per rank
    double timeout = 0;        // --dist-timeout S (0: not given)
    int seed_groups = 0;       // --seed-groups G (0: not given)
};
// Removes --ranks, --gpus, --dist-timeout and --seed-groups (as "--x N" or "--x=N") from `args`;
// an Error for a bad value.
RankOptions take_rank_options(std::vector<std::string>& args);

// Replaces this process with `mpirun ... retort COMMAND ARGS...` with `options.ranks` ranks on this
// node (mpirun's exit status is then the command's). Returns only by throwing: an Error when this
// build has no MPI, when --gpus asks for more GPUs than there are, or when mpirun cannot start.
[[noreturn]] void launch_ranks(const std::string& command, const std::vector<std::string>& args,
                               const RankOptions& options);

// When started by mpirun (with any number of ranks): joins the job (see the top of this file). Returns
// whether it did. An Error if this build has no MPI.
bool join_ranks_if_launched(const RankOptions& options);

// The number of seed groups asked for (--seed-groups; 1 when not given), for `retort distill`.
int seed_groups();
void set_seed_groups(int groups);

}  // namespace retort::cli
