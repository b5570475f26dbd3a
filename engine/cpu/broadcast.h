// engine/cpu/broadcast.h: the loop behind every broadcasting elementwise op.
//
// Given the output shape and the shapes of N inputs, broadcast_rows() calls
//     row(out_begin, count, in_offset[N], in_step[N])
// for runs of output elements that are contiguous in the output and advance each input by a
// constant step (1, or 0 where that input is broadcast). The op's lambda runs the innermost loop.
//
// Before looping, adjacent dims that are laid out alike in every operand are merged, so adding a
// (1, C, 1, 1) bias to a (B, C, H, W) map runs rows of H*W elements, not of W.
#pragma once

#include <array>
#include <cstdint>

#include "engine/parallel.h"
#include "engine/shape.h"

namespace retort::cpu {

template <std::size_t N>
struct BroadcastPlan {
    Shape sizes;                          // merged output dims
    std::array<Shape, N> strides;         // per input, in its own elements (0 = broadcast)
};

template <std::size_t N>
BroadcastPlan<N> plan_broadcast(const Shape& out, const std::array<const Shape*, N>& inputs) {
    const std::size_t rank = out.size();
    BroadcastPlan<N> plan;
    // strides of each input expressed in the output's dims
    std::array<Shape, N> full;
    for (std::size_t k = 0; k < N; ++k) {
        const Shape& s = *inputs[k];
        full[k].assign(rank, 0);
        std::int64_t stride = 1;
        for (std::size_t i = 0; i < s.size(); ++i) {
            std::size_t in_dim = s.size() - 1 - i, out_dim = rank - 1 - i;
            full[k][out_dim] = s[in_dim] == 1 ? 0 : stride;
            stride *= s[in_dim];
        }
    }
    // merge dim i into dim i+1 when, for every input, stepping i equals stepping i+1 size times
    for (std::size_t i = 0; i < rank; ++i) {
        if (out[i] == 1) continue;  // size-1 dims carry no information
        bool merge = !plan.sizes.empty();
        for (std::size_t k = 0; k < N && merge; ++k)
            merge = plan.strides[k].back() == full[k][i] * out[i];
        if (merge) {
            plan.sizes.back() *= out[i];
            for (std::size_t k = 0; k < N; ++k) plan.strides[k].back() = full[k][i];
        } else {
            plan.sizes.push_back(out[i]);
            for (std::size_t k = 0; k < N; ++k) plan.strides[k].push_back(full[k][i]);
        }
    }
    if (plan.sizes.empty()) {  // a scalar, or all dims of size 1
        plan.sizes.push_back(1);
        for (std::size_t k = 0; k < N; ++k) plan.strides[k].push_back(0);
    }
    return plan;
}

template <std::size_t N, class RowFn>
void broadcast_rows(const Shape& out, const std::array<const Shape*, N>& inputs, RowFn row) {
    BroadcastPlan<N> plan = plan_broadcast<N>(out, inputs);
    const int rank = static_cast<int>(plan.sizes.size());
    const std::int64_t inner = plan.sizes.back();
    std::int64_t rows = 1;
    for (int i = 0; i + 1 < rank; ++i) rows *= plan.sizes[i];
    if (rows * inner == 0) return;
    std::array<std::int64_t, N> step;
    for (std::size_t k = 0; k < N; ++k) step[k] = plan.strides[k].back();

    if (rows == 1) {  // one long row: split it into chunks
        parallel_for(0, inner, 16384, [&](std::int64_t b, std::int64_t e) {
            std::array<std::int64_t, N> offset;
            for (std::size_t k = 0; k < N; ++k) offset[k] = b * step[k];
            row(b, e - b, offset, step);
        });
        return;
    }
    parallel_for(0, rows, grain_for(inner, 16384), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t r = b; r < e; ++r) {
            std::array<std::int64_t, N> offset{};
            std::int64_t rest = r;
            for (int d = rank - 2; d >= 0; --d) {  // row index -> per-input offsets
                std::int64_t idx = rest % plan.sizes[d];
                rest /= plan.sizes[d];
                for (std::size_t k = 0; k < N; ++k) offset[k] += idx * plan.strides[k][d];
            }
            row(r * inner, inner, offset, step);
        }
    });
}

// out[i] = f(a[i]) over n contiguous elements, threaded.
template <class A, class R, class F>
void map(const A* a, R* out, std::int64_t n, F f) {
    parallel_for(0, n, 16384, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) out[i] = f(a[i]);
    });
}

// out = f(a, b) with broadcasting; out has shape `out_shape`.
template <class A, class B, class R, class F>
void map2(const A* a, const Shape& as, const B* b, const Shape& bs, R* out, const Shape& out_shape,
          F f) {
    broadcast_rows<2>(out_shape, {&as, &bs},
                      [&](std::int64_t o, std::int64_t n, const std::array<std::int64_t, 2>& off,
                          const std::array<std::int64_t, 2>& step) {
                          const A* pa = a + off[0];
                          const B* pb = b + off[1];
                          R* po = out + o;
                          // the common cases get loops the compiler can vectorize
                          if (step[0] == 1 && step[1] == 1)
                              for (std::int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
                          else if (step[0] == 1 && step[1] == 0)
                              for (std::int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[0]);
                          else if (step[0] == 0 && step[1] == 1)
                              for (std::int64_t i = 0; i < n; ++i) po[i] = f(pa[0], pb[i]);
                          else
                              for (std::int64_t i = 0; i < n; ++i)
                                  po[i] = f(pa[i * step[0]], pb[i * step[1]]);
                      });
}

// out = f(a, b, c) with broadcasting (where, lerp-like ops).
template <class A, class B, class C, class R, class F>
void map3(const A* a, const Shape& as, const B* b, const Shape& bs, const C* c, const Shape& cs,
          R* out, const Shape& out_shape, F f) {
    broadcast_rows<3>(out_shape, {&as, &bs, &cs},
                      [&](std::int64_t o, std::int64_t n, const std::array<std::int64_t, 3>& off,
                          const std::array<std::int64_t, 3>& step) {
                          for (std::int64_t i = 0; i < n; ++i)
                              out[o + i] = f(a[off[0] + i * step[0]], b[off[1] + i * step[1]],
                                             c[off[2] + i * step[2]]);
                      });
}

}  // namespace retort::cpu
