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
//
// Unit stride (most depthwise layers) takes a faster route, at the end of this file: on maps of
// 7 to 28 columns the row loops above spend more time starting and finishing than multiplying.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/cpu/im2col.h"
#include "engine/cpu/scaled_add.h"
#include "engine/math/lane_sum.h"
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
void depthwise_forward_rows(const DepthwiseShape& s, const T* x, const T* w, const T* bias, T* y) {
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
void depthwise_grad_input_rows(const DepthwiseShape& s, const T* dy, const T* w, T* dx) {
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
void depthwise_grad_weight_rows(const DepthwiseShape& s, const T* x, const T* dy, T* dw) {
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

// ---------------------------------------------------------------------------------------------
// Unit stride: whole planes as one long row.
//
// A plane is copied into a zero-bordered buffer whose rows are `wide` values long. With unit
// stride, output (r, c) and input (r + i * dilation_h, c + j * dilation_w) of the bordered
// buffer are then a fixed distance apart for each tap (i, j), so a tap is one loop over all the
// plane's outputs, r * wide + c, with no bounds to check; the columns c >= out_w that this also
// computes are thrown away. Each output still gets its bias and then its taps in the order
// (i, j), the zero border adding nothing, so the forward and input-gradient results are the row
// loops' results. A tap's loop is add_scaled (engine/cpu/scaled_add.h), which runs in AVX-512
// or AVX2 where the CPU has it.

// The zero-bordered copy of one plane: `rows` x `wide`, the plane at (top, left), and `slack`
// more zeros so that a tap's loop may read past the last row. The buffer is zeroed once
// (std::vector's value-initialization); each plane then overwrites only the plane's own place,
// so the border stays zero.
struct BorderedPlane {
    std::int64_t rows, wide, top, left, slack;
    std::size_t size() const { return static_cast<std::size_t>(rows * wide + slack); }
};

template <class T>
void copy_into_border(const BorderedPlane& b, const T* plane, std::int64_t height,
                      std::int64_t width, T* out) {
    for (std::int64_t r = 0; r < height; ++r)
        std::copy(plane + r * width, plane + (r + 1) * width, out + (r + b.top) * b.wide + b.left);
}

// The input as the forward pass and the weight gradient read it: the convolution's own padding.
inline BorderedPlane padded_input(const ConvGeometry& g) {
    const std::int64_t wide = g.width + 2 * g.pad_w;
    return {g.height + 2 * g.pad_h, wide, g.pad_h, g.pad_w, (g.kernel_w - 1) * g.dilation_w + wide};
}

template <class T>
void depthwise_forward_unit_stride(const DepthwiseShape& s, const T* x, const T* w, const T* bias,
                                   T* y) {
    const ConvGeometry& g = s.geometry;
    const BorderedPlane border = padded_input(g);
    const std::int64_t taps = g.kernel_h * g.kernel_w, planes = s.batch * s.out_channels();
    const std::int64_t n = g.out_h * border.wide;  // outputs computed per plane
    parallel_for(0, planes, grain_for(n * taps), [&](std::int64_t b, std::int64_t e) {
        std::vector<T> in(border.size()), out(static_cast<std::size_t>(n));
        for (std::int64_t p = b; p < e; ++p) {
            const std::int64_t o = p % s.out_channels(), image = p / s.out_channels();
            copy_into_border(border, x + (image * s.channels + o / s.multiplier) * s.in_plane(),
                          g.height, g.width, in.data());
            std::fill(out.begin(), out.end(), bias ? bias[o] : T(0));
            for (std::int64_t i = 0; i < g.kernel_h; ++i)
                for (std::int64_t j = 0; j < g.kernel_w; ++j)
                    add_scaled(out.data(), in.data() + i * g.dilation_h * border.wide + j * g.dilation_w,
                               w[o * taps + i * g.kernel_w + j], n);
            T* dst = y + p * s.out_plane();
            for (std::int64_t r = 0; r < g.out_h; ++r)
                std::copy(out.data() + r * border.wide, out.data() + r * border.wide + g.out_w,
                          dst + r * g.out_w);
        }
    });
}

// dx(r, c) = sum over taps of w(i, j) * dy(r + pad_h - i * dilation_h, c + pad_w - j * dilation_w):
// dy goes into a buffer bordered by a kernel's reach on every side, so every read is inside it.
template <class T>
void depthwise_grad_input_unit_stride(const DepthwiseShape& s, const T* dy, const T* w, T* dx) {
    const ConvGeometry& g = s.geometry;
    const std::int64_t reach_h = (g.kernel_h - 1) * g.dilation_h, reach_w = (g.kernel_w - 1) * g.dilation_w;
    const std::int64_t wide = g.out_w + 2 * reach_w;
    const BorderedPlane border{g.out_h + 2 * reach_h, wide, reach_h, reach_w, g.pad_w + reach_w + wide};
    const std::int64_t taps = g.kernel_h * g.kernel_w, planes = s.batch * s.channels;
    const std::int64_t n = g.height * wide;  // input positions computed per plane
    parallel_for(0, planes, grain_for(s.multiplier * n * taps), [&](std::int64_t b, std::int64_t e) {
        std::vector<T> up(border.size()), grad(static_cast<std::size_t>(n));
        for (std::int64_t p = b; p < e; ++p) {
            const std::int64_t c = p % s.channels, image = p / s.channels;
            std::fill(grad.begin(), grad.end(), T(0));
            for (std::int64_t m = 0; m < s.multiplier; ++m) {
                const std::int64_t o = c * s.multiplier + m;
                copy_into_border(border, dy + (image * s.out_channels() + o) * s.out_plane(), g.out_h,
                              g.out_w, up.data());
                for (std::int64_t i = 0; i < g.kernel_h; ++i)
                    for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                        const std::int64_t offset = (g.pad_h + reach_h - i * g.dilation_h) * wide +
                                                    (g.pad_w + reach_w - j * g.dilation_w);
                        add_scaled(grad.data(), up.data() + offset, w[o * taps + i * g.kernel_w + j], n);
                    }
            }
            T* dst = dx + p * s.in_plane();
            for (std::int64_t r = 0; r < g.height; ++r)
                std::copy(grad.data() + r * wide, grad.data() + r * wide + g.width, dst + r * g.width);
        }
    });
}

// dw(o, i, j) = sum over images and outputs of dy * the input the tap reads. dy is laid out
// `wide` values a row with zeros past out_w, so each tap is one product of two long rows; the
// products of a tap are added position by position over the images (a loop that vectorizes),
// and those partial sums in double at the end.
template <class T>
void depthwise_grad_weight_unit_stride(const DepthwiseShape& s, const T* x, const T* dy, T* dw) {
    const ConvGeometry& g = s.geometry;
    const BorderedPlane border = padded_input(g);
    const BorderedPlane up_border{g.out_h, border.wide, 0, 0, 0};
    const std::int64_t taps = g.kernel_h * g.kernel_w;
    const std::int64_t n = g.out_h * border.wide;
    parallel_for(0, s.out_channels(), grain_for(s.batch * n * taps), [&](std::int64_t b, std::int64_t e) {
        std::vector<T> in(border.size()), up(up_border.size());
        std::vector<T> partial(static_cast<std::size_t>(taps * n));  // per tap, per position
        for (std::int64_t o = b; o < e; ++o) {
            std::fill(partial.begin(), partial.end(), T(0));
            for (std::int64_t image = 0; image < s.batch; ++image) {
                copy_into_border(border, x + (image * s.channels + o / s.multiplier) * s.in_plane(),
                              g.height, g.width, in.data());
                copy_into_border(up_border, dy + (image * s.out_channels() + o) * s.out_plane(),
                              g.out_h, g.out_w, up.data());
                for (std::int64_t i = 0; i < g.kernel_h; ++i)
                    for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                        T* sums = partial.data() + (i * g.kernel_w + j) * n;
                        const T* src = in.data() + i * g.dilation_h * border.wide + j * g.dilation_w;
                        add_products(sums, up.data(), src, n);
                    }
            }
            for (std::int64_t t = 0; t < taps; ++t) {
                const T* sums = partial.data() + t * n;
                dw[o * taps + t] =
                    static_cast<T>(lane_sum(n, [&](std::int64_t q) { return double(sums[q]); }));
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The entry points: unit stride takes the whole-plane loops, any other stride the row loops.

template <class T>
void depthwise_forward(const DepthwiseShape& s, const T* x, const T* w, const T* bias, T* y) {
    if (s.geometry.stride_h == 1 && s.geometry.stride_w == 1)
        depthwise_forward_unit_stride(s, x, w, bias, y);
    else
        depthwise_forward_rows(s, x, w, bias, y);
}

template <class T>
void depthwise_grad_input(const DepthwiseShape& s, const T* dy, const T* w, T* dx) {
    if (s.geometry.stride_h == 1 && s.geometry.stride_w == 1)
        depthwise_grad_input_unit_stride(s, dy, w, dx);
    else
        depthwise_grad_input_rows(s, dy, w, dx);
}

template <class T>
void depthwise_grad_weight(const DepthwiseShape& s, const T* x, const T* dy, T* dw) {
    if (s.geometry.stride_h == 1 && s.geometry.stride_w == 1)
        depthwise_grad_weight_unit_stride(s, x, dy, dw);
    else
        depthwise_grad_weight_rows(s, x, dy, dw);
}

}  // namespace retort::cpu
