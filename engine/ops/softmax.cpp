// engine/ops/softmax.cpp: softmax and log_softmax along one dim.
// Shapes: x (..., K, ...) -> y of the same shape. The tensor is viewed as [outer][K][inner], K the
// softmax dim, so each of the outer * inner lines of K values is normalized on its own.
// Matches torch.softmax and torch.log_softmax (a 0-dim tensor counts as shape (1,), as there).
// Stability: each line's max is subtracted before exp, so exp never overflows.
// Backward saves y only (x is not needed):
//   softmax:     dx = y * (dy - sum_k(dy * y))
//   log_softmax: dx = dy - exp(y) * sum_k(dy)
// Determinism: every line is computed start to end by one thread, in a fixed order.
// Speed: a line along the last dim (the usual case) runs vectorized loops (softmax_row).
// On a GPU: one thread per line, engine/kernels/softmax.h.
#include "engine/ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/softmax.h"
#include "engine/math/fast_float.h"
#include "engine/parallel.h"

namespace retort {

namespace {

// Lines are processed in blocks of up to kColumns neighbours along `inner`, so the loop over K
// reads contiguous memory even when the softmax dim is not the last one (the classes of a
// (B, K, H, W) segmentation map, say). When inner == 1 a block is a single line.
constexpr std::int64_t kColumns = 64;

// Calls block(offset of the block's first element, width) for every block of lines, threaded.
template <class F>
void for_each_line_block(DimSplit s, F block) {
    const std::int64_t blocks_per_slab = (s.inner + kColumns - 1) / kColumns;
    const std::int64_t width_max = std::min(s.inner, kColumns);
    parallel_for(0, s.outer * blocks_per_slab, grain_for(s.size * width_max),
                 [&](std::int64_t b, std::int64_t e) {
                     for (std::int64_t t = b; t < e; ++t) {
                         std::int64_t o = t / blocks_per_slab;
                         std::int64_t c0 = (t % blocks_per_slab) * kColumns;
                         block(o * s.size * s.inner + c0, std::min(kColumns, s.inner - c0));
                     }
                 });
}

// y = softmax(x) or log_softmax(x) for `width` adjacent lines; element (k, c) is at
// [k * inner + c].
template <class T>
void softmax_lines(const T* x, T* y, std::int64_t K, std::int64_t inner, std::int64_t width,
                   bool log) {
    T shift[kColumns], total[kColumns];
    for (std::int64_t c = 0; c < width; ++c) {
        shift[c] = -std::numeric_limits<T>::infinity();
        total[c] = T(0);
    }
    for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t c = 0; c < width; ++c) shift[c] = std::max(shift[c], x[k * inner + c]);
    for (std::int64_t k = 0; k < K; ++k) {
        for (std::int64_t c = 0; c < width; ++c) {
            T e = std::exp(x[k * inner + c] - shift[c]);
            total[c] += e;
            if (!log) y[k * inner + c] = e;  // kept, to be divided by the total below
        }
    }
    for (std::int64_t c = 0; c < width; ++c)
        if (log) shift[c] += std::log(total[c]);  // log_softmax = x - (max + log(sum))
    for (std::int64_t k = 0; k < K; ++k) {
        for (std::int64_t c = 0; c < width; ++c) {
            std::int64_t at = k * inner + c;
            y[at] = log ? x[at] - shift[c] : y[at] / total[c];
        }
    }
}

// One contiguous line (the softmax dim is the last one, inner == 1: logits, attention scores).
// Here the loops over K are unit-stride, so they vectorize: the sums are split across vector
// lanes (a fixed order, the same every run on a given CPU) and exp is the vectorizable float one.
template <class T>
void softmax_row(const T* x, T* y, std::int64_t K, bool log) {
    T shift = -std::numeric_limits<T>::infinity();
    for (std::int64_t k = 0; k < K; ++k) shift = std::max(shift, x[k]);
    T total = T(0);
    if (log) {
#if defined(_OPENMP) || defined(RETORT_OPENMP_SIMD)
#pragma omp simd reduction(+ : total)
#endif
        for (std::int64_t k = 0; k < K; ++k) total += math::fast_exp(x[k] - shift);
        shift += std::log(total);
        for (std::int64_t k = 0; k < K; ++k) y[k] = x[k] - shift;
        return;
    }
#if defined(_OPENMP) || defined(RETORT_OPENMP_SIMD)
#pragma omp simd reduction(+ : total)
#endif
    for (std::int64_t k = 0; k < K; ++k) {
        const T e = math::fast_exp(x[k] - shift);
        y[k] = e;
        total += e;
    }
    const T inverse = T(1) / total;
    for (std::int64_t k = 0; k < K; ++k) y[k] *= inverse;
}

template <class T>
void softmax_backward_row(const T* y, const T* dy, T* dx, std::int64_t K, bool log) {
    T total = T(0);
    if (log) {
#if defined(_OPENMP) || defined(RETORT_OPENMP_SIMD)
#pragma omp simd reduction(+ : total)
#endif
        for (std::int64_t k = 0; k < K; ++k) total += dy[k];
        for (std::int64_t k = 0; k < K; ++k) dx[k] = dy[k] - math::fast_exp(y[k]) * total;
        return;
    }
#if defined(_OPENMP) || defined(RETORT_OPENMP_SIMD)
#pragma omp simd reduction(+ : total)
#endif
    for (std::int64_t k = 0; k < K; ++k) total += dy[k] * y[k];
    for (std::int64_t k = 0; k < K; ++k) dx[k] = y[k] * (dy[k] - total);
}

// dx for `width` adjacent lines, from the saved output y and the incoming gradient dy.
template <class T>
void softmax_backward_lines(const T* y, const T* dy, T* dx, std::int64_t K, std::int64_t inner,
                            std::int64_t width, bool log) {
    // softmax needs sum_k(dy * y); log_softmax needs sum_k(dy)
    T total[kColumns];
    for (std::int64_t c = 0; c < width; ++c) total[c] = T(0);
    for (std::int64_t k = 0; k < K; ++k) {
        for (std::int64_t c = 0; c < width; ++c) {
            std::int64_t at = k * inner + c;
            total[c] += log ? dy[at] : dy[at] * y[at];
        }
    }
    for (std::int64_t k = 0; k < K; ++k) {
        for (std::int64_t c = 0; c < width; ++c) {
            std::int64_t at = k * inner + c;
            dx[at] = log ? dy[at] - std::exp(y[at]) * total[c] : y[at] * (dy[at] - total[c]);
        }
    }
}

DimSplit softmax_split(const Shape& shape, int dim) {
    return split_at_dim(shape.empty() ? Shape{1} : shape, dim);
}

Tensor softmax_backward(const Tensor& dy, const Tensor& y, int dim, bool log) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
    const DimSplit s = softmax_split(y.shape(), dim);
    visit_floating(y.dtype(), log ? "log_softmax backward" : "softmax backward",
                   [&]<class T>(Type<T>) {
                       if (y.device().is_cuda()) {
                           cuda::launch(y.device(), s.outer * s.inner,
                                        kernels::SoftmaxBackwardLine<T>{
                                            y.device_data<T>(), dy.device_data<T>(),
                                            dx.device_data<T>(), s, log});
                           return;
                       }
                       const T* ys = y.data<T>();
                       const T* gs = dy.data<T>();
                       T* out = dx.data<T>();
                       for_each_line_block(s, [&](std::int64_t off, std::int64_t width) {
                           if (s.inner == 1)
                               softmax_backward_row(ys + off, gs + off, out + off, s.size, log);
                           else
                               softmax_backward_lines(ys + off, gs + off, out + off, s.size,
                                                      s.inner, width, log);
                       });
                   });
    return dx;
}

Tensor softmax_impl(const Tensor& x, std::int64_t dim, bool log) {
    const char* op = log ? "log_softmax" : "softmax";
    require(x.defined(), op, ": undefined tensor argument");
    const int d = normalize_dim(dim, std::max(x.dim(), 1), op);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    const DimSplit s = softmax_split(x.shape(), d);
    visit_floating(x.dtype(), op, [&]<class T>(Type<T>) {
        if (x.device().is_cuda()) {
            cuda::launch(x.device(), s.outer * s.inner,
                         kernels::SoftmaxLine<T>{x.device_data<T>(), y.device_data<T>(), s, log});
            return;
        }
        const T* xs = x.data<T>();
        T* ys = y.data<T>();
        for_each_line_block(s, [&](std::int64_t off, std::int64_t width) {
            if (s.inner == 1)
                softmax_row(xs + off, ys + off, s.size, log);
            else
                softmax_lines(xs + off, ys + off, s.size, s.inner, width, log);
        });
    });
    record(y, op, {x}, [sy = y.detach(), d, log](const Tensor& dy) {
        return std::vector<Tensor>{softmax_backward(dy, sy, d, log)};
    });
    return y;
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace retort
