// engine/ops/unary_op.h: the one function behind every unary elementwise op and activation.
//
// unary_op(x, name, f) computes y = f.forward(x) elementwise and records a node whose backward
// computes dx = f.backward(x, y, dy) elementwise. f is a functor from engine/math/unary.h.
// Saved for backward: x and/or y, whichever the functor's derivative reads (F::uses_x, F::uses_y);
// they are views of existing tensors, so nothing is copied, but saving one keeps it alive.
// Float GELU, sigmoid and SiLU run the wide loops of engine/cpu/wide_unary.h instead. On a GPU
// the kernels of engine/kernels/elementwise.h apply the same functor, one element per thread.
#pragma once

#include "engine/autograd.h"
#include "engine/cpu/broadcast.h"
#include "engine/cpu/wide_unary.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/tensor.h"

namespace retort {

template <class F>
Tensor unary_op(const Tensor& x, const char* name, F f) {
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    visit_floating(x.dtype(), name, [&]<class T>(Type<T>) {
        if (x.device().is_cuda())
            cuda::launch(x.device(), x.numel(),
                         kernels::UnaryForward<F, T>{x.device_data<T>(), y.device_data<T>(), f});
        else if constexpr (std::is_same_v<T, float> && cpu::has_wide_unary<F>)
            cpu::wide_forward<F>(x.data<float>(), y.data<float>(), x.numel());
        else
            cpu::map(x.data<T>(), y.data<T>(), x.numel(),
                     [f](T v) { return f.template forward<T>(v); });
    });
    if (!needs_grad({x})) return y;
    record(y, name, {x},
           [sx = F::uses_x ? x.detach() : Tensor(), sy = F::uses_y ? y.detach() : Tensor(),
            f](const Tensor& dy) {
        Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
        visit_floating(dy.dtype(), "backward", [&]<class T>(Type<T>) {
            if (dy.device().is_cuda()) {
                cuda::launch(dy.device(), dy.numel(),
                             kernels::UnaryBackward<F, T>{
                                 F::uses_x ? sx.template device_data<T>() : nullptr,
                                 F::uses_y ? sy.template device_data<T>() : nullptr,
                                 dy.device_data<T>(), dx.device_data<T>(), f});
                return;
            }
            const T* xs = F::uses_x ? sx.template data<T>() : nullptr;
            const T* ys = F::uses_y ? sy.template data<T>() : nullptr;
            const T* gs = dy.data<T>();
            T* out = dx.data<T>();
            if constexpr (std::is_same_v<T, float> && cpu::has_wide_unary<F>) {
                cpu::wide_backward<F>(xs, ys, gs, out, dy.numel());
                return;
            }
            parallel_for(0, dy.numel(), 16384, [&](std::int64_t b, std::int64_t e) {
                for (std::int64_t i = b; i < e; ++i)
                    out[i] = f.template backward<T>(F::uses_x ? xs[i] : T(0),
                                                    F::uses_y ? ys[i] : T(0), gs[i]);
            });
        });
        return std::vector<Tensor>{dx};
    });
    return y;
}

}  // namespace retort
