// engine/cuda/cudnn_common.cuh: what the cuDNN paths share (cudnn_conv.cu, cudnn_norm.cu): errors
// that name the call, and one cuDNN handle per GPU, bound to the device's stream. Included only
// where RETORT_HAVE_CUDNN is set.
#pragma once

#include <cudnn.h>

#include <mutex>

#include "engine/cuda/launch.cuh"
#include "engine/error.h"

namespace retort::cuda {

inline void check_cudnn(cudnnStatus_t status, const char* call) {
    if (status != CUDNN_STATUS_SUCCESS)
        fail("cuDNN error in ", call, ": ", cudnnGetErrorString(status), " (",
             static_cast<int>(status), ")");
}

// Made on first use and kept (an inline function's static: one table for the whole program).
inline cudnnHandle_t cudnn_handle(int device) {
    constexpr int kMaxDevices = 64;
    static std::mutex mutex;
    static cudnnHandle_t handles[kMaxDevices] = {};
    require(device >= 0 && device < kMaxDevices, "GPU index ", device, " is out of range");
    std::lock_guard<std::mutex> lock(mutex);
    if (handles[device] == nullptr) {
        DeviceGuard guard(device);
        check_cudnn(cudnnCreate(&handles[device]), "cudnnCreate");
        check_cudnn(cudnnSetStream(handles[device], current_stream(device)), "cudnnSetStream");
    }
    return handles[device];
}

}  // namespace retort::cuda
