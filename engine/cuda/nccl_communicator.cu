// engine/cuda/nccl_communicator.cu: the NCCL backend of engine/dist/communicator.h, for GPU ranks
// (built with CUDA when CMake finds MPI and NCCL: RETORT_NCCL).
//
// Bootstrap: rank 0 asks NCCL for a unique id and the MPI communicator broadcasts its bytes; each
// rank then joins with ncclCommInitRank on its own GPU. Collectives run on a stream of their own
// (the "communication stream"), so a gradient bucket's all-reduce overlaps the backward kernels
// still queued on retort's compute stream: the communication stream first waits for an event
// recorded on the compute stream (the bucket's gradients are written), then reduces, then records
// a completion event that done() queries without blocking. While it waits, done() also asks NCCL
// for an asynchronous error (a peer that died), so no rank spins on a collective that can no
// longer finish; on a timeout or an error the communicator is aborted (ncclCommAbort) before the
// job is ended.
#include "engine/dist/communicator.h"

#if RETORT_HAVE_NCCL
#include <nccl.h>

#include <cstring>

#include "engine/cuda/launch.cuh"
#include "engine/cuda/runtime.h"

namespace retort::dist {

namespace {

void check_nccl(ncclResult_t status, const char* call) {
    if (status != ncclSuccess && status != ncclInProgress)
        fail("NCCL error in ", call, ": ", ncclGetErrorString(status), " (", static_cast<int>(status), ")");
}

ncclDataType_t nccl_type(DType dtype, const char* what) {
    switch (dtype) {
        case DType::f32: return ncclFloat32;
        case DType::f64: return ncclFloat64;
        default: fail(what, ": float32 or float64 buffers only, got ", dtype_name(dtype));
    }
}

std::size_t bytes_of(const Tensor& t) { return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()); }

class NcclPending : public Pending {
public:
    NcclPending(ncclComm_t comm, cudaEvent_t finished, Tensor target, Tensor staged)
        : comm_(comm), finished_(finished), target_(std::move(target)), staged_(std::move(staged)) {}
    ~NcclPending() override {
        if (!complete_) {  // abandoned on the way to an error: the job ends, keep the memory
            new Tensor(staged_);
            return;
        }
        cudaEventDestroy(finished_);
    }
    bool done() override {
        if (complete_) return true;
        const cudaError_t state = cudaEventQuery(finished_);
        if (state == cudaErrorNotReady) {
            ncclResult_t async = ncclSuccess;
            check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
            check_nccl(async, "a collective (asynchronous error: a peer failed?)");
            return false;
        }
        cuda::check(state, "cudaEventQuery (NCCL collective)");
        complete_ = true;
        if (staged_.impl_ptr() != target_.impl_ptr())  // a host buffer went through the GPU
            cuda::copy_bytes(target_.raw_device_data(), target_.device(), staged_.raw_device_data(),
                             staged_.device(), bytes_of(target_));
        return true;
    }

private:
    ncclComm_t comm_;
    cudaEvent_t finished_;
    Tensor target_, staged_;
    bool complete_ = false;
};

class NcclCommunicator : public Communicator {
public:
    NcclCommunicator(Communicator& bootstrap, Device device)
        : bootstrap_(bootstrap), device_(device), rank_(bootstrap.rank()), size_(bootstrap.size()) {
        require(device.is_cuda(), "NCCL ranks need a GPU device, got ", device.str());
        timeout_seconds = bootstrap.timeout_seconds;
        ncclUniqueId id;
        std::memset(&id, 0, sizeof id);
        if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
        static_assert(sizeof id % 4 == 0, "NCCL's unique id travels as int32 words");
        Tensor bytes = Tensor::empty({static_cast<std::int64_t>(sizeof id / 4)}, DType::i32);
        std::memcpy(bytes.raw_device_data(), &id, sizeof id);
        bootstrap.broadcast(bytes, 0, "the broadcast of NCCL's unique id");
        std::memcpy(&id, bytes.raw_device_data(), sizeof id);
        cuda::DeviceGuard guard(device.index);
        check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
        cuda::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    }
    ~NcclCommunicator() override {
        if (comm_) ncclCommDestroy(comm_);
        if (stream_) cudaStreamDestroy(stream_);
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    std::string backend() const override { return "nccl"; }

    std::unique_ptr<Pending> start_all_reduce(Tensor buffer) override {
        const ncclDataType_t type = nccl_type(buffer.dtype(), "all_reduce");
        Tensor staged = on_gpu(buffer);
        cuda::DeviceGuard guard(device_.index);
        after_compute();
        check_nccl(ncclAllReduce(staged.raw_device_data(), staged.raw_device_data(),
                                 static_cast<std::size_t>(staged.numel()), type, ncclSum, comm_, stream_),
                   "ncclAllReduce");
        return finish(buffer, staged);
    }

    std::unique_ptr<Pending> start_broadcast(Tensor buffer, int root) override {
        require(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_);
        Tensor staged = on_gpu(buffer);
        cuda::DeviceGuard guard(device_.index);
        after_compute();
        check_nccl(ncclBroadcast(staged.raw_device_data(), staged.raw_device_data(), bytes_of(staged),
                                 ncclUint8, root, comm_, stream_),
                   "ncclBroadcast");
        return finish(buffer, staged);
    }

    std::shared_ptr<Communicator> split(int color) override {
        // A group of ranks gets its own MPI communicator and builds a new NCCL one over it.
        std::shared_ptr<Communicator> part = bootstrap_.split(color);
        groups_.push_back(part);
        return std::make_shared<NcclCommunicator>(*part, device_);
    }

    [[noreturn]] void abort(int code) override {
        if (comm_) ncclCommAbort(comm_);
        comm_ = nullptr;
        bootstrap_.abort(code);
    }

private:
    // The buffer itself when it is on this rank's GPU, else a copy there (host metrics).
    Tensor on_gpu(const Tensor& buffer) {
        if (buffer.device() == device_) return buffer;
        Tensor staged = Tensor::empty(buffer.shape(), buffer.dtype(), device_);
        cuda::copy_bytes(staged.raw_device_data(), device_, buffer.raw_device_data(), buffer.device(),
                         bytes_of(buffer));
        return staged;
    }
    // The communication stream waits for what the compute stream has queued (the buffer's data).
    void after_compute() {
        cudaEvent_t written;
        cuda::check(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), "cudaEventCreate");
        cuda::check(cudaEventRecord(written, cuda::current_stream(device_.index)), "cudaEventRecord");
        cuda::check(cudaStreamWaitEvent(stream_, written, 0), "cudaStreamWaitEvent");
        cudaEventDestroy(written);  // released once the wait is done
    }
    std::unique_ptr<Pending> finish(const Tensor& target, const Tensor& staged) {
        cudaEvent_t finished;
        cuda::check(cudaEventCreateWithFlags(&finished, cudaEventDisableTiming), "cudaEventCreate");
        cuda::check(cudaEventRecord(finished, stream_), "cudaEventRecord");
        return std::make_unique<NcclPending>(comm_, finished, target, staged);
    }

    Communicator& bootstrap_;
    Device device_;
    int rank_, size_;
    ncclComm_t comm_ = nullptr;
    cudaStream_t stream_ = nullptr;
    std::vector<std::shared_ptr<Communicator>> groups_;  // bootstraps of split() communicators
};

}  // namespace

std::shared_ptr<Communicator> nccl_communicator(Communicator& bootstrap, Device device) {
    return std::make_shared<NcclCommunicator>(bootstrap, device);
}

}  // namespace retort::dist

#endif  // RETORT_HAVE_NCCL
