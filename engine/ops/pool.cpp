// engine/ops/pool.cpp: 2-D pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d.
//
// Shapes: x (B, C, H, W) or (C, H, W) -> (B, C, OH, OW) or (C, OH, OW). Each of the B * C planes
// is pooled on its own. Matches torch.nn.functional.max_pool2d, avg_pool2d (without
// divisor_override) and adaptive_avg_pool2d, including PyTorch's rules for:
//   output size  OH = floor_or_ceil((H + 2 ph - kh) / sh) + 1, and with ceil_mode the last window
//                must start inside the input or the left padding (else it is dropped);
//   windows      rows [oh sh - ph, oh sh - ph + kh) clipped to the input (padding never wins a
//                max: it counts as -inf);
//   avg divisor  count_include_pad: the window's size clipped to the padded input (so a window
//                that hangs past the right padding in ceil_mode counts fewer); otherwise the
//                number of input elements in the window;
//   adaptive     window i spans [floor(i H / OH), ceil((i + 1) H / OH)).
// Backward: max pooling sends each output's gradient to the element that won (its index is saved
// from the forward pass; ties go to the first, a NaN wins as in PyTorch); average pooling spreads
// it evenly over the window. Saved: the winners' indices (max) or nothing but sizes (average).
// Threads split the planes, so every sum is made by one thread in a fixed order. On a GPU the
// kernels of engine/kernels/pool.h compute the same windows and add in the same order.
#include "engine/ops/pool.h"

#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/pool.h"
#include "engine/ops.h"
#include "engine/parallel.h"

namespace retort {

namespace {

// The windows along one axis: output o reads input [first[o], last[o]); `padded[o]` is the
// window's length counting padding (avg_pool2d's divisor with count_include_pad).
struct PoolAxis {
    std::vector<std::int64_t> first, last, padded;
    std::int64_t size() const { return static_cast<std::int64_t>(first.size()); }
};

PoolAxis sliding_axis(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                      std::int64_t out) {
    PoolAxis axis;
    for (std::int64_t o = 0; o < out; ++o) {
        const std::int64_t start = o * stride - pad;
        const std::int64_t end = std::min(start + kernel, in + pad);
        axis.first.push_back(std::max<std::int64_t>(start, 0));
        axis.last.push_back(std::min(end, in));
        axis.padded.push_back(end - start);
    }
    return axis;
}

PoolAxis adaptive_axis(std::int64_t in, std::int64_t out) {
    PoolAxis axis;
    for (std::int64_t o = 0; o < out; ++o) {
        const std::int64_t first = o * in / out, last = ((o + 1) * in + out - 1) / out;
        axis.first.push_back(first);
        axis.last.push_back(last);
        axis.padded.push_back(last - first);
    }
    return axis;
}

// PyTorch's pooling output size (dilation 1).
std::int64_t pooled_size(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                         std::int64_t pad, bool ceil_mode) {
    const std::int64_t span = in + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0);
    std::int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
    // in ceil mode the last window must start inside the input or the left padding
    if (ceil_mode && (out - 1) * stride >= in + pad) --out;
    return out;
}

std::string pair_str(std::int64_t a, std::int64_t b) { return cat("(", a, ", ", b, ")"); }

// The input seen as `planes` planes of H x W, and the windows along each axis.
struct PoolPlan {
    std::int64_t planes = 0, H = 0, W = 0;
    PoolAxis rows, cols;
    kernels::PoolAxisRule row_rule{}, col_rule{};  // the same windows, as a GPU kernel computes them
    Shape out_shape;
    std::int64_t OH() const { return rows.size(); }
    std::int64_t OW() const { return cols.size(); }
};

PoolPlan plan_planes(const Tensor& x, const char* op) {
    require(x.defined(), op, ": undefined tensor argument");
    require(x.dim() == 3 || x.dim() == 4, op,
            ": expected an input of shape (B, C, H, W) or (C, H, W), got ", shape_str(x.shape()));
    require(is_floating(x.dtype()), op, ": expected a floating-point tensor, got ",
            dtype_name(x.dtype()));
    PoolPlan p;
    p.H = x.size(-2);
    p.W = x.size(-1);
    require(p.H > 0 && p.W > 0, op, ": the input ", shape_str(x.shape()),
            " has an empty plane (H and W must be positive)");
    p.planes = x.numel() / (p.H * p.W);
    return p;
}

void set_out_shape(PoolPlan& p, const Tensor& x) {
    p.out_shape = x.shape();
    p.out_shape[p.out_shape.size() - 2] = p.OH();
    p.out_shape[p.out_shape.size() - 1] = p.OW();
}

PoolPlan plan_pool(const Tensor& x, const Pool2dOptions& o, const char* op) {
    PoolPlan p = plan_planes(x, op);
    const auto& k = o.kernel;
    const auto& pad = o.padding;
    require(k[0] >= 1 && k[1] >= 1, op, ": kernel size must be positive, got ",
            pair_str(k[0], k[1]));
    require(o.stride[0] >= 0 && o.stride[1] >= 0, op, ": stride must be positive (or 0 for the ",
            "kernel size), got ", pair_str(o.stride[0], o.stride[1]));
    const std::int64_t sh = o.stride[0] == 0 ? k[0] : o.stride[0];
    const std::int64_t sw = o.stride[1] == 0 ? k[1] : o.stride[1];
    require(pad[0] >= 0 && pad[1] >= 0 && pad[0] <= k[0] / 2 && pad[1] <= k[1] / 2, op,
            ": padding ", pair_str(pad[0], pad[1]), " must be between 0 and half the kernel size ",
            pair_str(k[0], k[1]));
    const std::int64_t oh = pooled_size(p.H, k[0], sh, pad[0], o.ceil_mode);
    const std::int64_t ow = pooled_size(p.W, k[1], sw, pad[1], o.ceil_mode);
    require(oh >= 1 && ow >= 1, op, ": the output would be empty: input ", shape_str(x.shape()),
            " with kernel ", pair_str(k[0], k[1]), ", stride ", pair_str(sh, sw), " and padding ",
            pair_str(pad[0], pad[1]), " gives ", pair_str(oh, ow));
    p.rows = sliding_axis(p.H, k[0], sh, pad[0], oh);
    p.cols = sliding_axis(p.W, k[1], sw, pad[1], ow);
    p.row_rule = {p.H, oh, k[0], sh, pad[0], false};
    p.col_rule = {p.W, ow, k[1], sw, pad[1], false};
    set_out_shape(p, x);
    return p;
}

// ---- kernels: each walks planes in parallel, windows in order ----

// y = max over each window; `winner` (may be null) gets the index h * W + w of the max.
template <class T>
void max_pool_forward(const PoolPlan& p, const T* x, T* y, std::int64_t* winner) {
    const std::int64_t OH = p.OH(), OW = p.OW();
    parallel_for(0, p.planes, grain_for(p.H * p.W), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            const T* in = x + plane * p.H * p.W;
            for (std::int64_t oh = 0; oh < OH; ++oh) {
                for (std::int64_t ow = 0; ow < OW; ++ow) {
                    T best = -std::numeric_limits<T>::infinity();
                    std::int64_t where = p.rows.first[oh] * p.W + p.cols.first[ow];
                    for (std::int64_t h = p.rows.first[oh]; h < p.rows.last[oh]; ++h)
                        for (std::int64_t w = p.cols.first[ow]; w < p.cols.last[ow]; ++w) {
                            const T v = in[h * p.W + w];
                            if (v > best || std::isnan(v)) {
                                best = v;
                                where = h * p.W + w;
                            }
                        }
                    const std::int64_t o = (plane * OH + oh) * OW + ow;
                    y[o] = best;
                    if (winner) winner[o] = where;
                }
            }
        }
    });
}

template <class T>
void max_pool_backward(const PoolPlan& p, const T* dy, const std::int64_t* winner, T* dx) {
    const std::int64_t outputs = p.OH() * p.OW();
    parallel_for(0, p.planes, grain_for(p.H * p.W), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            T* grad = dx + plane * p.H * p.W;
            std::fill(grad, grad + p.H * p.W, T(0));
            for (std::int64_t o = plane * outputs; o < (plane + 1) * outputs; ++o)
                grad[winner[o]] += dy[o];
        }
    });
}

// The divisor of output (oh, ow).
std::int64_t window_count(const PoolPlan& p, std::int64_t oh, std::int64_t ow, bool count_padding) {
    if (count_padding) return p.rows.padded[oh] * p.cols.padded[ow];
    return (p.rows.last[oh] - p.rows.first[oh]) * (p.cols.last[ow] - p.cols.first[ow]);
}

template <class T>
void avg_pool_forward(const PoolPlan& p, bool count_padding, const T* x, T* y) {
    const std::int64_t OH = p.OH(), OW = p.OW();
    parallel_for(0, p.planes, grain_for(p.H * p.W), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            const T* in = x + plane * p.H * p.W;
            for (std::int64_t oh = 0; oh < OH; ++oh) {
                for (std::int64_t ow = 0; ow < OW; ++ow) {
                    T sum = T(0);
                    for (std::int64_t h = p.rows.first[oh]; h < p.rows.last[oh]; ++h)
                        for (std::int64_t w = p.cols.first[ow]; w < p.cols.last[ow]; ++w)
                            sum += in[h * p.W + w];
                    const std::int64_t count = window_count(p, oh, ow, count_padding);
                    y[(plane * OH + oh) * OW + ow] = count > 0 ? sum / T(count) : T(0);
                }
            }
        }
    });
}

template <class T>
void avg_pool_backward(const PoolPlan& p, bool count_padding, const T* dy, T* dx) {
    const std::int64_t OH = p.OH(), OW = p.OW();
    parallel_for(0, p.planes, grain_for(p.H * p.W), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t plane = b; plane < e; ++plane) {
            T* grad = dx + plane * p.H * p.W;
            std::fill(grad, grad + p.H * p.W, T(0));
            for (std::int64_t oh = 0; oh < OH; ++oh) {
                for (std::int64_t ow = 0; ow < OW; ++ow) {
                    const std::int64_t count = window_count(p, oh, ow, count_padding);
                    if (count == 0) continue;
                    const T share = dy[(plane * OH + oh) * OW + ow] / T(count);
                    for (std::int64_t h = p.rows.first[oh]; h < p.rows.last[oh]; ++h)
                        for (std::int64_t w = p.cols.first[ow]; w < p.cols.last[ow]; ++w)
                            grad[h * p.W + w] += share;
                }
            }
        }
    });
}

kernels::PoolShape gpu_shape(const PoolPlan& p) { return {p.planes, p.H, p.W, p.row_rule, p.col_rule}; }

// avg_pool2d and adaptive_avg_pool2d differ only in their windows and divisors.
Tensor average_pool(const Tensor& x, const PoolPlan& p, bool count_padding, const char* op) {
    Tensor y = Tensor::empty(p.out_shape, x.dtype(), x.device());
    visit_floating(x.dtype(), op, [&]<class T>(Type<T>) {
        if (x.device().is_cuda())
            cuda::launch(x.device(), y.numel(),
                         kernels::AvgPoolForward<T>{x.device_data<T>(), y.device_data<T>(),
                                                    gpu_shape(p), count_padding});
        else
            avg_pool_forward<T>(p, count_padding, x.data<T>(), y.data<T>());
    });
    record(y, op, {x}, [p, count_padding, shape = x.shape()](const Tensor& dy) {
        Tensor dx = Tensor::empty(shape, dy.dtype(), dy.device());
        visit_floating(dy.dtype(), "avg_pool backward", [&]<class T>(Type<T>) {
            if (dy.device().is_cuda())
                cuda::launch(dy.device(), dx.numel(),
                             kernels::AvgPoolBackward<T>{dy.device_data<T>(), dx.device_data<T>(),
                                                         gpu_shape(p), count_padding});
            else
                avg_pool_backward<T>(p, count_padding, dy.data<T>(), dx.data<T>());
        });
        return std::vector<Tensor>{dx};
    });
    return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options) {
    const PoolPlan p = plan_pool(x, options, "max_pool2d");
    Tensor y = Tensor::empty(p.out_shape, x.dtype(), x.device());
    // The winners are only needed for backward.
    Tensor winner = needs_grad({x}) ? Tensor::empty(p.out_shape, DType::i64, x.device()) : Tensor();
    visit_floating(x.dtype(), "max_pool2d", [&]<class T>(Type<T>) {
        std::int64_t* winners = winner.defined() ? winner.device_data<std::int64_t>() : nullptr;
        if (x.device().is_cuda())
            cuda::launch(x.device(), y.numel(),
                         kernels::MaxPoolForward<T>{x.device_data<T>(), y.device_data<T>(),
                                                    winners, gpu_shape(p)});
        else
            max_pool_forward<T>(p, x.data<T>(), y.data<T>(), winners);
    });
    record(y, "max_pool2d", {x}, [p, winner, shape = x.shape()](const Tensor& dy) {
        Tensor dx = Tensor::empty(shape, dy.dtype(), dy.device());
        visit_floating(dy.dtype(), "max_pool2d backward", [&]<class T>(Type<T>) {
            if (dy.device().is_cuda())
                cuda::launch(dy.device(), dx.numel(),
                             kernels::MaxPoolBackward<T>{dy.device_data<T>(),
                                                         winner.device_data<std::int64_t>(),
                                                         dx.device_data<T>(), gpu_shape(p)});
            else
                max_pool_backward<T>(p, dy.data<T>(), winner.data<std::int64_t>(), dx.data<T>());
        });
        return std::vector<Tensor>{dx};
    });
    return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options) {
    return average_pool(x, plan_pool(x, options, "avg_pool2d"), options.count_include_pad,
                        "avg_pool2d");
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<std::int64_t, 2> output_size) {
    PoolPlan p = plan_planes(x, "adaptive_avg_pool2d");
    require(output_size[0] >= 1 && output_size[1] >= 1,
            "adaptive_avg_pool2d: output size must be positive, got ",
            pair_str(output_size[0], output_size[1]), " for input ", shape_str(x.shape()));
    // the window tables grow with the output size, and (i + 1) * H must not overflow
    require(output_size[0] <= (std::int64_t(1) << 24) && output_size[1] <= (std::int64_t(1) << 24),
            "adaptive_avg_pool2d: output size ", pair_str(output_size[0], output_size[1]),
            " is too large");
    p.rows = adaptive_axis(p.H, output_size[0]);
    p.cols = adaptive_axis(p.W, output_size[1]);
    p.row_rule = {p.H, output_size[0], 0, 0, 0, true};
    p.col_rule = {p.W, output_size[1], 0, 0, 0, true};
    set_out_shape(p, x);
    // Every adaptive window lies inside the input, so its padded length is its length.
    return average_pool(x, p, /*count_padding=*/true, "adaptive_avg_pool2d");
}

}  // namespace retort
