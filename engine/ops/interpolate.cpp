// engine/ops/interpolate.cpp: resizing (B, C, H, W) maps by nearest or bilinear sampling.
//
// Shapes: x (B, C, H, W) -> (B, C, OH, OW); OH, OW come from `size`, or are
// floor(H * scale_factor), floor(W * scale_factor).
// Matches torch.nn.functional.interpolate, modes 'nearest' and 'bilinear' (align_corners true or
// false), with PyTorch's source coordinates for output index dst along an axis of input size `in`
// and output size `out`:
//   scale    = 1 / scale_factor when scale_factor was given, else in / out
//   nearest  src = min(floor(dst * scale), in - 1), in float, as PyTorch (out == in and
//            out == 2 * in are exact shortcuts there, so here too)
//   bilinear align_corners: src = dst * (in - 1) / (out - 1)
//            otherwise:     src = max((dst + 0.5) * scale - 0.5, 0)
//            then i0 = floor(src), i1 = min(i0 + 1, in - 1), weights (1 - frac, frac); out == in
//            is the identity.
// Each axis gets a table (source indices and weights per output row or column); an output pixel
// is then 1 input (nearest) or a weighted sum of 4 (bilinear), rows first, as PyTorch sums them.
// Backward: every output's gradient is added back to its source pixels with the same weights.
// Planes (b, c) are split among threads; inside a plane the outputs are visited in order and
// added serially, so the result does not depend on the thread count. Saved: only sizes and
// options (the tables are rebuilt in backward; they are O(OH + OW)). On a GPU the same tables
// drive the kernels of engine/kernels/interpolate.h.
#include "engine/ops/interpolate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/interpolate.h"
#include "engine/parallel.h"

namespace retort {

namespace {

// Everything that defines the resampling of one (H, W) plane.
struct Resize {
    std::array<std::int64_t, 2> in, out;
    std::optional<std::array<double, 2>> scale_factor;
    bool bilinear = false;
    bool align_corners = false;
};

// Along one axis: output index -> source indices i0, i1 and their weights w0, w1.
template <class T>
struct AxisTable {
    std::vector<std::int64_t> i0, i1;
    std::vector<T> w0, w1;
};

// PyTorch's scale from output to input coordinates (compute_scales_value), in type S.
template <class S>
S source_scale(const Resize& r, int axis) {
    if (r.scale_factor) return static_cast<S>(1.0 / (*r.scale_factor)[axis]);
    return static_cast<S>(r.in[axis]) / static_cast<S>(r.out[axis]);
}

template <class T>
AxisTable<T> nearest_table(const Resize& r, int axis) {
    const std::int64_t in = r.in[axis], out = r.out[axis];
    const float scale = source_scale<float>(r, axis);  // float even for f64 input, as PyTorch
    AxisTable<T> t;
    for (std::int64_t dst = 0; dst < out; ++dst) {
        std::int64_t src;
        if (out == in)
            src = dst;
        else if (out == 2 * in)
            src = dst / 2;
        else
            src = std::min(static_cast<std::int64_t>(std::floor(static_cast<float>(dst) * scale)), in - 1);
        t.i0.push_back(src);
    }
    return t;
}

template <class T>
AxisTable<T> bilinear_table(const Resize& r, int axis) {
    const std::int64_t in = r.in[axis], out = r.out[axis];
    AxisTable<T> t;
    T scale;
    if (r.align_corners)
        scale = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
    else
        scale = source_scale<T>(r, axis);
    for (std::int64_t dst = 0; dst < out; ++dst) {
        if (out == in) {
            t.i0.push_back(dst);
            t.i1.push_back(dst);
            t.w0.push_back(T(1));
            t.w1.push_back(T(0));
            continue;
        }
        T src;
        if (r.align_corners) {
            src = scale * static_cast<T>(dst);
        } else {
            // PyTorch evaluates this line in double, then rounds to T
            src = static_cast<T>(static_cast<double>(scale) * (static_cast<double>(dst) + 0.5) - 0.5);
            src = std::max(src, T(0));  // the first outputs would look left of pixel 0
        }
        const std::int64_t i0 = static_cast<std::int64_t>(src);  // floor: src >= 0
        const T frac = std::clamp(src - static_cast<T>(i0), T(0), T(1));
        t.i0.push_back(i0);
        t.i1.push_back(i0 < in - 1 ? i0 + 1 : i0);
        t.w0.push_back(T(1) - frac);
        t.w1.push_back(frac);
    }
    return t;
}

template <class T>
void nearest_forward(const T* x, T* y, std::int64_t planes, const Resize& r) {
    const AxisTable<T> th = nearest_table<T>(r, 0), tw = nearest_table<T>(r, 1);
    const std::int64_t H = r.in[0], W = r.in[1], OH = r.out[0], OW = r.out[1];
    parallel_for(0, planes * OH, grain_for(OW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t row = b; row < e; ++row) {
            const T* src = x + (row / OH) * H * W + th.i0[row % OH] * W;
            T* dst = y + row * OW;
            for (std::int64_t ow = 0; ow < OW; ++ow) dst[ow] = src[tw.i0[ow]];
        }
    });
}

template <class T>
void bilinear_forward(const T* x, T* y, std::int64_t planes, const Resize& r) {
    const AxisTable<T> th = bilinear_table<T>(r, 0), tw = bilinear_table<T>(r, 1);
    const std::int64_t H = r.in[0], W = r.in[1], OH = r.out[0], OW = r.out[1];
    parallel_for(0, planes * OH, grain_for(4 * OW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t row = b; row < e; ++row) {
            const std::int64_t oh = row % OH;
            const T* top = x + (row / OH) * H * W + th.i0[oh] * W;
            const T* bottom = x + (row / OH) * H * W + th.i1[oh] * W;
            T* dst = y + row * OW;
            for (std::int64_t ow = 0; ow < OW; ++ow) {
                const std::int64_t w0 = tw.i0[ow], w1 = tw.i1[ow];
                const T t0 = top[w0] * tw.w0[ow] + top[w1] * tw.w1[ow];
                const T t1 = bottom[w0] * tw.w0[ow] + bottom[w1] * tw.w1[ow];
                dst[ow] = t0 * th.w0[oh] + t1 * th.w1[oh];
            }
        }
    });
}

// dx (zeroed) += the adjoint of the resampling applied to dy; one thread per plane.
template <class T>
void resize_backward(const T* dy, T* dx, std::int64_t planes, const Resize& r) {
    const std::int64_t H = r.in[0], W = r.in[1], OH = r.out[0], OW = r.out[1];
    if (!r.bilinear) {
        const AxisTable<T> th = nearest_table<T>(r, 0), tw = nearest_table<T>(r, 1);
        parallel_for(0, planes, grain_for(OH * OW), [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t p = b; p < e; ++p)
                for (std::int64_t oh = 0; oh < OH; ++oh) {
                    const T* g = dy + (p * OH + oh) * OW;
                    T* row = dx + p * H * W + th.i0[oh] * W;
                    for (std::int64_t ow = 0; ow < OW; ++ow) row[tw.i0[ow]] += g[ow];
                }
        });
        return;
    }
    const AxisTable<T> th = bilinear_table<T>(r, 0), tw = bilinear_table<T>(r, 1);
    parallel_for(0, planes, grain_for(4 * OH * OW), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t p = b; p < e; ++p)
            for (std::int64_t oh = 0; oh < OH; ++oh) {
                const T* g = dy + (p * OH + oh) * OW;
                T* top = dx + p * H * W + th.i0[oh] * W;
                T* bottom = dx + p * H * W + th.i1[oh] * W;
                for (std::int64_t ow = 0; ow < OW; ++ow) {
                    const std::int64_t w0 = tw.i0[ow], w1 = tw.i1[ow];
                    top[w0] += th.w0[oh] * tw.w0[ow] * g[ow];
                    top[w1] += th.w0[oh] * tw.w1[ow] * g[ow];
                    bottom[w0] += th.w1[oh] * tw.w0[ow] * g[ow];
                    bottom[w1] += th.w1[oh] * tw.w1[ow] * g[ow];
                }
            }
    });
}

// ---- on a GPU (engine/kernels/interpolate.h): the CPU's tables, copied to the device ----

// The tables and, per input row or column, the range of outputs that read it, as device tensors
// (kept alive by `held` while kernels use them).
template <class T>
kernels::ResizeTables<T> device_tables(const Resize& r, Device device, std::vector<Tensor>& held) {
    auto axis = [&](int a) {
        AxisTable<T> t = r.bilinear ? bilinear_table<T>(r, a) : nearest_table<T>(r, a);
        if (!r.bilinear) {  // nearest reads one source: the second tap is never used
            t.i1 = t.i0;
            t.w0.assign(t.i0.size(), T(1));
            t.w1.assign(t.i0.size(), T(0));
        }
        std::vector<std::int64_t> first(static_cast<std::size_t>(r.in[a]), 0);
        std::vector<std::int64_t> last(static_cast<std::size_t>(r.in[a]), -1);
        for (std::int64_t o = 0; o < r.out[a]; ++o)
            for (std::int64_t src : {t.i0[o], t.i1[o]}) {
                if (last[src] < 0) first[src] = o;
                last[src] = o;
            }
        return std::vector<Tensor>{from_vector(t.i0).to(device), from_vector(t.i1).to(device),
                                   from_vector(t.w0).to(device), from_vector(t.w1).to(device),
                                   from_vector(first).to(device), from_vector(last).to(device)};
    };
    const std::vector<Tensor> rows = axis(0), cols = axis(1);
    held.insert(held.end(), rows.begin(), rows.end());
    held.insert(held.end(), cols.begin(), cols.end());
    return {rows[0].device_data<std::int64_t>(), rows[1].device_data<std::int64_t>(),
            rows[2].device_data<T>(), rows[3].device_data<T>(),
            cols[0].device_data<std::int64_t>(), cols[1].device_data<std::int64_t>(),
            cols[2].device_data<T>(), cols[3].device_data<T>(),
            rows[4].device_data<std::int64_t>(), rows[5].device_data<std::int64_t>(),
            cols[4].device_data<std::int64_t>(), cols[5].device_data<std::int64_t>()};
}

kernels::ResizeShape resize_shape(const Resize& r) {
    return {r.in[0], r.in[1], r.out[0], r.out[1], r.bilinear};
}

Resize plan_resize(const Tensor& x, const InterpolateOptions& o) {
    require(x.defined(), "interpolate: undefined input");
    require(x.dim() == 4, "interpolate: expected an input of shape (B, C, H, W), got ",
            shape_str(x.shape()));
    require(x.shape()[2] > 0 && x.shape()[3] > 0, "interpolate: input of shape ",
            shape_str(x.shape()), " has an empty plane");
    require(o.mode == "nearest" || o.mode == "bilinear", "interpolate: unknown mode \"", o.mode,
            "\" (expected \"nearest\" or \"bilinear\")");
    require(o.mode == "bilinear" || !o.align_corners,
            "interpolate: align_corners applies to mode \"bilinear\" only, not \"", o.mode, "\"");
    require(o.size.has_value() != o.scale_factor.has_value(),
            "interpolate: give exactly one of size and scale_factor");

    Resize r;
    r.in = {x.shape()[2], x.shape()[3]};
    r.bilinear = o.mode == "bilinear";
    r.align_corners = o.align_corners;
    r.scale_factor = o.scale_factor;
    if (o.size) {
        r.out = *o.size;
    } else {
        const auto [sh, sw] = *o.scale_factor;
        require(std::isfinite(sh) && std::isfinite(sw) && sh > 0 && sw > 0,
                "interpolate: scale_factor must be positive, got (", sh, ", ", sw, ")");
        for (int a = 0; a < 2; ++a)
            r.out[a] = static_cast<std::int64_t>(std::floor(static_cast<double>(r.in[a]) *
                                                            (*o.scale_factor)[a]));
    }
    require(r.out[0] > 0 && r.out[1] > 0, "interpolate: output size (", r.out[0], ", ", r.out[1],
            ") must be positive (input shape ", shape_str(x.shape()), ")");
    return r;
}

}  // namespace

Tensor interpolate(const Tensor& x, const InterpolateOptions& options) {
    const Resize r = plan_resize(x, options);
    const Shape& s = x.shape();
    const std::int64_t planes = s[0] * s[1];
    Tensor y = Tensor::empty({s[0], s[1], r.out[0], r.out[1]}, x.dtype(), x.device());
    visit_floating(x.dtype(), "interpolate", [&]<class T>(Type<T>) {
        if (x.device().is_cuda()) {
            std::vector<Tensor> held;
            cuda::launch(x.device(), y.numel(),
                         kernels::ResizeForward<T>{x.device_data<T>(), y.device_data<T>(),
                                                   resize_shape(r),
                                                   device_tables<T>(r, x.device(), held)});
        } else if (r.bilinear)
            bilinear_forward(x.data<T>(), y.data<T>(), planes, r);
        else
            nearest_forward(x.data<T>(), y.data<T>(), planes, r);
    });
    record(y, r.bilinear ? "interpolate_bilinear" : "interpolate_nearest", {x},
           [r, shape = s, planes](const Tensor& dy) {
               if (dy.device().is_cuda()) {
                   Tensor dx = Tensor::empty(shape, dy.dtype(), dy.device());
                   visit_floating(dy.dtype(), "interpolate backward", [&]<class T>(Type<T>) {
                       std::vector<Tensor> held;
                       cuda::launch(dy.device(), dx.numel(),
                                    kernels::ResizeBackward<T>{
                                        dy.device_data<T>(), dx.device_data<T>(), resize_shape(r),
                                        device_tables<T>(r, dy.device(), held)});
                   });
                   return std::vector<Tensor>{dx};
               }
               Tensor dx = zeros(shape, dy.dtype());
               visit_floating(dy.dtype(), "interpolate backward", [&]<class T>(Type<T>) {
                   resize_backward(dy.data<T>(), dx.data<T>(), planes, r);
               });
               return std::vector<Tensor>{dx};
           });
    return y;
}

}  // namespace retort
