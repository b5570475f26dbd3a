// engine/cuda/cudnn_conv.h: 2-D convolution through cuDNN, the fast path of conv2d on a GPU when
// retort was built with cuDNN (RETORT_HAVE_CUDNN; engine/kernels/conv.h is the path without it).
//
// For each convolution shape cuDNN's heuristics rank the algorithms once; retort takes the
// fastest one that is deterministic (so a run repeats bit for bit) and needs at most 1 GiB of
// workspace, and caches that choice with the shape's descriptors. The workspace comes from the
// device's caching allocator. TF32 follows the product precision (engine/precision.h): unless it is tf32,
// cuDNN computes in plain f32 (bf16 and f16 runs hand it operands already rounded).
#pragma once

#include <array>
#include <cstdint>

#include "engine/device.h"
#include "engine/dtype.h"

namespace retort::cuda {

// Was retort built with cuDNN?
bool cudnn_built();
// Do conv2d and batch norm (training mode) on a GPU take cuDNN (default: whenever built with
// it)? Off, they run the kernels of engine/kernels/: the GPU tests compare both paths with the CPU.
void set_use_cudnn(bool use);
bool use_cudnn();
// Depthwise convolutions (groups = channels) alone: through cuDNN (true, the default, when
// use_cudnn()) or through the direct kernels of engine/kernels/conv.h. Which is faster depends on
// the card; `retort bench model --depthwise cudnn|kernel` and tools/gpu-check.sh measure both.
void set_cudnn_depthwise(bool use);
// Whether a convolution takes cuDNN: use_cudnn(), and for a depthwise one set_cudnn_depthwise.
bool cudnn_for(bool depthwise);

struct CudnnConvShape {
    std::int64_t batch, in_channels, height, width;
    std::int64_t out_channels, kernel_h, kernel_w, out_h, out_w, groups;
    std::array<std::int64_t, 2> stride, padding, dilation;
};

// y = conv(x, w) + beta * y (beta 0 or 1: 1 adds onto a bias already in y).
void cudnn_conv_forward(Device device, DType dtype, const CudnnConvShape& s, const void* x,
                        const void* w, void* y, double beta);
// dx = the gradient of the input.
void cudnn_conv_backward_data(Device device, DType dtype, const CudnnConvShape& s, const void* dy,
                              const void* w, void* dx);
// dw = the gradient of the weight.
void cudnn_conv_backward_filter(Device device, DType dtype, const CudnnConvShape& s, const void* x,
                                const void* dy, void* dw);

}  // namespace retort::cuda
