// engine/ops/fft.h: 2-D discrete Fourier transforms over the last two dims, and the magnitude and
// phase of complex values.
//
// A complex tensor is a real tensor (float32 or float64) whose last dim is 2, holding (real,
// imaginary): the layout of torch.view_as_real. Shapes: ... any batch dims, H and W the two
// transformed dims, K = W / 2 + 1.
//   fft2, ifft2   (..., H, W, 2) -> (..., H, W, 2)
//   rfft2         (..., H, W)    -> (..., H, K, 2)    real input, the non-redundant half
//   irfft2        (..., H, K, 2) -> (..., H, W)       real output of width W (K must be W / 2 + 1)
//   complex_abs, complex_angle   (..., 2) -> (...)
// Every one matches the torch.fft function of the same name (irfft2 with s = (H, W)), or
// torch.abs / torch.angle, applied to torch.view_as_complex(x), gradients included. Any sizes
// work, 1, odd and prime included; any H, W >= 1.
#pragma once

#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace retort {

// Where the 1/(H W) goes, with torch.fft's names: "backward" scales only the inverse transforms
// by 1/(H W), "forward" only the forward ones, "ortho" both by 1/sqrt(H W).
enum class FftNorm { backward, ortho, forward };

// "backward", "ortho" or "forward"; anything else is an Error that lists them.
FftNorm parse_fft_norm(const std::string& name);
const char* fft_norm_name(FftNorm norm);

Tensor fft2(const Tensor& x, FftNorm norm = FftNorm::backward);
Tensor ifft2(const Tensor& x, FftNorm norm = FftNorm::backward);
Tensor rfft2(const Tensor& x, FftNorm norm = FftNorm::backward);
// Width W of the output, as torch.fft.irfft2(x, s=(H, W)); the input must have W / 2 + 1 columns.
// The spectrum is read as the half of a Hermitian one: the imaginary parts that such a spectrum
// cannot have (column 0 and, for even W, column W / 2, after the transform over H) are ignored,
// as PyTorch ignores them.
Tensor irfft2(const Tensor& x, std::int64_t width, FftNorm norm = FftNorm::backward);

// |z| = sqrt(re^2 + im^2). Its gradient z / |z| is undefined at z = 0; it is taken to be 0 there,
// as torch.abs does for complex inputs, so an amplitude loss never produces a NaN.
Tensor complex_abs(const Tensor& z);
// atan2(im, re) in (-pi, pi]; gradient (-im, re) / |z|^2, taken to be 0 at z = 0 (as torch.angle).
Tensor complex_angle(const Tensor& z);

}  // namespace retort
