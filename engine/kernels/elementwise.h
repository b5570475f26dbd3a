// engine/kernels/elementwise.h: elementwise kernels, one output element per call.
// The CPU backend keeps its own row loops (faster there: they vectorize); these structs are what
// the CUDA backend launches, and tests/test_kernels.cpp runs them on the CPU against those loops.
#pragma once

#include <cstdint>

#include "engine/kernels/broadcast_index.h"
#include "engine/math/hd.h"

namespace retort::kernels {

// out[i] = op.apply(a[.], b[.]) with broadcasting (Op from engine/math/binary.h, or any struct
// with a RETORT_HD apply; one with parameters carries them in `op`).
template <class Op, class T>
struct Binary {
    const T* a;
    const T* b;
    T* out;
    BroadcastIndex<2> index;
    Op op{};
    RETORT_HD void operator()(std::int64_t i) const {
        std::int64_t at[2];
        index.offsets(i, at);
        out[i] = op.apply(a[at[0]], b[at[1]]);
    }
};

// out[i] = cond[.] != 0 ? a[.] : b[.] with broadcasting.
template <class C, class T>
struct Where {
    const C* cond;
    const T* a;
    const T* b;
    T* out;
    BroadcastIndex<3> index;
    RETORT_HD void operator()(std::int64_t i) const {
        std::int64_t at[3];
        index.offsets(i, at);
        out[i] = cond[at[0]] != C(0) ? a[at[1]] : b[at[2]];
    }
};

// out[i] = x[.]: x expanded to the output's shape (broadcast_to).
template <class T>
struct BroadcastCopy {
    const T* x;
    T* out;
    BroadcastIndex<1> index;
    RETORT_HD void operator()(std::int64_t i) const {
        std::int64_t at[1];
        index.offsets(i, at);
        out[i] = x[at[0]];
    }
};

// y[i] = f.forward(x[i]) (F from engine/math/unary.h).
template <class F, class T>
struct UnaryForward {
    const T* x;
    T* y;
    F f;
    RETORT_HD void operator()(std::int64_t i) const { y[i] = f.template forward<T>(x[i]); }
};

// dx[i] = f.backward(x[i], y[i], dy[i]); x or y may be null when F does not read it.
template <class F, class T>
struct UnaryBackward {
    const T* x;
    const T* y;
    const T* dy;
    T* dx;
    F f;
    RETORT_HD void operator()(std::int64_t i) const {
        dx[i] = f.template backward<T>(F::uses_x ? x[i] : T(0), F::uses_y ? y[i] : T(0), dy[i]);
    }
};

// x[i] *= factor, in place (gradient clipping, FFT norms).
template <class T>
struct Scale {
    T* x;
    T factor;
    RETORT_HD void operator()(std::int64_t i) const { x[i] = x[i] * factor; }
};

template <class T>
struct Fill {
    T* out;
    T value;
    RETORT_HD void operator()(std::int64_t i) const { out[i] = value; }
};

// dst[i] = src[i] converted, as static_cast does (what Tensor::to(dtype) means).
template <class S, class D>
struct Cast {
    const S* src;
    D* dst;
    RETORT_HD void operator()(std::int64_t i) const { dst[i] = static_cast<D>(src[i]); }
};

}  // namespace retort::kernels
