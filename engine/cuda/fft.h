// engine/cuda/fft.h: the 2-D discrete Fourier transforms of the CUDA backend, through cuFFT, over
// the last two dims of `batch` signals H x W (complex numbers interleaved (re, im), the layout of
// ops/fft.cpp). Unnormalized in both directions; the ops apply their norm's scale. Plans are made
// once per (device, kind, H, W, batch, dtype) and kept.
#pragma once

#include <cstdint>

#include "engine/device.h"
#include "engine/dtype.h"

namespace retort::cuda {

// data (batch, H, W, 2), in place: the forward DFT, or the inverse one without 1 / (H W).
void fft2_complex(Device device, DType dtype, void* data, std::int64_t batch, std::int64_t height,
                  std::int64_t width, bool inverse);
// x (batch, H, W) real -> out (batch, H, W / 2 + 1, 2): the first W / 2 + 1 columns of its DFT.
void fft2_real_to_half(Device device, DType dtype, const void* x, void* out, std::int64_t batch,
                       std::int64_t height, std::int64_t width);

}  // namespace retort::cuda
