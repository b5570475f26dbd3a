// engine/kernels/interpolate.h: nearest and bilinear resizing on a GPU (rules in
// ops/interpolate.cpp). The per-axis tables (source rows/columns and weights) are built on the CPU
// exactly as the CPU path builds them and copied to the device; a thread computes one output
// pixel, or, in the backward pass, one input pixel: it gathers the gradients of the outputs that
// read it, in the CPU's order of additions (output row, output column, then the four taps).
#pragma once

#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

template <class T>
struct ResizeTables {
    const std::int64_t* row0;  // per output row: source rows i0, i1 and weights w0, w1
    const std::int64_t* row1;
    const T* row_w0;
    const T* row_w1;
    const std::int64_t* col0;  // per output column: likewise
    const std::int64_t* col1;
    const T* col_w0;
    const T* col_w1;
    const std::int64_t* row_first;  // per input row: the output rows that read it (a range)
    const std::int64_t* row_last;
    const std::int64_t* col_first;  // per input column: likewise
    const std::int64_t* col_last;
};

struct ResizeShape {
    std::int64_t H, W, OH, OW;
    bool bilinear;
};

template <class T>
struct ResizeForward {
    const T* x;
    T* y;
    ResizeShape s;
    ResizeTables<T> t;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t ow = j % s.OW, oh = j / s.OW % s.OH, plane = j / (s.OW * s.OH);
        const T* in = x + plane * s.H * s.W;
        if (!s.bilinear) {
            y[j] = in[t.row0[oh] * s.W + t.col0[ow]];
            return;
        }
        const T* top = in + t.row0[oh] * s.W;
        const T* bottom = in + t.row1[oh] * s.W;
        const std::int64_t w0 = t.col0[ow], w1 = t.col1[ow];
        const T t0 = top[w0] * t.col_w0[ow] + top[w1] * t.col_w1[ow];
        const T t1 = bottom[w0] * t.col_w0[ow] + bottom[w1] * t.col_w1[ow];
        y[j] = t0 * t.row_w0[oh] + t1 * t.row_w1[oh];
    }
};

template <class T>
struct ResizeBackward {
    const T* dy;
    T* dx;
    ResizeShape s;
    ResizeTables<T> t;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t w = j % s.W, h = j / s.W % s.H, plane = j / (s.W * s.H);
        T total = T(0);
        for (std::int64_t oh = t.row_first[h]; oh <= t.row_last[h]; ++oh) {
            const T* g = dy + (plane * s.OH + oh) * s.OW;
            for (std::int64_t ow = t.col_first[w]; ow <= t.col_last[w]; ++ow) {
                if (!s.bilinear) {
                    if (t.row0[oh] == h && t.col0[ow] == w) total += g[ow];
                    continue;
                }
                // the four taps in the CPU's order: top-left, top-right, bottom-left, bottom-right
                const bool top = t.row0[oh] == h, bottom = t.row1[oh] == h;
                const bool left = t.col0[ow] == w, right = t.col1[ow] == w;
                if (top && left) total += t.row_w0[oh] * t.col_w0[ow] * g[ow];
                if (top && right) total += t.row_w0[oh] * t.col_w1[ow] * g[ow];
                if (bottom && left) total += t.row_w1[oh] * t.col_w0[ow] * g[ow];
                if (bottom && right) total += t.row_w1[oh] * t.col_w1[ow] * g[ow];
            }
        }
        dx[j] = total;
    }
};

}  // namespace retort::kernels
