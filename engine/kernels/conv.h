// engine/kernels/conv.h: 2-D convolution on a GPU, the simple way: im2col, a cuBLAS product,
// and col2im for the input gradient; direct kernels for depthwise convolution. (ops/conv.cpp has
// the shapes and the formulas; cuDNN, where present, is the fast path.)
//
// A group's col matrix for one image has one row per tap (input channel c, kernel row ky, kernel
// column kx: row (c * kh + ky) * kw + kx) and one column per output position (oy * OW + ox); the
// col matrices of a chunk's images lie one after the other. Input position of a tap:
//     iy = oy * stride_h - pad_h + ky * dilation_h   (likewise ix); outside the image it reads 0.
// Col2Im is the adjoint, written as a gather: each input element sums the col entries that read
// it, in tap order, so no two threads write one element and the result is deterministic.
#pragma once

#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

struct ConvWindow {
    std::int64_t channels, height, width;  // of one group of one image
    std::int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
    std::int64_t out_h, out_w;
    RETORT_HD std::int64_t taps() const { return channels * kernel_h * kernel_w; }
    RETORT_HD std::int64_t positions() const { return out_h * out_w; }
    // The output coordinate whose tap k reads input coordinate `in`, or -1 when none does.
    RETORT_HD static std::int64_t output_of(std::int64_t in, std::int64_t k, std::int64_t stride,
                                            std::int64_t pad, std::int64_t dilation,
                                            std::int64_t out_size) {
        const std::int64_t shifted = in + pad - k * dilation;
        if (shifted < 0 || shifted % stride != 0) return -1;
        const std::int64_t out = shifted / stride;
        return out < out_size ? out : -1;
    }
};

// col[j] for j over (images, taps, positions); x points at the group's first channel of the
// chunk's first image, and consecutive images are image_stride elements apart.
template <class T>
struct Im2Col {
    const T* x;
    T* col;
    ConvWindow g;
    std::int64_t image_stride;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t P = g.positions(), taps = g.taps();
        const std::int64_t image = j / (taps * P), row = j / P % taps, p = j % P;
        const std::int64_t c = row / (g.kernel_h * g.kernel_w);
        const std::int64_t ky = row / g.kernel_w % g.kernel_h, kx = row % g.kernel_w;
        const std::int64_t iy = p / g.out_w * g.stride_h - g.pad_h + ky * g.dilation_h;
        const std::int64_t ix = p % g.out_w * g.stride_w - g.pad_w + kx * g.dilation_w;
        const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
        col[j] = inside ? x[image * image_stride + (c * g.height + iy) * g.width + ix] : T(0);
    }
};

// dx[element] = sum of the col entries that read it, for j over (images, channels, H, W).
template <class T>
struct Col2Im {
    const T* col;
    T* dx;
    ConvWindow g;
    std::int64_t image_stride;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t plane = g.height * g.width, P = g.positions(), taps = g.taps();
        const std::int64_t image = j / (g.channels * plane), c = j / plane % g.channels;
        const std::int64_t iy = j / g.width % g.height, ix = j % g.width;
        const T* image_col = col + image * taps * P;
        T total = T(0);
        for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
            const std::int64_t oy =
                ConvWindow::output_of(iy, ky, g.stride_h, g.pad_h, g.dilation_h, g.out_h);
            if (oy < 0) continue;
            for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
                const std::int64_t ox =
                    ConvWindow::output_of(ix, kx, g.stride_w, g.pad_w, g.dilation_w, g.out_w);
                if (ox < 0) continue;
                total += image_col[((c * g.kernel_h + ky) * g.kernel_w + kx) * P + oy * g.out_w + ox];
            }
        }
        dx[image * image_stride + (c * g.height + iy) * g.width + ix] = total;
    }
};

// Depthwise convolution: input channel c feeds outputs c * multiplier ... c * multiplier +
// multiplier - 1, each with its own kh x kw filter (weight (C * multiplier, 1, kh, kw)). The
// window has channels = 1. One thread per output, input element or weight element.
struct DepthwiseLayout {
    std::int64_t batch, channels, multiplier;
    ConvWindow g;
};

template <class T>
struct DepthwiseForward {
    const T* x;
    const T* w;
    const T* bias;  // may be null
    T* y;
    DepthwiseLayout l;
    RETORT_HD void operator()(std::int64_t j) const {
        const ConvWindow& g = l.g;
        const std::int64_t outputs = l.channels * l.multiplier;
        const std::int64_t ox = j % g.out_w, oy = j / g.out_w % g.out_h;
        const std::int64_t o = j / g.positions() % outputs, b = j / (g.positions() * outputs);
        const T* plane = x + (b * l.channels + o / l.multiplier) * g.height * g.width;
        const T* filter = w + o * g.kernel_h * g.kernel_w;
        T total = bias != nullptr ? bias[o] : T(0);
        for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
            const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
            if (iy < 0 || iy >= g.height) continue;
            for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
                const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
                if (ix < 0 || ix >= g.width) continue;
                total += plane[iy * g.width + ix] * filter[ky * g.kernel_w + kx];
            }
        }
        y[j] = total;
    }
};

template <class T>
struct DepthwiseGradInput {
    const T* dy;
    const T* w;
    T* dx;
    DepthwiseLayout l;
    RETORT_HD void operator()(std::int64_t j) const {
        const ConvWindow& g = l.g;
        const std::int64_t plane = g.height * g.width;
        const std::int64_t ix = j % g.width, iy = j / g.width % g.height;
        const std::int64_t c = j / plane % l.channels, b = j / (plane * l.channels);
        T total = T(0);
        for (std::int64_t m = 0; m < l.multiplier; ++m) {
            const std::int64_t o = c * l.multiplier + m;
            const T* grad = dy + (b * l.channels * l.multiplier + o) * g.positions();
            const T* filter = w + o * g.kernel_h * g.kernel_w;
            for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
                const std::int64_t oy =
                    ConvWindow::output_of(iy, ky, g.stride_h, g.pad_h, g.dilation_h, g.out_h);
                if (oy < 0) continue;
                for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
                    const std::int64_t ox =
                        ConvWindow::output_of(ix, kx, g.stride_w, g.pad_w, g.dilation_w, g.out_w);
                    if (ox < 0) continue;
                    total += grad[oy * g.out_w + ox] * filter[ky * g.kernel_w + kx];
                }
            }
        }
        dx[j] = total;
    }
};

// dw[o][ky][kx] = sum over images and output positions, in that order.
template <class T>
struct DepthwiseGradWeight {
    const T* x;
    const T* dy;
    T* dw;
    DepthwiseLayout l;
    RETORT_HD void operator()(std::int64_t j) const {
        const ConvWindow& g = l.g;
        const std::int64_t kx = j % g.kernel_w, ky = j / g.kernel_w % g.kernel_h;
        const std::int64_t o = j / (g.kernel_h * g.kernel_w), c = o / l.multiplier;
        T total = T(0);
        for (std::int64_t b = 0; b < l.batch; ++b) {
            const T* plane = x + (b * l.channels + c) * g.height * g.width;
            const T* grad = dy + (b * l.channels * l.multiplier + o) * g.positions();
            for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
                const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
                if (iy < 0 || iy >= g.height) continue;
                for (std::int64_t ox = 0; ox < g.out_w; ++ox) {
                    const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
                    if (ix < 0 || ix >= g.width) continue;
                    total += plane[iy * g.width + ix] * grad[oy * g.out_w + ox];
                }
            }
        }
        dw[j] = total;
    }
};

}  // namespace retort::kernels
