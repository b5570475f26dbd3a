// engine/dist/communicator.cpp: waiting with a timeout, the local backend, the process's world.
#include "engine/dist/communicator.h"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "engine/error.h"

namespace retort::dist {

namespace {

// Every collective of one process is complete as soon as it starts.
class Done : public Pending {
public:
    bool done() override { return true; }
};

class LocalCommunicator : public Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    std::string backend() const override { return "local"; }
    std::unique_ptr<Pending> start_all_reduce(Tensor buffer) override {
        require(buffer.dtype() == DType::f32 || buffer.dtype() == DType::f64,
                "all_reduce: float32 or float64 buffers only, got ", dtype_name(buffer.dtype()));
        return std::make_unique<Done>();
    }
    std::unique_ptr<Pending> start_broadcast(Tensor, int root) override {
        require(root == 0, "broadcast: root ", root, " is not a rank of a 1-rank communicator");
        return std::make_unique<Done>();
    }
    std::shared_ptr<Communicator> split(int) override { return std::make_shared<LocalCommunicator>(); }
    [[noreturn]] void abort(int code) override { std::exit(code); }
};

std::mutex world_mutex;
std::shared_ptr<Communicator>& world_slot() {
    static std::shared_ptr<Communicator> slot = std::make_shared<LocalCommunicator>();
    return slot;
}

int env_int(const char* name) {
    const char* text = std::getenv(name);
    return text ? std::atoi(text) : 0;
}

}  // namespace

void Communicator::wait(Pending& pending, const std::string& what) const {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    // Poll, backing off from a bare yield to 1 ms sleeps: a rank that waits must not take the
    // cores its peers on the same machine are computing on.
    auto pause = std::chrono::microseconds(0);
    while (!pending.done()) {
        const double waited = std::chrono::duration<double>(clock::now() - start).count();
        require(waited < timeout_seconds, "data parallel: rank ", rank(), " of ", size(),
                " waited ", timeout_seconds, " s for the other ranks in ", what,
                " (dist timeout); a rank has died or hangs, so this one stops too");
        if (pause.count() == 0) {
            std::this_thread::yield();
            pause = std::chrono::microseconds(20);
        } else {
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::microseconds(1000));
        }
    }
}

void Communicator::all_reduce(Tensor buffer, const std::string& what) {
    auto pending = start_all_reduce(buffer);
    wait(*pending, what);
}

void Communicator::broadcast(Tensor buffer, int root, const std::string& what) {
    auto pending = start_broadcast(buffer, root);
    wait(*pending, what);
}

std::vector<double> Communicator::sum(std::vector<double> values, const std::string& what) {
    if (size() == 1 || values.empty()) return values;
    Tensor buffer = from_vector(values);
    all_reduce(buffer, what);
    return buffer.to_vector<double>();
}

void Communicator::barrier(const std::string& what) { sum({1.0}, what); }

std::shared_ptr<Communicator> local_communicator() { return std::make_shared<LocalCommunicator>(); }

std::shared_ptr<Communicator> world() {
    std::lock_guard lock(world_mutex);
    return world_slot();
}

void set_world(std::shared_ptr<Communicator> communicator) {
    require(communicator != nullptr, "set_world: no communicator");
    std::lock_guard lock(world_mutex);
    world_slot() = std::move(communicator);
}

bool launched_with_ranks() {
    // OpenMPI's mpirun, then the PMI variables of MPICH / Slurm launchers.
    return env_int("OMPI_COMM_WORLD_SIZE") >= 1 || env_int("PMI_SIZE") >= 1 || env_int("PMIX_SIZE") >= 1;
}

int process_rank() {
    if (!launched_with_ranks()) return 0;
    const char* names[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (const char* name : names)
        if (std::getenv(name)) return env_int(name);
    return 0;
}

Range shard_range(std::int64_t count, int rank, int ranks) {
    internal_check(ranks >= 1 && rank >= 0 && rank < ranks && count >= 0, "shard_range: bad arguments");
    const std::int64_t base = count / ranks, extra = count % ranks;
    const std::int64_t begin = rank * base + std::min<std::int64_t>(rank, extra);
    return {begin, begin + base + (rank < extra ? 1 : 0)};
}

bool have_mpi() {
#if RETORT_HAVE_MPI
    return true;
#else
    return false;
#endif
}

bool have_nccl() {
#if RETORT_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

#if !RETORT_HAVE_MPI
std::shared_ptr<Communicator> mpi_world() {
    fail("this retort was built without MPI: install libopenmpi-dev and openmpi-bin "
         "(tools/setup.sh does) and build again with -DRETORT_MPI=AUTO or ON");
}
void finalize() {}
#endif

#if !RETORT_HAVE_NCCL
std::shared_ptr<Communicator> nccl_communicator(Communicator&, Device) {
    fail("this retort was built without NCCL (it needs the CUDA backend and nccl.h / libnccl from "
         "the CUDA toolkit or NCCL_ROOT): GPU ranks cannot talk to each other");
}
#endif

}  // namespace retort::dist
