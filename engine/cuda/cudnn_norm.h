// engine/cuda/cudnn_norm.h: batch norm in training mode through cuDNN (spatial mode: one mean and
// variance per channel over batch and positions), the fast path of batch_norm on a GPU when
// retort has cuDNN and conv2d's cuDNN switch is on (engine/cuda/cudnn_conv.h). Without it, and in
// eval mode, the kernels of engine/kernels/normalization.h run.
//
// x, y, dy, dx are (B, C, S) contiguous; weight, bias, running statistics and the saved mean and
// inverse standard deviation are (C) in x's dtype. cuDNN updates the running statistics with the
// unbiased batch variance, as PyTorch does.
#pragma once

#include <cstdint>

#include "engine/device.h"
#include "engine/dtype.h"

namespace retort::cuda {

struct CudnnBatchNormShape {
    std::int64_t batch, channels, positions;
};

void cudnn_batch_norm_forward_training(Device device, DType dtype, const CudnnBatchNormShape& s,
                                       const void* x, void* y, const void* weight,
                                       const void* bias, void* running_mean, void* running_var,
                                       double momentum, double eps, void* save_mean,
                                       void* save_invstd);
void cudnn_batch_norm_backward(Device device, DType dtype, const CudnnBatchNormShape& s,
                               const void* x, const void* dy, const void* weight, void* dx,
                               void* dweight, void* dbias, double eps, const void* save_mean,
                               const void* save_invstd);

}  // namespace retort::cuda
