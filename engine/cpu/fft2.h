// engine/cpu/fft2.h: two-dimensional DFTs of a batch of H x W signals, built from 1-D plans.
//
// Shapes (row-major, complex values as (re, im) pairs of T): B the batch (all leading dims
// flattened), H rows, W columns, K = W / 2 + 1 the columns of a half spectrum.
//
// The 2-D DFT is separable: transform every row (the last dim, contiguous), then every column
// (each gathered into a contiguous buffer, transformed and scattered back). Rows and columns are
// spread over threads with parallel_for; every row and every column is transformed by exactly one
// thread with the same arithmetic, so the result has the same bits for any thread count.
//
// `scale` multiplies every output (the norm); forward transforms use exp(-2 pi i ...), inverse
// ones exp(+2 pi i ...).
#pragma once

#include <cstdint>

namespace retort::cpu {

struct Fft2Size {
    std::int64_t batch, height, width;  // width: the full signal width W
    std::int64_t half_width() const { return width / 2 + 1; }
};

// data (B, H, W) complex, transformed in place.
template <class T>
void fft2_complex(T* data, Fft2Size size, bool inverse, double scale);

// x (B, H, W) real -> out (B, H, K) complex: the first K columns of the forward DFT of x.
// With double_mirrored, columns 1 .. W - K are doubled (see half_to_real: this pair of functions
// are each other's adjoints).
template <class T>
void real_to_half(const T* x, T* out, Fft2Size size, double scale, bool double_mirrored);

// z (B, H, K) complex -> x (B, H, W) real: the real part of the inverse DFT of z zero-padded to
// W columns. With double_mirrored, columns 1 .. W - K count twice: they stand for themselves and
// for the mirror-image columns W - k that a Hermitian spectrum leaves out, and then this is
// PyTorch's irfft2 (the imaginary parts of columns 0 and W / 2 drop out with the real part).
template <class T>
void half_to_real(const T* z, T* x, Fft2Size size, double scale, bool double_mirrored);

}  // namespace retort::cpu
