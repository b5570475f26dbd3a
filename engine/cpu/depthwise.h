// engine/cpu/depthwise.h: direct loops for depthwise convolution (every input channel is its own
// group; output channel o reads input channel o / multiplier).
//
// Shapes: x (B, C, H, W), weight (C * multiplier, 1, kh, kw), y (B, C * multiplier, OH, OW).
// Why direct: each output needs only kh * kw multiply-adds, so the im2col + gemm route would spend
// its time copying windows and running a 1-row matrix product. Here each kernel tap adds one
// shifted input row into one output row, a loop the compiler vectorizes when the stride is 1.
// All three loops walk planes in parallel, and each output is summed by one thread in a fixed
// order (for the weight gradient: image by image, row by row), so results do not depend on the
// thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/cpu/im2col.h"
#include "engine/parallel.h"

namespace retort::cpu {

// The sizes of one depthwise convolution; geometry describes a single channel (channels = 1).
struct DepthwiseShape {
    std::int64_t batch = 0, channels = 0, multiplier = 1;
    ConvGeometry geometry;
    std::int64_t out_channels() const { return channels * multiplier; }
    std::int64_t in_plane() const { return geometry.height * geometry.width; }
    std::int64_t out_plane() const { return geometry.out_h * geometry.out_w; }
};

// Calls fn(tap_i, tap_j, rows, cols, row_offset, col_offset) for every kernel tap, with the output
// rows and columns whose input position (o * stride + offset) lies inside the input. The windows
// are worked out once per call (tap_windows) and shared by every plane: on small maps the
// divisions in valid_outputs otherwise cost more than the arithmetic.
template <class F>
void for_each_tap(const ConvGeometry& g, const std::vector<TapWindow>& windows, F fn) {
    for (std::int64_t i = 0; i < g.kernel_h; ++i)
        for (std::int64_t j = 0; j < g.kernel_w; ++j) {
            const TapWindow& w = windows[i * g.kernel_w + j];
            fn(i, j, w.rows, w.cols, w.row_offset, w.col_offset);
        }
}

// y = bias + sum over taps of w[o][i][j] * shifted x; bias may be null.
template <class T>
void depthwise_forward(const DepthwiseShape& s, const T* x, const T* w, const T* bias, T* y) {
    const ConvGeometry& g = s.geometry;
    const std::vector<TapWindow> windows = tap_windows(g);
    const std::int64_t taps = g.kernel_h * g.kernel_w, planes = s.batch * s.out_channels();
    parallel_for(0, planes, grain_for(s.out_plane() * taps), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t p = b; p < e; ++p) {
            const std::int64_t o = p % s.out_channels(), image = p / s.out_channels();
            const T* in = x + (image * s.channels + o / s.multiplier) * s.in_plane();
            const T* wo = w + o * taps;
            T* out = y + p * s.out_plane();
            std::fill(out, out + s.out_plane(), bias ? bias[o] : T(0));
            for_each_tap(g, windows, [&](std::int64_t i, std::int64_t j, ValidRange rows, ValidRange cols,
                                std::int64_t row_offset, std::int64_t col_offset) {
                const T wv = wo[i * g.kernel_w + j];
                for (std::int64_t oh = rows.first; oh < rows.last; ++oh) {
                    const T* src = in + (oh * g.stride_h + row_offset) * g.width + col_offset;
                    T* dst = out + oh * g.out_w;
                    if (g.stride_w == 1)  // unit stride: a loop the compiler vectorizes
                        for (std::int64_t ow = cols.first; ow < cols.last; ++ow)
                            dst[ow] += wv * src[ow];
                    else
                        for (std::int64_t ow = cols.first; ow < cols.last; ++ow)
                            dst[ow] += wv * src[ow * g.stride_w];
                }
            });
        }
    });
}

// dx[c] = sum over c's output channels and taps of w[o][i][j] * dy[o] shifted back.
template <class T>
void depthwise_grad_input(const DepthwiseShape& s, const T* dy, const T* w, T* dx) {
    const ConvGeometry& g = s.geometry;
    const std::vector<TapWindow> windows = tap_windows(g);
    const std::int64_t taps = g.kernel_h * g.kernel_w, planes = s.batch * s.channels;
    parallel_for(0, planes, grain_for(s.multiplier * s.out_plane() * taps),
                 [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t p = b; p < e; ++p) {
            const std::int64_t c = p % s.channels, image = p / s.channels;
            T* grad = dx + p * s.in_plane();
            std::fill(grad, grad + s.in_plane(), T(0));
            for (std::int64_t m = 0; m < s.multiplier; ++m) {
                const std::int64_t o = c * s.multiplier + m;
                const T* up = dy + (image * s.out_channels() + o) * s.out_plane();
                for_each_tap(g, windows, [&](std::int64_t i, std::int64_t j, ValidRange rows,
                                    ValidRange cols, std::int64_t row_offset,
                                    std::int64_t col_offset) {
                    const T wv = w[o * taps + i * g.kernel_w + j];
                    for (std::int64_t oh = rows.first; oh < rows.last; ++oh) {
                        T* dst = grad + (oh * g.stride_h + row_offset) * g.width + col_offset;
                        const T* src = up + oh * g.out_w;
                        if (g.stride_w == 1)
                            for (std::int64_t ow = cols.first; ow < cols.last; ++ow)
                                dst[ow] += wv * src[ow];
                        else
                            for (std::int64_t ow = cols.first; ow < cols.last; ++ow)
                                dst[ow * g.stride_w] += wv * src[ow];
                    }
                });
            }
        }
    });
}

// dw[o][i][j] = sum over images and positions of dy[o] * shifted x. Products are first added
// position-wise into a row of partial sums (a loop that vectorizes), which is summed at the end.
template <class T>
void depthwise_grad_weight(const DepthwiseShape& s, const T* x, const T* dy, T* dw) {
    const ConvGeometry& g = s.geometry;
    const std::vector<TapWindow> windows = tap_windows(g);
    const std::int64_t taps = g.kernel_h * g.kernel_w;
    parallel_for(0, s.out_channels(), grain_for(s.batch * s.out_plane() * taps),
                 [&](std::int64_t b, std::int64_t e) {
        std::vector<T> partial(static_cast<std::size_t>(g.out_w));
        for (std::int64_t o = b; o < e; ++o) {
            for_each_tap(g, windows, [&](std::int64_t i, std::int64_t j, ValidRange rows, ValidRange cols,
                                std::int64_t row_offset, std::int64_t col_offset) {
                std::fill(partial.begin(), partial.end(), T(0));
                for (std::int64_t image = 0; image < s.batch; ++image) {
                    const T* in = x + (image * s.channels + o / s.multiplier) * s.in_plane();
                    const T* up = dy + (image * s.out_channels() + o) * s.out_plane();
                    for (std::int64_t oh = rows.first; oh < rows.last; ++oh) {
                        const T* src = in + (oh * g.stride_h + row_offset) * g.width + col_offset;
                        const T* grad = up + oh * g.out_w;
                        if (g.stride_w == 1)
                            for (std::int64_t ow = cols.first; ow < cols.last; ++ow)
                                partial[ow] += grad[ow] * src[ow];
                        else
                            for (std::int64_t ow = cols.first; ow < cols.last; ++ow)
                                partial[ow] += grad[ow] * src[ow * g.stride_w];
                    }
                }
                T total = T(0);
                for (T v : partial) total += v;
                dw[o * taps + i * g.kernel_w + j] = total;
            });
        }
    });
}

}  // namespace retort::cpu
