// engine/cuda/upload.cu: host-to-GPU copies on a copy stream (see upload.h).
#include "engine/cuda/upload.h"

#include "engine/cuda/launch.cuh"

namespace retort::cuda {

namespace {

// One copy stream per GPU; non-blocking, so that it runs beside the compute stream.
cudaStream_t copy_stream(int device) {
    static cudaStream_t streams[kMaxDevices] = {};
    return stream_for(device, streams, cudaStreamNonBlocking);
}

}  // namespace

Upload::Upload(const Tensor& host, Device device) : host_(host), device_(device.index) {
    require(device.is_cuda() && host.device().is_cpu(), "Upload: copies a CPU tensor to a GPU");
    gpu_ = Tensor::empty(host.shape(), host.dtype(), device);
    const std::size_t bytes = static_cast<std::size_t>(host.numel()) * dtype_size(host.dtype());
    DeviceGuard guard(device_);
    cudaStream_t copies = copy_stream(device_);
    // After what the compute stream has queued so far (the block may have been theirs).
    cudaEvent_t before = nullptr;
    check(cudaEventCreateWithFlags(&before, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(before, current_stream(device_)), "cudaEventRecord");
    check(cudaStreamWaitEvent(copies, before, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(before);  // released once the wait is done
    check(cudaMemcpyAsync(gpu_.raw_device_data(), host_.raw_device_data(), bytes, cudaMemcpyHostToDevice, copies),
          "cudaMemcpyAsync");
    cudaEvent_t after = nullptr;
    check(cudaEventCreateWithFlags(&after, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(after, copies), "cudaEventRecord");
    event_ = after;
}

Upload::Upload(Upload&& other) noexcept
    : host_(std::move(other.host_)), gpu_(std::move(other.gpu_)), event_(other.event_), device_(other.device_) {
    other.event_ = nullptr;
}

Upload& Upload::operator=(Upload&& other) noexcept {
    if (this != &other) {
        release();
        host_ = std::move(other.host_);
        gpu_ = std::move(other.gpu_);
        event_ = other.event_;
        device_ = other.device_;
        other.event_ = nullptr;
    }
    return *this;
}

Upload::~Upload() { release(); }

void Upload::release() {
    if (!event_) return;
    cudaEventSynchronize(static_cast<cudaEvent_t>(event_));  // the host buffer is read until here
    cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    event_ = nullptr;
    host_ = Tensor();
}

Tensor Upload::take() {
    require(event_ != nullptr && gpu_.defined(), "Upload::take: nothing to take");
    DeviceGuard guard(device_);
    check(cudaStreamWaitEvent(current_stream(device_), static_cast<cudaEvent_t>(event_), 0), "cudaStreamWaitEvent");
    Tensor out = std::move(gpu_);
    gpu_ = Tensor();
    return out;
}

}  // namespace retort::cuda
