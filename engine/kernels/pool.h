// engine/kernels/pool.h: max and average pooling on a GPU (rules in ops/pool.cpp). The CPU
// tabulates each axis's windows; a GPU thread computes its window from the rule instead
// (PoolAxisRule), and the backward passes are gathers: each input element sums, in output order,
// the gradients of the windows that contain it (for max pooling, of those it won), which is the
// order the CPU adds them in.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

// The windows along one axis: sliding (kernel, stride, padding; the last window is cut at the
// right padding) or adaptive (window o spans [floor(o in / out), ceil((o + 1) in / out))).
struct PoolAxisRule {
    std::int64_t in, out, kernel, stride, pad;
    bool adaptive;

    // Output o reads input [first, last); `padded` is its length counting padding.
    RETORT_HD void window(std::int64_t o, std::int64_t& first, std::int64_t& last,
                          std::int64_t& padded) const {
        if (adaptive) {
            first = o * in / out;
            last = ((o + 1) * in + out - 1) / out;
            padded = last - first;
            return;
        }
        const std::int64_t start = o * stride - pad;
        const std::int64_t end = start + kernel < in + pad ? start + kernel : in + pad;
        first = start > 0 ? start : 0;
        last = end < in ? end : in;
        padded = end - start;
    }
    // A range [lo, hi] of outputs that contains every window holding input i (maybe a few
    // more: callers check with window()).
    RETORT_HD void candidates(std::int64_t i, std::int64_t& lo, std::int64_t& hi) const {
        if (adaptive) {
            lo = i * out / in - 1;
            hi = (i + 1) * out / in + 1;
        } else {
            const std::int64_t reach = i + pad - kernel + 1;  // the first start that covers i
            lo = reach <= 0 ? 0 : (reach + stride - 1) / stride;
            hi = (i + pad) / stride;
        }
        lo = lo < 0 ? 0 : lo;
        hi = hi > out - 1 ? out - 1 : hi;
    }
};

struct PoolShape {
    std::int64_t planes, H, W;
    PoolAxisRule rows, cols;
};

// y = the max of each window (a NaN wins); winner (may be null) = its index h * W + w.
template <class T>
struct MaxPoolForward {
    const T* x;
    T* y;
    std::int64_t* winner;
    PoolShape s;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t OW = s.cols.out, OH = s.rows.out;
        const std::int64_t ow = j % OW, oh = j / OW % OH, plane = j / (OW * OH);
        std::int64_t h0, h1, w0, w1, unused;
        s.rows.window(oh, h0, h1, unused);
        s.cols.window(ow, w0, w1, unused);
        const T* in = x + plane * s.H * s.W;
        T best = T(-INFINITY);
        std::int64_t where = h0 * s.W + w0;
        for (std::int64_t h = h0; h < h1; ++h)
            for (std::int64_t w = w0; w < w1; ++w) {
                const T v = in[h * s.W + w];
                if (v > best || v != v) {
                    best = v;
                    where = h * s.W + w;
                }
            }
        y[j] = best;
        if (winner != nullptr) winner[j] = where;
    }
};

template <class T>
struct MaxPoolBackward {
    const T* dy;
    const std::int64_t* winner;
    T* dx;
    PoolShape s;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t w = j % s.W, h = j / s.W % s.H, plane = j / (s.W * s.H);
        const std::int64_t OW = s.cols.out, OH = s.rows.out, me = h * s.W + w;
        std::int64_t oh0, oh1, ow0, ow1;
        s.rows.candidates(h, oh0, oh1);
        s.cols.candidates(w, ow0, ow1);
        T total = T(0);
        for (std::int64_t oh = oh0; oh <= oh1; ++oh)
            for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
                const std::int64_t o = (plane * OH + oh) * OW + ow;
                if (winner[o] == me) total += dy[o];  // a winner lies in its own window
            }
        dx[j] = total;
    }
};

// The divisor of output (oh, ow): the padded window's size, or the number of input elements.
RETORT_HD inline std::int64_t pool_count(const PoolShape& s, std::int64_t oh, std::int64_t ow,
                                         bool count_padding) {
    std::int64_t h0, h1, hp, w0, w1, wp;
    s.rows.window(oh, h0, h1, hp);
    s.cols.window(ow, w0, w1, wp);
    return count_padding ? hp * wp : (h1 - h0) * (w1 - w0);
}

template <class T>
struct AvgPoolForward {
    const T* x;
    T* y;
    PoolShape s;
    bool count_padding;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t OW = s.cols.out, OH = s.rows.out;
        const std::int64_t ow = j % OW, oh = j / OW % OH, plane = j / (OW * OH);
        std::int64_t h0, h1, w0, w1, unused;
        s.rows.window(oh, h0, h1, unused);
        s.cols.window(ow, w0, w1, unused);
        const T* in = x + plane * s.H * s.W;
        T sum = T(0);
        for (std::int64_t h = h0; h < h1; ++h)
            for (std::int64_t w = w0; w < w1; ++w) sum += in[h * s.W + w];
        const std::int64_t count = pool_count(s, oh, ow, count_padding);
        y[j] = count > 0 ? sum / T(count) : T(0);
    }
};

template <class T>
struct AvgPoolBackward {
    const T* dy;
    T* dx;
    PoolShape s;
    bool count_padding;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t w = j % s.W, h = j / s.W % s.H, plane = j / (s.W * s.H);
        const std::int64_t OW = s.cols.out, OH = s.rows.out;
        std::int64_t oh0, oh1, ow0, ow1;
        s.rows.candidates(h, oh0, oh1);
        s.cols.candidates(w, ow0, ow1);
        T total = T(0);
        for (std::int64_t oh = oh0; oh <= oh1; ++oh) {
            std::int64_t h0, h1, unused;
            s.rows.window(oh, h0, h1, unused);
            if (h < h0 || h >= h1) continue;
            for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
                std::int64_t w0, w1;
                s.cols.window(ow, w0, w1, unused);
                if (w < w0 || w >= w1) continue;
                const std::int64_t count = pool_count(s, oh, ow, count_padding);
                if (count > 0) total += dy[(plane * OH + oh) * OW + ow] / T(count);
            }
        }
        dx[j] = total;
    }
};

}  // namespace retort::kernels
