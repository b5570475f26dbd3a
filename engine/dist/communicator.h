// engine/dist/communicator.h: the ranks of a data-parallel run and the collectives between them.
//
// A Communicator joins `size()` processes ("ranks", numbered 0..size-1). Data-parallel training
// needs three collectives of it:
//   all-reduce  every rank passes a buffer of the same length; afterwards each holds the
//               elementwise sum over the ranks (gradients, metric counts);
//   broadcast   rank `root`'s buffer is copied into every other rank's (initial weights);
//   split       the ranks that pass the same colour form a smaller communicator (seed sweeps
//               with one group of ranks per seed).
// The backends are the libraries the field already trusts, never a home-made protocol:
//   local  one process: every collective is the identity (the default, always built);
//   mpi    MPI (Debian's OpenMPI): CPU ranks, and the launcher (`mpirun`) of every run;
//   nccl   NCCL for GPU buffers, bootstrapped over MPI (rank 0 makes NCCL's unique id and MPI
//          broadcasts it).
//
// No rank ever waits forever. A collective is started without blocking (start_*) and then polled;
// wait() gives up after `timeout_seconds` with an Error that names the operation and the rank, so
// a rank that died or hangs stops the others within the timeout instead of freezing the job (the
// CLI then aborts the whole job through abort()).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace retort::dist {

// A collective that was started and may not have finished. done() polls and never blocks; once it
// returns true the result is in the caller's buffer.
class Pending {
public:
    virtual ~Pending() = default;
    virtual bool done() = 0;
};

class Communicator {
public:
    virtual ~Communicator() = default;

    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual std::string backend() const = 0;  // "local", "mpi" or "nccl"

    // Starts summing `buffer` (float32 or float64) elementwise over the ranks, in place. The
    // buffer must stay alive and untouched until the Pending is done.
    virtual std::unique_ptr<Pending> start_all_reduce(Tensor buffer) = 0;
    // Starts copying rank `root`'s `buffer` into every other rank's (any dtype).
    virtual std::unique_ptr<Pending> start_broadcast(Tensor buffer, int root) = 0;
    // The ranks that pass the same `color` (>= 0) form a new communicator; their order is kept.
    // Every rank must call it.
    virtual std::shared_ptr<Communicator> split(int color) = 0;
    // Ends every rank of the job now, with exit status `code` (after an error on this rank, so that
    // no other rank waits for it). The local backend just exits.
    [[noreturn]] virtual void abort(int code) = 0;

    // Polls `pending` until it is done; an Error naming `what` after timeout_seconds.
    void wait(Pending& pending, const std::string& what) const;
    void all_reduce(Tensor buffer, const std::string& what);
    void broadcast(Tensor buffer, int root, const std::string& what);
    // The elementwise sum of `values` over the ranks (small host vectors: metrics, flags).
    std::vector<double> sum(std::vector<double> values, const std::string& what);
    // Returns once every rank has called it.
    void barrier(const std::string& what);

    bool is_root() const { return rank() == 0; }
    double timeout_seconds = 300;  // how long a collective may wait for the other ranks
};

// One process, nothing to talk to.
std::shared_ptr<Communicator> local_communicator();

// The process's communicator: local_communicator() unless set_world() installed another (the CLI
// does when it runs under mpirun). Library code (the Trainer) reads it.
std::shared_ptr<Communicator> world();
void set_world(std::shared_ptr<Communicator> communicator);

// True when this process was started by mpirun / mpiexec (OpenMPI's or a PMI launcher's
// environment variables are set), with any number of ranks.
bool launched_with_ranks();
// This process's rank in the whole job as the launcher numbered it (0 when alone): unique per
// process even after split(), for per-process file names.
int process_rank();
// Whether this build has the backends (RETORT_MPI, RETORT_NCCL at configure time).
bool have_mpi();
bool have_nccl();

// Initializes MPI (once per process) and returns MPI_COMM_WORLD as a Communicator. An Error when
// the build has no MPI.
std::shared_ptr<Communicator> mpi_world();
// A NCCL communicator over the same ranks as `bootstrap` (an MPI communicator), each rank on its
// own GPU `device`. An Error when the build has no NCCL.
std::shared_ptr<Communicator> nccl_communicator(Communicator& bootstrap, Device device);

// Shuts MPI down cleanly at the end of a successful run (nothing when MPI was never started).
void finalize();

// The contiguous piece [begin, end) of `count` items that rank `rank` of `ranks` takes: the
// items are split as evenly as possible, the first count % ranks ranks taking one more.
struct Range {
    std::int64_t begin = 0, end = 0;
};
Range shard_range(std::int64_t count, int rank, int ranks);

}  // namespace retort::dist
