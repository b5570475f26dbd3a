// engine/cpu/im2col.h: turning a convolution into a matrix product, and back.
//
// Shapes (one group of one image): x (C, H, W); kernel kh x kw; output OH x OW.
// im2col writes the matrix col (C * kh * kw, OH * OW) with
//     col[(c * kh + i) * kw + j][oh * OW + ow] = x[c][oh * sh - ph + i * dh][ow * sw - pw + j * dw]
// (zero where that position falls in the padding). A weight (O, C, kh, kw) read as an O x (C kh kw)
// matrix then gives the convolution as one product: y (O, OH * OW) = W col.
// col2im is its adjoint: every col entry is added back to the x position it was read from, which
// is what the input gradient needs (dx = col2im(W^T dy)).
//
// Both take the row stride of col (ld, at least OH * OW): several images' col matrices can then
// sit side by side in one wide matrix, so a single product covers a chunk of images.
//
// Both are memory-bound copies. im2col threads over rows of col; col2im over channels, with each
// channel's sums done by one thread in a fixed order, so results do not depend on the threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/parallel.h"

namespace retort::cpu {

struct ConvGeometry {
    std::int64_t channels = 0, height = 0, width = 0;
    std::int64_t kernel_h = 1, kernel_w = 1;
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t pad_h = 0, pad_w = 0;
    std::int64_t dilation_h = 1, dilation_w = 1;
    std::int64_t out_h = 0, out_w = 0;
    std::int64_t col_rows() const { return channels * kernel_h * kernel_w; }
    std::int64_t col_cols() const { return out_h * out_w; }
};

// The outputs o in [0, out_size) whose input position o * stride + offset lies in [0, in_size),
// as a half-open range [first, last).
struct ValidRange {
    std::int64_t first, last;
};
inline ValidRange valid_outputs(std::int64_t out_size, std::int64_t in_size, std::int64_t stride,
                                std::int64_t offset) {
    std::int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    std::int64_t last = in_size - offset > 0 ? (in_size - offset + stride - 1) / stride : 0;
    first = std::min(first, out_size);
    return {first, std::clamp(last, first, out_size)};
}

// Where one kernel tap (i, j) reads: its offsets into the input and the output rows and columns
// whose read position lies inside the input. The same for every channel, so it is worked out
// once per call: on the small maps of a network's last stages (4 x 4, 2 x 2, 1 x 1) a col row
// holds only a few values, and recomputing these ranges (integer divisions) for each row cost
// more than the copying itself.
struct TapWindow {
    std::int64_t row_offset, col_offset;
    ValidRange rows, cols;
};

inline std::vector<TapWindow> tap_windows(const ConvGeometry& g) {
    std::vector<TapWindow> windows;
    windows.reserve(static_cast<std::size_t>(g.kernel_h * g.kernel_w));
    for (std::int64_t i = 0; i < g.kernel_h; ++i)
        for (std::int64_t j = 0; j < g.kernel_w; ++j) {
            const std::int64_t row_offset = i * g.dilation_h - g.pad_h;
            const std::int64_t col_offset = j * g.dilation_w - g.pad_w;
            windows.push_back({row_offset, col_offset,
                               valid_outputs(g.out_h, g.height, g.stride_h, row_offset),
                               valid_outputs(g.out_w, g.width, g.stride_w, col_offset)});
        }
    return windows;
}

template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col, std::int64_t ld) {
    const std::vector<TapWindow> windows = tap_windows(g);
    const auto kernel = static_cast<std::int64_t>(windows.size());
    const std::int64_t cols = g.col_cols();
    parallel_for(0, g.col_rows(), grain_for(cols), [&](std::int64_t begin, std::int64_t end) {
        std::int64_t c = begin / kernel, t = begin % kernel;  // row r = c * kernel + t
        for (std::int64_t r = begin; r < end; ++r) {
            const TapWindow& w = windows[t];
            const T* plane = x + c * g.height * g.width;
            T* out = col + r * ld;
            std::fill(out, out + w.rows.first * g.out_w, T(0));
            for (std::int64_t oh = w.rows.first; oh < w.rows.last; ++oh) {
                const T* src = plane + (oh * g.stride_h + w.row_offset) * g.width + w.col_offset;
                T* dst = out + oh * g.out_w;
                std::fill(dst, dst + w.cols.first, T(0));
                if (g.stride_w == 1)
                    std::copy(src + w.cols.first, src + w.cols.last, dst + w.cols.first);
                else
                    for (std::int64_t ow = w.cols.first; ow < w.cols.last; ++ow)
                        dst[ow] = src[ow * g.stride_w];
                std::fill(dst + w.cols.last, dst + g.out_w, T(0));
            }
            std::fill(out + w.rows.last * g.out_w, out + cols, T(0));
            if (++t == kernel) {
                t = 0;
                ++c;
            }
        }
    });
}

// x = col2im(col): x is overwritten (not added to).
template <class T>
void col2im(const T* col, const ConvGeometry& g, T* x, std::int64_t ld) {
    const std::vector<TapWindow> windows = tap_windows(g);
    const auto kernel = static_cast<std::int64_t>(windows.size());
    const std::int64_t grain = grain_for(kernel * g.col_cols());
    parallel_for(0, g.channels, grain, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t c = begin; c < end; ++c) {
            T* plane = x + c * g.height * g.width;
            std::fill(plane, plane + g.height * g.width, T(0));
            for (std::int64_t t = 0; t < kernel; ++t) {
                const TapWindow& w = windows[t];
                const T* src = col + (c * kernel + t) * ld;
                for (std::int64_t oh = w.rows.first; oh < w.rows.last; ++oh) {
                    T* dst = plane + (oh * g.stride_h + w.row_offset) * g.width + w.col_offset;
                    const T* s = src + oh * g.out_w;
                    if (g.stride_w == 1)
                        for (std::int64_t ow = w.cols.first; ow < w.cols.last; ++ow) dst[ow] += s[ow];
                    else
                        for (std::int64_t ow = w.cols.first; ow < w.cols.last; ++ow)
                            dst[ow * g.stride_w] += s[ow];
                }
            }
        }
    });
}

}  // namespace retort::cpu
