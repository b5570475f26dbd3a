// engine/kernels/indexing.h: index_select, gather, scatter_add and pad on a GPU (their rules are
// in ops/shape_ops.cpp). Ops that accumulate (index_select's backward, scatter_add) are written
// as gathers: each output element scans the index entries that may point at it and adds their
// values in index order, which is the CPU's order, so no atomics and the same result every run.
// Index values are range-checked on the CPU before any of these run.
#pragma once

#include <cstdint>

#include "engine/kernels/broadcast_index.h"
#include "engine/math/hd.h"
#include "engine/shape.h"

namespace retort::kernels {

// A tensor's sizes and strides, for kernels that work in coordinates (rank <= kMaxKernelDims).
struct Layout {
    int rank = 0;
    std::int64_t sizes[kMaxKernelDims] = {};
    std::int64_t strides[kMaxKernelDims] = {};
};

inline Layout make_layout(const Shape& shape) {
    require(static_cast<int>(shape.size()) <= kMaxKernelDims, "a tensor of ", shape.size(),
            " dims: GPU kernels take at most ", kMaxKernelDims);
    Layout l;
    l.rank = static_cast<int>(shape.size());
    std::int64_t stride = 1;
    for (int d = l.rank - 1; d >= 0; --d) {
        l.sizes[d] = shape[d];
        l.strides[d] = stride;
        stride *= shape[d];
    }
    return l;
}

// out (x's shape with dim of size n) = x's rows idx[0..n) along dim; x viewed as [outer][size][inner].
template <class T, class I>
struct IndexSelect {
    const T* x;
    const I* index;
    T* out;
    DimSplit split;
    std::int64_t n;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t i = j % split.inner, k = j / split.inner % n, o = j / (split.inner * n);
        out[j] = x[(o * split.size + static_cast<std::int64_t>(index[k])) * split.inner + i];
    }
};

// index_select's backward: gx[o][r][i] = sum over k with index[k] == r of g[o][k][i].
template <class T, class I>
struct IndexAdd {
    const T* g;
    const I* index;
    T* gx;
    DimSplit split;  // of x
    std::int64_t n;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t i = j % split.inner, r = j / split.inner % split.size;
        const std::int64_t o = j / (split.inner * split.size);
        T total = T(0);
        for (std::int64_t k = 0; k < n; ++k)
            if (static_cast<std::int64_t>(index[k]) == r) total += g[(o * n + k) * split.inner + i];
        gx[j] = total;
    }
};

// out[e] = x at e's coordinates, except along dim, where it takes index[e].
template <class T, class I>
struct Gather {
    const T* x;
    const I* index;
    T* out;
    Layout index_layout, x_layout;
    int dim;
    RETORT_HD void operator()(std::int64_t e) const {
        std::int64_t rest = e, at = 0;
        for (int d = index_layout.rank - 1; d >= 0; --d) {
            const std::int64_t coord = rest % index_layout.sizes[d];
            rest /= index_layout.sizes[d];
            at += (d == dim ? static_cast<std::int64_t>(index[e]) : coord) * x_layout.strides[d];
        }
        out[e] = x[at];
    }
};

// out = x with src scattered in along dim: out[e] = x[e] + the src values whose index entry (at
// e's coordinates, any position j along dim) names e's coordinate along dim, in j order.
template <class T, class I>
struct ScatterAdd {
    const T* x;
    const I* index;
    const T* src;
    T* out;
    Layout x_layout, index_layout, src_layout;
    int dim;
    RETORT_HD void operator()(std::int64_t e) const {
        std::int64_t coords[kMaxKernelDims];
        std::int64_t rest = e;
        for (int d = x_layout.rank - 1; d >= 0; --d) {
            coords[d] = rest % x_layout.sizes[d];
            rest /= x_layout.sizes[d];
        }
        T total = x[e];
        bool covered = true;  // an index smaller than x leaves the rest of x untouched
        std::int64_t index_base = 0, src_base = 0;
        for (int d = 0; d < x_layout.rank; ++d) {
            if (d == dim) continue;
            covered = covered && coords[d] < index_layout.sizes[d];
            index_base += coords[d] * index_layout.strides[d];
            src_base += coords[d] * src_layout.strides[d];
        }
        if (covered)
            for (std::int64_t j = 0; j < index_layout.sizes[dim]; ++j)
                if (static_cast<std::int64_t>(index[index_base + j * index_layout.strides[dim]]) ==
                    coords[dim])
                    total += src[src_base + j * src_layout.strides[dim]];
        out[e] = total;
    }
};

enum class PadKind : int { constant, reflect, replicate };

// The input coordinate output coordinate o copies along a dim of size `in` padded by `left` on
// the left, or -1 for the constant fill (reflect does not repeat the edge, as PyTorch).
RETORT_HD inline std::int64_t pad_source(std::int64_t o, std::int64_t left, std::int64_t in,
                                         PadKind kind) {
    std::int64_t s = o - left;
    if (s >= 0 && s < in) return s;
    if (kind == PadKind::constant) return -1;
    if (kind == PadKind::reflect) return s < 0 ? -s : 2 * (in - 1) - s;
    return s < 0 ? 0 : in - 1;
}

// out = x padded: out's and x's layouts, and per dim the left padding (0 for unpadded dims).
template <class T>
struct Pad {
    const T* x;
    T* out;
    Layout out_layout, x_layout;
    std::int64_t left[kMaxKernelDims];
    PadKind kind;
    T value;
    RETORT_HD void operator()(std::int64_t e) const {
        std::int64_t rest = e, at = 0;
        for (int d = out_layout.rank - 1; d >= 0; --d) {
            const std::int64_t o = rest % out_layout.sizes[d];
            rest /= out_layout.sizes[d];
            const std::int64_t s = pad_source(o, left[d], x_layout.sizes[d], kind);
            if (s < 0) {
                out[e] = value;
                return;
            }
            at += s * x_layout.strides[d];
        }
        out[e] = x[at];
    }
};

// The backward of reflect and replicate padding, as a gather: gx at input coordinates c sums g
// over every output coordinate that copied it. Along one dim those are, in increasing order, up
// to three ranges: reflect (which does not repeat the edge) copies c to left - c, left + c and
// left + 2 (in - 1) - c; replicate copies c to left + c, and the edges also to all of the padding
// beside them. The outputs are visited in increasing flat index, the order the CPU adds them in.
template <class T>
struct PadBackward {
    const T* g;
    T* gx;
    Layout out_layout, x_layout;
    std::int64_t left[kMaxKernelDims];
    PadKind kind;

    // The candidate ranges [first[k], last[k]] of output coordinates along dim d for input c.
    RETORT_HD int ranges(int d, std::int64_t c, std::int64_t* first, std::int64_t* last) const {
        const std::int64_t in = x_layout.sizes[d], out = out_layout.sizes[d], l = left[d];
        int n = 0;
        auto add = [&](std::int64_t lo, std::int64_t hi) {
            lo = lo < 0 ? 0 : lo;
            hi = hi > out - 1 ? out - 1 : hi;
            if (lo <= hi && (n == 0 || lo > last[n - 1])) {
                first[n] = lo;
                last[n] = hi;
                ++n;
            }
        };
        if (kind == PadKind::reflect) {
            if (c > 0) add(l - c, l - c);
            add(l + c, l + c);
            if (c < in - 1) add(l + 2 * (in - 1) - c, l + 2 * (in - 1) - c);
        } else {  // replicate
            add(c == 0 ? 0 : l + c, c == in - 1 ? out - 1 : l + c);
        }
        return n;
    }

    RETORT_HD void operator()(std::int64_t e) const {
        const int rank = x_layout.rank;
        std::int64_t first[kMaxKernelDims][3], last[kMaxKernelDims][3];
        int count[kMaxKernelDims], which[kMaxKernelDims];
        std::int64_t at[kMaxKernelDims];  // the output coordinate being visited, per dim
        std::int64_t rest = e;
        for (int d = rank - 1; d >= 0; --d) {
            const std::int64_t c = rest % x_layout.sizes[d];
            rest /= x_layout.sizes[d];
            count[d] = ranges(d, c, first[d], last[d]);
            if (count[d] == 0) {  // cropped away: no output holds it
                gx[e] = T(0);
                return;
            }
            which[d] = 0;
            at[d] = first[d][0];
        }
        T total = T(0);
        while (true) {
            std::int64_t offset = 0;
            for (int d = 0; d < rank; ++d) offset += at[d] * out_layout.strides[d];
            total += g[offset];
            int d = rank - 1;  // the odometer: advance the innermost dim, carrying outwards
            for (; d >= 0; --d) {
                if (at[d] < last[d][which[d]]) {
                    ++at[d];
                    break;
                }
                if (which[d] + 1 < count[d]) {
                    ++which[d];
                    at[d] = first[d][which[d]];
                    break;
                }
                which[d] = 0;
                at[d] = first[d][0];
            }
            if (d < 0) break;
        }
        gx[e] = total;
    }
};

}  // namespace retort::kernels
