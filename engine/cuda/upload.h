// engine/cuda/upload.h: a copy of a pinned host tensor to a GPU that runs while the GPU computes.
//
// The data loader starts the copy of the next batch at the beginning of a training step; the copy
// engine moves it while the step's kernels run, and the following step finds it there. How it
// stays safe:
//   - The copy runs on a copy stream of its own (non-blocking, so it overlaps retort's compute
//     stream), and starts only after the work queued on the compute stream so far: the GPU memory
//     it writes comes from the caching allocator, which may hand out a block that kernels queued
//     earlier still read. Kernels queued later (the step that is starting) run beside the copy.
//   - take() makes the compute stream wait for the copy (on the GPU; the host does not block), so
//     every kernel that reads the tensor runs after it.
//   - The pinned host buffer is kept until the copy has finished: the destructor waits for it
//     (normally long done), so the pinned allocator never hands it to a new batch mid-copy.
// Without the CUDA backend an Upload cannot be made (there is no GPU to copy to).
#pragma once

#include "engine/tensor.h"

namespace retort::cuda {

class Upload {
public:
    Upload() = default;
    // Starts copying `host` (pinned CPU memory) into a new tensor on GPU `device`.
    Upload(const Tensor& host, Device device);
    Upload(Upload&& other) noexcept;
    Upload& operator=(Upload&& other) noexcept;
    Upload(const Upload&) = delete;
    Upload& operator=(const Upload&) = delete;
    ~Upload();

    // The GPU tensor, ready for work queued on the compute stream from now on. Once only.
    Tensor take();
    bool started() const { return event_ != nullptr; }

private:
    void release();  // waits for the copy, then lets the host buffer and the event go
    Tensor host_, gpu_;
    void* event_ = nullptr;  // cudaEvent_t recorded on the copy stream after the copy
    int device_ = 0;
};

}  // namespace retort::cuda
