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

template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col, std::int64_t ld) {
    const std::int64_t kernel = g.kernel_h * g.kernel_w, cols = g.col_cols();
    parallel_for(0, g.col_rows(), grain_for(cols), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            const std::int64_t c = r / kernel, i = r % kernel / g.kernel_w, j = r % g.kernel_w;
            const T* plane = x + c * g.height * g.width;
            const std::int64_t row_offset = i * g.dilation_h - g.pad_h;
            const std::int64_t col_offset = j * g.dilation_w - g.pad_w;
            const ValidRange rows = valid_outputs(g.out_h, g.height, g.stride_h, row_offset);
            const ValidRange xs = valid_outputs(g.out_w, g.width, g.stride_w, col_offset);
            T* out = col + r * ld;
            std::fill(out, out + rows.first * g.out_w, T(0));
            for (std::int64_t oh = rows.first; oh < rows.last; ++oh) {
                const T* src = plane + (oh * g.stride_h + row_offset) * g.width + col_offset;
                T* dst = out + oh * g.out_w;
                std::fill(dst, dst + xs.first, T(0));
                for (std::int64_t ow = xs.first; ow < xs.last; ++ow) dst[ow] = src[ow * g.stride_w];
                std::fill(dst + xs.last, dst + g.out_w, T(0));
            }
            std::fill(out + rows.last * g.out_w, out + cols, T(0));
        }
    });
}

// x = col2im(col): x is overwritten (not added to).
template <class T>
void col2im(const T* col, const ConvGeometry& g, T* x, std::int64_t ld) {
    const std::int64_t kernel = g.kernel_h * g.kernel_w, cols = g.col_cols();
    const std::int64_t grain = grain_for(kernel * cols);
    parallel_for(0, g.channels, grain, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t c = begin; c < end; ++c) {
            T* plane = x + c * g.height * g.width;
            std::fill(plane, plane + g.height * g.width, T(0));
            for (std::int64_t i = 0; i < g.kernel_h; ++i) {
                for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                    const T* src = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
                    const std::int64_t row_offset = i * g.dilation_h - g.pad_h;
                    const std::int64_t col_offset = j * g.dilation_w - g.pad_w;
                    const ValidRange rows =
                        valid_outputs(g.out_h, g.height, g.stride_h, row_offset);
                    const ValidRange xs = valid_outputs(g.out_w, g.width, g.stride_w, col_offset);
                    for (std::int64_t oh = rows.first; oh < rows.last; ++oh) {
                        T* dst = plane + (oh * g.stride_h + row_offset) * g.width + col_offset;
                        const T* s = src + oh * g.out_w;
                        for (std::int64_t ow = xs.first; ow < xs.last; ++ow)
                            dst[ow * g.stride_w] += s[ow];
                    }
                }
            }
        }
    });
}

}  // namespace retort::cpu
