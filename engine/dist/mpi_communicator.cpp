// engine/dist/mpi_communicator.cpp: the MPI backend (built when CMake finds MPI: RETORT_MPI).
//
// Every collective is MPI's non-blocking form (MPI_Iallreduce, MPI_Ibcast) so that the caller can
// poll it with a timeout (Communicator::wait) and, for gradients, start it while backward is still
// running. MPI is initialized with MPI_THREAD_FUNNELED: only the thread that trains calls MPI (the
// data loader's workers never do). Buffers in GPU memory are staged through host copies (an MPI
// that is not CUDA-aware cannot read them); GPU ranks normally talk through NCCL instead.
#include "engine/dist/communicator.h"

#if RETORT_HAVE_MPI
#include <mpi.h>

#include <cstdlib>
#include <mutex>

#include "engine/cuda/runtime.h"
#include "engine/error.h"

namespace retort::dist {

namespace {

void check_mpi(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    fail("MPI: ", call, " failed: ", std::string(text, static_cast<std::size_t>(length)));
}

MPI_Datatype mpi_type(DType dtype, const char* what) {
    switch (dtype) {
        case DType::f32: return MPI_FLOAT;
        case DType::f64: return MPI_DOUBLE;
        default: fail(what, ": float32 or float64 buffers only, got ", dtype_name(dtype));
    }
}

// A request in flight. A GPU buffer travels through a host copy, written back once it is done.
class MpiPending : public Pending {
public:
    MpiPending(Tensor target, Tensor staged) : target_(std::move(target)), staged_(std::move(staged)) {}
    ~MpiPending() override {
        // A request is abandoned only on the way to an error that ends the job. MPI may still
        // write into the host buffer, so that buffer is released to MPI's care: kept alive on
        // purpose (a small leak in a dying process) rather than freed under MPI's feet.
        if (!finished_ && request_ != MPI_REQUEST_NULL) {
            new Tensor(staged_);
            MPI_Request_free(&request_);
        }
    }
    MPI_Request* request() { return &request_; }
    bool done() override {
        if (finished_) return true;
        int flag = 0;
        check_mpi(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (!flag) return false;
        finished_ = true;
        if (staged_.defined() && staged_.impl_ptr() != target_.impl_ptr())
            cuda::copy_bytes(target_.raw_device_data(), target_.device(), staged_.raw_device_data(),
                             staged_.device(), bytes(target_));
        return true;
    }

    static std::size_t bytes(const Tensor& t) {
        return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
    }

private:
    Tensor target_, staged_;
    MPI_Request request_ = MPI_REQUEST_NULL;
    bool finished_ = false;
};

// The host buffer MPI works on: the tensor itself on the CPU, else a host copy of it.
Tensor host_buffer(const Tensor& t) {
    if (t.device().is_cpu()) return t;
    Tensor host = Tensor::empty(t.shape(), t.dtype());
    cuda::copy_bytes(host.raw_device_data(), host.device(), t.raw_device_data(), t.device(),
                     MpiPending::bytes(t));
    return host;
}

class MpiCommunicator : public Communicator {
public:
    explicit MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
        check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    ~MpiCommunicator() override {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (owned_ && !finalized) MPI_Comm_free(&comm_);
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    std::string backend() const override { return "mpi"; }

    std::unique_ptr<Pending> start_all_reduce(Tensor buffer) override {
        const MPI_Datatype type = mpi_type(buffer.dtype(), "all_reduce");
        Tensor host = host_buffer(buffer);
        auto pending = std::make_unique<MpiPending>(buffer, host);
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, host.raw_device_data(), static_cast<int>(host.numel()),
                                 type, MPI_SUM, comm_, pending->request()),
                  "MPI_Iallreduce");
        return pending;
    }

    std::unique_ptr<Pending> start_broadcast(Tensor buffer, int root) override {
        require(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_);
        Tensor host = host_buffer(buffer);
        auto pending = std::make_unique<MpiPending>(buffer, host);
        check_mpi(MPI_Ibcast(host.raw_device_data(), static_cast<int>(MpiPending::bytes(host)),
                             MPI_BYTE, root, comm_, pending->request()),
                  "MPI_Ibcast");
        return pending;
    }

    std::shared_ptr<Communicator> split(int color) override {
        require(color >= 0, "split: the colour must be >= 0, got ", color);
        MPI_Comm part = MPI_COMM_NULL;
        check_mpi(MPI_Comm_split(comm_, color, rank_, &part), "MPI_Comm_split");
        return std::make_shared<MpiCommunicator>(part, true);
    }

    [[noreturn]] void abort(int code) override {
        MPI_Abort(MPI_COMM_WORLD, code);
        std::exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
    }

private:
    MPI_Comm comm_;
    bool owned_;
    int rank_ = 0, size_ = 1;
};

std::once_flag init_once;

}  // namespace

std::shared_ptr<Communicator> mpi_world() {
    std::call_once(init_once, [] {
        int initialized = 0;
        check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
        if (initialized) return;
        int provided = 0;
        check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        // Errors come back as codes (check_mpi turns them into retort Errors) rather than
        // aborting inside MPI with a less helpful message.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    });
    static std::shared_ptr<Communicator> world = std::make_shared<MpiCommunicator>(MPI_COMM_WORLD, false);
    return world;
}

void finalize() {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Finalize();
}

}  // namespace retort::dist

#endif  // RETORT_HAVE_MPI
