// tools/ranks.cpp: the rank options, the mpirun launcher and joining a job (see ranks.h).
#include "tools/ranks.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "engine/cuda/runtime.h"
#include "engine/dist/communicator.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace retort::cli {

namespace {

int seed_group_count = 1;

// "--name N" or "--name=N" at args[i]: the value's text, erasing what it took; "" when absent.
bool take_value(std::vector<std::string>& args, std::size_t i, const std::string& name, std::string& value) {
    const std::string flag = "--" + name;
    if (args[i] == flag) {
        require(i + 1 < args.size(), flag, " needs a value");
        value = args[i + 1];
        args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
        return true;
    }
    if (args[i].rfind(flag + "=", 0) == 0) {
        value = args[i].substr(flag.size() + 1);
        args.erase(args.begin() + static_cast<long>(i));
        return true;
    }
    return false;
}

int parse_count(const std::string& flag, const std::string& text, int most) {
    char* end = nullptr;
    const long value = std::strtol(text.c_str(), &end, 10);
    require(!text.empty() && end && *end == '\0' && value >= 1 && value <= most, "--", flag,
            " must be a whole number from 1 to ", most, ", got '", text, "'");
    return static_cast<int>(value);
}

int env_int(const char* name, int fallback) {
    const char* text = std::getenv(name);
    return text && *text ? std::atoi(text) : fallback;
}

std::string this_executable() {
    char path[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    require(n > 0, "cannot find the retort executable (/proc/self/exe) to start the ranks");
    return std::string(path, static_cast<std::size_t>(n));
}

}  // namespace

int seed_groups() { return seed_group_count; }
void set_seed_groups(int groups) { seed_group_count = std::max(groups, 1); }

RankOptions take_rank_options(std::vector<std::string>& args) {
    RankOptions o;
    for (std::size_t i = 0; i < args.size();) {
        std::string value;
        if (take_value(args, i, "ranks", value)) {
            require(o.ranks == 0, "give --ranks or --gpus once");
            o.ranks = parse_count("ranks", value, 4096);
        } else if (take_value(args, i, "gpus", value)) {
            require(o.ranks == 0, "give --ranks or --gpus once");
            o.ranks = parse_count("gpus", value, 4096);
            o.gpus = true;
        } else if (take_value(args, i, "dist-timeout", value)) {
            char* end = nullptr;
            o.timeout = std::strtod(value.c_str(), &end);
            require(!value.empty() && end && *end == '\0' && o.timeout >= 1 && o.timeout <= 86400,
                    "--dist-timeout must be a number of seconds from 1 to 86400, got '", value, "'");
        } else if (take_value(args, i, "seed-groups", value)) {
            o.seed_groups = parse_count("seed-groups", value, 4096);
        } else {
            ++i;
        }
    }
    return o;
}

void launch_ranks(const std::string& command, const std::vector<std::string>& args,
                  const RankOptions& options) {
    require(dist::have_mpi(), "--", options.gpus ? "gpus" : "ranks",
            " needs MPI, and this retort was built without it: install libopenmpi-dev and "
            "openmpi-bin (tools/setup.sh does) and build again");
    require(!dist::launched_with_ranks(), "--ranks and --gpus start their own mpirun; under mpirun "
            "leave them out (mpirun -np N already gives the ranks)");
    if (options.gpus) {
        const int gpus = cuda::device_count();
        require(gpus >= options.ranks, "--gpus ", options.ranks, ": this machine has ", gpus,
                gpus == 1 ? " GPU" : " GPUs", cuda::built() ? "" : " (this retort was built without CUDA)");
    }
#ifdef RETORT_MPIEXEC
    const std::string mpirun = RETORT_MPIEXEC;
#else
    const std::string mpirun = "mpirun";
#endif
    std::vector<std::string> line{mpirun, "-np", std::to_string(options.ranks)};
    // OpenMPI refuses to run as root unless told, and by default wants a core per rank and binds
    // each rank to one: retort sizes its own threads per rank (join_ranks_if_launched).
    if (::geteuid() == 0) line.push_back("--allow-run-as-root");
    for (const char* flag : {"--oversubscribe", "--bind-to", "none"}) line.emplace_back(flag);
    if (options.timeout > 0) {
        ::setenv("RETORT_DIST_TIMEOUT", std::to_string(options.timeout).c_str(), 1);
        for (const char* flag : {"-x", "RETORT_DIST_TIMEOUT"}) line.emplace_back(flag);
    }
    line.push_back(this_executable());
    line.push_back(command);
    for (const std::string& a : args) line.push_back(a);
    if (options.gpus && std::find(args.begin(), args.end(), "--device") == args.end())
        for (const char* flag : {"--device", "cuda"}) line.emplace_back(flag);
    if (options.seed_groups > 0)
        for (const std::string& flag : {std::string("--seed-groups"), std::to_string(options.seed_groups)})
            line.push_back(flag);
    std::vector<char*> argv;
    for (std::string& a : line) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    ::execvp(argv[0], argv.data());
    fail("cannot start ", mpirun, " for --", options.gpus ? "gpus" : "ranks",
         " (install openmpi-bin): ", std::strerror(errno));
}

bool join_ranks_if_launched(const RankOptions& options) {
    if (!dist::launched_with_ranks()) return false;
    const int local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("MPI_LOCALRANKID", 0));
    const int local_size = std::max(env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("MPI_LOCALNRANKS", 1)), 1);
    // One GPU per rank: the one of its rank on this node. Set before anything touches CUDA.
    if (std::getenv("CUDA_VISIBLE_DEVICES") == nullptr)
        ::setenv("CUDA_VISIBLE_DEVICES", std::to_string(local_rank).c_str(), 1);
    std::shared_ptr<dist::Communicator> world = dist::mpi_world();
    double timeout = options.timeout;
    if (timeout <= 0) {
        const char* text = std::getenv("RETORT_DIST_TIMEOUT");
        timeout = text && *text ? std::atof(text) : 300;
        require(timeout >= 1 && timeout <= 86400, "RETORT_DIST_TIMEOUT must be 1 to 86400 seconds, got '",
                text ? text : "", "'");
    }
    world->timeout_seconds = timeout;
    dist::set_world(world);
    // The node's cores shared among its ranks, unless the user chose (OMP_NUM_THREADS).
    if (std::getenv("OMP_NUM_THREADS") == nullptr) {
        const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        set_num_threads(std::max(1, cores / local_size));
    }
    // Rank 0 speaks for the job; the others keep stderr for their errors.
    if (world->rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
        std::fprintf(stderr, "rank %d: cannot silence stdout\n", world->rank());
    return true;
}

}  // namespace retort::cli
