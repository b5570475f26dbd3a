// engine/kernels/fft.h: the elementwise parts of the FFT ops (ops/fft.cpp) around the 2-D
// transforms themselves (engine/cpu/fft2.h on the CPU, cuFFT on a GPU), and complex magnitude and
// phase. A complex tensor is (..., 2) = (real, imaginary).
//
// Half spectra (..., H, K, 2), K = W / 2 + 1, of signals W wide:
//   HalfSpectrumScale   z *= scale, and columns 1 .. W - K twice (double_mirrored): rfft2, and
//                       the adjoint of irfft2
//   PadHalfSpectrum     the full (..., H, W, 2) spectrum: the half one (columns 1 .. W - K
//                       doubled when double_mirrored) followed by zeros; its inverse DFT's real
//                       part is irfft2 (and, undoubled, the adjoint of rfft2)
//   RealPart            x = scale * re(z)
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

struct HalfSpectrum {
    std::int64_t height, half_width, width;  // H, K = W / 2 + 1, W
    // Does column k of the half spectrum stand for its mirror image too?
    RETORT_HD bool mirrored(std::int64_t k) const { return k >= 1 && k <= width - half_width; }
};

template <class T>
struct HalfSpectrumScale {
    T* z;
    HalfSpectrum s;
    T scale;
    bool double_mirrored;
    RETORT_HD void operator()(std::int64_t i) const {  // i over the real numbers of z
        const std::int64_t k = i / 2 % s.half_width;
        z[i] = z[i] * (double_mirrored && s.mirrored(k) ? scale * T(2) : scale);
    }
};

template <class T>
struct PadHalfSpectrum {
    const T* z;
    T* full;
    HalfSpectrum s;
    bool double_mirrored;
    RETORT_HD void operator()(std::int64_t i) const {  // i over the real numbers of full
        const std::int64_t part = i % 2, k = i / 2 % s.width, row = i / (2 * s.width);
        if (k >= s.half_width) {
            full[i] = T(0);
            return;
        }
        const T v = z[(row * s.half_width + k) * 2 + part];
        full[i] = double_mirrored && s.mirrored(k) ? T(2) * v : v;
    }
};

template <class T>
struct RealPart {
    const T* z;
    T* x;
    T scale;
    RETORT_HD void operator()(std::int64_t i) const { x[i] = z[2 * i] * scale; }
};

// |z| as hypot (the squares would overflow float32 already at |z| ~ 1e19), and its gradient
// dz = g z / |z| (0 at z = 0, where it does not exist, as PyTorch).
template <class T>
struct ComplexAbs {
    const T* z;
    T* y;
    RETORT_HD void operator()(std::int64_t i) const { y[i] = std::hypot(z[2 * i], z[2 * i + 1]); }
};

template <class T>
struct ComplexAbsBackward {
    const T* z;
    const T* y;
    const T* g;
    T* dz;
    RETORT_HD void operator()(std::int64_t i) const {
        const T factor = y[i] > T(0) ? g[i] / y[i] : T(0);
        dz[2 * i] = factor * z[2 * i];
        dz[2 * i + 1] = factor * z[2 * i + 1];
    }
};

// The phase atan2(im, re), and dz = g (-im, re) / |z|^2, dividing by |z| twice (|z|^2
// underflows sooner); 0 at z = 0.
template <class T>
struct ComplexAngle {
    const T* z;
    T* y;
    RETORT_HD void operator()(std::int64_t i) const { y[i] = std::atan2(z[2 * i + 1], z[2 * i]); }
};

template <class T>
struct ComplexAngleBackward {
    const T* z;
    const T* g;
    T* dz;
    RETORT_HD void operator()(std::int64_t i) const {
        const T re = z[2 * i], im = z[2 * i + 1];
        const T r = std::hypot(re, im);
        const T factor = r > T(0) ? g[i] / r : T(0);
        dz[2 * i] = r > T(0) ? -factor * (im / r) : T(0);
        dz[2 * i + 1] = r > T(0) ? factor * (re / r) : T(0);
    }
};

}  // namespace retort::kernels
