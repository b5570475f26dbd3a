// engine/ops/normalization.cpp: batch norm and layer norm, forward and backward.
//
// Shapes: batch_norm x (B, C) or (B, C, *), viewed here as [B][C][S] with S the product of the
// spatial sizes; weight, bias, running stats (C). layer_norm x (..., *normalized_shape), viewed
// as [M][N] with N the product of normalized_shape; weight, bias (normalized_shape).
// Matches torch.nn.functional.batch_norm (training and eval) and torch.nn.functional.layer_norm.
//
// Both normalize  xhat = (x - mean) * invstd,  invstd = 1 / sqrt(var + eps),  y = xhat * w + b,
// with the biased variance. Backward (the standard closed form, per group of N elements that
// share one mean and variance, when those statistics came from x itself):
//     dxhat = dy * w
//     dx    = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//     dw    = sum(dy * xhat),  db = sum(dy)   (over everything but the weight's own dims)
// In batch_norm's eval mode the statistics are constants, so dx = dy * w * invstd.
// Saved: x, the weight, and the per-group mean and invstd (xhat is recomputed, not stored: it
// would cost a tensor the size of x).
//
// On a GPU the same steps run as the kernels of engine/kernels/normalization.h (statistics in
// double, every sum in the CPU's order).
// Determinism: every per-channel or per-row sum runs in one thread in a fixed order, in double
// precision, so results do not depend on the thread count (and f32 sums over large batches
// keep their accuracy). The sums along a row go through lane_sum (engine/math/lane_sum.h):
// four running sums instead of one, for speed, in an order still fixed by the row's length;
// float rows run it four lanes at a time in AVX2 (engine/cpu/row_sums.h), to the same bits.
#include "engine/ops/normalization.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/cpu/row_sums.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/cudnn_norm.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/normalization.h"
#include "engine/math/lane_sum.h"
#include "engine/parallel.h"

namespace retort {

namespace {

void check_input(const Tensor& t, const char* op) {
    require(is_floating(t.dtype()), op, ": expected a floating-point tensor, got ",
            dtype_name(t.dtype()));
}

// An optional per-channel (or per-feature) parameter must have the given shape and x's dtype.
void check_param(const Tensor& p, const Shape& shape, const Tensor& x, const char* op,
                 const char* name) {
    if (!p.defined()) return;
    require(p.device() == x.device(), op, ": ", name, " is on ", p.device().str(),
            " but the input is on ", x.device().str());
    require(p.shape() == shape, op, ": ", name, " has shape ", shape_str(p.shape()),
            ", expected ", shape_str(shape), " for input of shape ", shape_str(x.shape()));
    require(p.dtype() == x.dtype(), op, ": ", name, " is ", dtype_name(p.dtype()),
            " but the input is ", dtype_name(x.dtype()));
}

// The values of an optional parameter as doubles, or `fill` repeated when it is undefined.
std::vector<double> values_or(const Tensor& p, std::int64_t n, double fill) {
    return p.defined() ? p.to_vector<double>() : std::vector<double>(n, fill);
}

// ---------------------------------------------------------------------------------------------
// batch norm: x viewed as [B][C][S]

struct ChannelLayout {
    std::int64_t B, C, S;
    std::int64_t count() const { return B * S; }  // elements per channel
};

ChannelLayout channel_layout(const Shape& shape) {
    ChannelLayout l{shape[0], shape[1], 1};
    for (std::size_t i = 2; i < shape.size(); ++i) l.S *= shape[i];
    return l;
}

// For each channel c: the sum over b of sum_of_row(c, base), base the flat index where row (b, c)
// of S values starts; Sum is double, or SumPair for two sums at once. Channels are split among
// threads, so each channel's sum is one thread's, in a fixed order. Walking b outside the
// channel loop keeps reads sequential when S is 1.
template <class Sum, class RowSum>
std::vector<Sum> sum_per_channel(const ChannelLayout& l, RowSum sum_of_row) {
    std::vector<Sum> out(l.C);
    parallel_for(0, l.C, grain_for(l.count()), [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t b = 0; b < l.B; ++b)
            for (std::int64_t c = c0; c < c1; ++c) out[c] += sum_of_row(c, (b * l.C + c) * l.S);
    });
    return out;
}

struct ChannelStats {
    std::vector<double> mean, var;  // var is biased (divides by B*S)
};

template <class T>
ChannelStats batch_stats(const T* x, const ChannelLayout& l) {
    ChannelStats st;
    const double n = static_cast<double>(l.count());
    st.mean = sum_per_channel<double>(l, [&](std::int64_t, std::int64_t base) {
        return cpu::row_sum(x + base, l.S);
    });
    for (double& m : st.mean) m /= n;
    // two passes (mean first) instead of E[x^2] - E[x]^2, which cancels badly
    st.var = sum_per_channel<double>(l, [&](std::int64_t c, std::int64_t base) {
        return cpu::row_sum_squared_deviation(x + base, l.S, st.mean[c]);
    });
    for (double& v : st.var) v /= n;
    return st;
}

// y = x * scale[c] + shift[c]: the normalization and the affine transform folded together.
template <class T>
void scale_shift(const T* x, T* y, const ChannelLayout& l, const std::vector<double>& scale,
                 const std::vector<double>& shift) {
    parallel_for(0, l.B * l.C, grain_for(l.S), [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t c = r % l.C;
            const T a = static_cast<T>(scale[c]), b = static_cast<T>(shift[c]);
            const T* in = x + r * l.S;
            T* out = y + r * l.S;
            for (std::int64_t s = 0; s < l.S; ++s) out[s] = in[s] * a + b;
        }
    });
}

// r = (1 - momentum) r + momentum * stat, in place, as PyTorch's running statistics.
template <class T>
void update_running(Tensor running, const std::vector<double>& stat, double momentum,
                    double correction) {
    T* r = running.data<T>();
    for (std::size_t c = 0; c < stat.size(); ++c)
        r[c] = static_cast<T>((1 - momentum) * double(r[c]) + momentum * stat[c] * correction);
}

struct BatchNormSaved {
    Tensor x, weight;
    std::vector<double> mean, invstd;
    bool training;
    bool need_x, need_weight, need_bias;
};

std::vector<Tensor> batch_norm_backward(const BatchNormSaved& s, const Tensor& dy) {
    const ChannelLayout l = channel_layout(s.x.shape());
    const std::vector<double> w = values_or(s.weight, l.C, 1.0);
    Tensor dx, dw, db;
    visit_floating(dy.dtype(), "batch_norm backward", [&]<class T>(Type<T>) {
        const T* x = s.x.data<T>();
        const T* g = dy.data<T>();
        // one pass for sum(dy) and sum(dy * xhat)
        const std::vector<SumPair> sums =
            sum_per_channel<SumPair>(l, [&](std::int64_t c, std::int64_t base) {
                return cpu::row_sum_grad(g + base, x + base, l.S, s.mean[c], s.invstd[c]);
            });
        std::vector<double> sum_dy(l.C), sum_dy_xhat(l.C);
        for (std::int64_t c = 0; c < l.C; ++c) {
            sum_dy[c] = sums[c].a;
            sum_dy_xhat[c] = sums[c].b;
        }
        if (s.need_x) {
            dx = Tensor::empty(s.x.shape(), s.x.dtype());
            T* out = dx.data<T>();
            const double n = static_cast<double>(l.count());
            parallel_for(0, l.B * l.C, grain_for(l.S), [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    const std::int64_t c = r % l.C;
                    const kernels::BatchNormGradCoefficients<T> grad(
                        w[c], s.mean[c], s.invstd[c], sum_dy[c], sum_dy_xhat[c], n, s.training);
                    for (std::int64_t i = r * l.S; i < (r + 1) * l.S; ++i) out[i] = grad(g[i], x[i]);
                }
            });
        }
        if (s.need_weight) dw = from_vector(std::vector<T>(sum_dy_xhat.begin(), sum_dy_xhat.end()));
        if (s.need_bias) db = from_vector(std::vector<T>(sum_dy.begin(), sum_dy.end()));
    });
    return {dx, dw, db};
}

// ---------------------------------------------------------------------------------------------
// layer norm: x viewed as [M][N]

struct RowStats {
    std::vector<double> mean, invstd;
};

template <class T>
RowStats row_stats(const T* x, std::int64_t M, std::int64_t N, double eps) {
    RowStats st{std::vector<double>(M), std::vector<double>(M)};
    parallel_for(0, M, grain_for(N), [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* row = x + r * N;
            const double mean = cpu::row_sum(row, N) / static_cast<double>(N);
            const double sq = cpu::row_sum_squared_deviation(row, N, mean);
            st.mean[r] = mean;
            st.invstd[r] = 1.0 / std::sqrt(sq / static_cast<double>(N) + eps);
        }
    });
    return st;
}

struct LayerNormSaved {
    Tensor x, weight;
    RowStats stats;
    bool need_x, need_weight, need_bias;
};

std::vector<Tensor> layer_norm_backward(const LayerNormSaved& s, const Tensor& dy,
                                        const Shape& param_shape) {
    const std::int64_t N = shape_numel(param_shape), M = N > 0 ? s.x.numel() / N : 0;
    const std::vector<double> w = values_or(s.weight, N, 1.0);
    Tensor dx, dw, db;
    visit_floating(dy.dtype(), "layer_norm backward", [&]<class T>(Type<T>) {
        const T* x = s.x.data<T>();
        const T* g = dy.data<T>();
        auto xhat = [&](std::int64_t r, std::int64_t j) {
            return (double(x[r * N + j]) - s.stats.mean[r]) * s.stats.invstd[r];
        };
        if (s.need_x) {
            dx = Tensor::empty(s.x.shape(), s.x.dtype());
            T* out = dx.data<T>();
            parallel_for(0, M, grain_for(N), [&](std::int64_t r0, std::int64_t r1) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    // over the row: sum(dxhat) and sum(dxhat * xhat), dxhat = dy * w
                    const SumPair sums = lane_sum_pair(N, [&](std::int64_t j) {
                        const double dxhat = double(g[r * N + j]) * w[j];
                        return SumPair{dxhat, dxhat * xhat(r, j)};
                    });
                    const double mean_g = sums.a / N, mean_g_xhat = sums.b / N;
                    for (std::int64_t j = 0; j < N; ++j) {
                        const double dxhat = double(g[r * N + j]) * w[j];
                        out[r * N + j] = static_cast<T>(
                            s.stats.invstd[r] * (dxhat - mean_g - xhat(r, j) * mean_g_xhat));
                    }
                }
            });
        }
        if (s.need_weight || s.need_bias) {
            // column sums over the M rows: threads split the columns, each sums rows in order
            std::vector<double> sum_dy(N, 0.0), sum_dy_xhat(N, 0.0);
            parallel_for(0, N, grain_for(M), [&](std::int64_t j0, std::int64_t j1) {
                for (std::int64_t r = 0; r < M; ++r)
                    for (std::int64_t j = j0; j < j1; ++j) {
                        sum_dy[j] += g[r * N + j];
                        sum_dy_xhat[j] += double(g[r * N + j]) * xhat(r, j);
                    }
            });
            if (s.need_weight)
                dw = from_vector(std::vector<T>(sum_dy_xhat.begin(), sum_dy_xhat.end()), param_shape);
            if (s.need_bias)
                db = from_vector(std::vector<T>(sum_dy.begin(), sum_dy.end()), param_shape);
        }
    });
    return {dx, dw, db};
}

// ---------------------------------------------------------------------------------------------
// on a GPU: the same steps, each a kernel of engine/kernels/normalization.h

template <class T>
const T* optional_data(const Tensor& t) {
    return t.defined() ? t.device_data<T>() : nullptr;
}

// Training mode through cuDNN (engine/cuda/cudnn_norm.h): statistics, running update and
// the normalization in one call, and its backward in another.
Tensor batch_norm_cudnn(const Tensor& x, Tensor running_mean, Tensor running_var,
                        const Tensor& weight, const Tensor& bias, double momentum, double eps) {
    const Device device = x.device();
    const ChannelLayout l = channel_layout(x.shape());
    const cuda::CudnnBatchNormShape shape{l.B, l.C, l.S};
    // cuDNN always takes a scale and a shift
    const Tensor w = weight.defined() ? weight.detach() : ones({l.C}, x.dtype(), device);
    const Tensor b = bias.defined() ? bias.detach() : zeros({l.C}, x.dtype(), device);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), device);
    Tensor save_mean = Tensor::empty({l.C}, x.dtype(), device);
    Tensor save_invstd = Tensor::empty({l.C}, x.dtype(), device);
    cuda::cudnn_batch_norm_forward_training(
        device, x.dtype(), shape, x.raw_device_data(), y.raw_device_data(), w.raw_device_data(),
        b.raw_device_data(), running_mean.defined() ? running_mean.raw_device_data() : nullptr,
        running_var.defined() ? running_var.raw_device_data() : nullptr, momentum, eps,
        save_mean.raw_device_data(), save_invstd.raw_device_data());
    if (!needs_grad({x, weight, bias})) return y;
    record(y, "batch_norm", {x, weight, bias},
           [sx = x.detach(), w, save_mean, save_invstd, shape, eps, need_w = weight.defined(),
            need_b = bias.defined()](const Tensor& dy) {
               Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), dy.device());
               Tensor dw = Tensor::empty({shape.channels}, sx.dtype(), dy.device());
               Tensor db = Tensor::empty({shape.channels}, sx.dtype(), dy.device());
               cuda::cudnn_batch_norm_backward(dy.device(), sx.dtype(), shape, sx.raw_device_data(),
                                               dy.raw_device_data(), w.raw_device_data(),
                                               dx.raw_device_data(), dw.raw_device_data(),
                                               db.raw_device_data(), eps,
                                               save_mean.raw_device_data(),
                                               save_invstd.raw_device_data());
               return std::vector<Tensor>{dx, need_w ? dw : Tensor(), need_b ? db : Tensor()};
           });
    return y;
}

template <class T>
Tensor batch_norm_gpu(const Tensor& x, Tensor running_mean, Tensor running_var,
                      const Tensor& weight, const Tensor& bias, bool training, double momentum,
                      double eps) {
    const Device device = x.device();
    if (training && cuda::use_cudnn())
        return batch_norm_cudnn(x, running_mean, running_var, weight, bias, momentum, eps);
    const ChannelLayout l = channel_layout(x.shape());
    const kernels::ChannelShape shape{l.B, l.C, l.S};
    auto per_channel = [&] { return Tensor::empty({l.C}, DType::f64, device); };
    Tensor mean = per_channel(), var = per_channel(), invstd = per_channel();
    Tensor scale = per_channel(), shift = per_channel();
    if (training)
        cuda::launch(device, l.C,
                     kernels::ChannelMoments<T>{x.device_data<T>(), shape,
                                                mean.device_data<double>(),
                                                var.device_data<double>()});
    cuda::launch(device, l.C,
                 kernels::BatchNormChannel<T>{
                     mean.device_data<double>(), var.device_data<double>(),
                     optional_data<T>(weight), optional_data<T>(bias),
                     running_mean.defined() ? running_mean.device_data<T>() : nullptr,
                     running_var.defined() ? running_var.device_data<T>() : nullptr, momentum,
                     eps, static_cast<double>(l.count()), training, invstd.device_data<double>(),
                     scale.device_data<double>(), shift.device_data<double>()});
    Tensor y = Tensor::empty(x.shape(), x.dtype(), device);
    cuda::launch(device, x.numel(),
                 kernels::ChannelAffine<T>{x.device_data<T>(), y.device_data<T>(), shape,
                                           scale.device_data<double>(),
                                           shift.device_data<double>()});
    if (!needs_grad({x, weight, bias})) return y;
    const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    record(y, "batch_norm", {x, weight, bias},
           [sx = x.detach(), sw = weight.defined() ? weight.detach() : Tensor(), mean, invstd,
            shape, training, need_x, need_w, need_b](const Tensor& dy) {
               const Device device = dy.device();
               Tensor sum_dy = Tensor::empty({shape.C}, DType::f64, device);
               Tensor sum_dy_xhat = Tensor::empty({shape.C}, DType::f64, device);
               cuda::launch(device, shape.C,
                            kernels::ChannelGradSums<T>{
                                sx.device_data<T>(), dy.device_data<T>(), shape,
                                mean.device_data<double>(), invstd.device_data<double>(),
                                sum_dy.device_data<double>(), sum_dy_xhat.device_data<double>()});
               Tensor dx;
               if (need_x) {
                   dx = Tensor::empty(sx.shape(), sx.dtype(), device);
                   cuda::launch(device, dx.numel(),
                                kernels::BatchNormInputGrad<T>{
                                    sx.device_data<T>(), dy.device_data<T>(),
                                    optional_data<T>(sw), shape, mean.device_data<double>(),
                                    invstd.device_data<double>(), sum_dy.device_data<double>(),
                                    sum_dy_xhat.device_data<double>(), training,
                                    dx.device_data<T>()});
               }
               return std::vector<Tensor>{dx, need_w ? sum_dy_xhat.to(dy.dtype()) : Tensor(),
                                          need_b ? sum_dy.to(dy.dtype()) : Tensor()};
           });
    return y;
}

template <class T>
Tensor layer_norm_gpu(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                      const Tensor& bias, double eps) {
    const Device device = x.device();
    const std::int64_t N = shape_numel(normalized_shape), M = N > 0 ? x.numel() / N : 0;
    Tensor mean = Tensor::empty({M}, DType::f64, device);
    Tensor invstd = Tensor::empty({M}, DType::f64, device);
    cuda::launch(device, M,
                 kernels::RowMoments<T>{x.device_data<T>(), N, eps, mean.device_data<double>(),
                                        invstd.device_data<double>()});
    Tensor y = Tensor::empty(x.shape(), x.dtype(), device);
    cuda::launch(device, x.numel(),
                 kernels::LayerNormApply<T>{x.device_data<T>(), y.device_data<T>(), N,
                                            optional_data<T>(weight), optional_data<T>(bias),
                                            mean.device_data<double>(),
                                            invstd.device_data<double>()});
    if (!needs_grad({x, weight, bias})) return y;
    const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    record(y, "layer_norm", {x, weight, bias},
           [sx = x.detach(), sw = weight.defined() ? weight.detach() : Tensor(), mean, invstd, M,
            N, normalized_shape, need_x, need_w, need_b](const Tensor& dy) {
               const Device device = dy.device();
               Tensor dx, dw, db;
               if (need_x) {
                   dx = Tensor::empty(sx.shape(), sx.dtype(), device);
                   cuda::launch(device, M,
                                kernels::LayerNormInputGrad<T>{
                                    sx.device_data<T>(), dy.device_data<T>(),
                                    optional_data<T>(sw), N, mean.device_data<double>(),
                                    invstd.device_data<double>(), dx.device_data<T>()});
               }
               if (need_w) dw = Tensor::empty(normalized_shape, dy.dtype(), device);
               if (need_b) db = Tensor::empty(normalized_shape, dy.dtype(), device);
               if (need_w || need_b)
                   cuda::launch(device, N,
                                kernels::LayerNormParamGrad<T>{
                                    sx.device_data<T>(), dy.device_data<T>(), M, N,
                                    mean.device_data<double>(), invstd.device_data<double>(),
                                    need_w ? dw.device_data<T>() : nullptr,
                                    need_b ? db.device_data<T>() : nullptr});
               return std::vector<Tensor>{dx, dw, db};
           });
    return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
    require(x.defined(), "batch_norm: undefined input");
    check_input(x, "batch_norm");
    require(x.dim() >= 2, "batch_norm: expected an input of shape (B, C) or (B, C, ...), got ",
            shape_str(x.shape()));
    const ChannelLayout l = channel_layout(x.shape());
    const Shape channels{l.C};
    check_param(weight, channels, x, "batch_norm", "weight");
    check_param(bias, channels, x, "batch_norm", "bias");
    check_param(running_mean, channels, x, "batch_norm", "running_mean");
    check_param(running_var, channels, x, "batch_norm", "running_var");
    require(running_mean.defined() == running_var.defined(),
            "batch_norm: give both running_mean and running_var, or neither");
    if (training)
        require(l.count() > 1, "batch_norm: expected more than 1 value per channel when ",
                "training, got input of shape ", shape_str(x.shape()));
    else
        require(running_mean.defined(),
                "batch_norm: running_mean and running_var are needed in eval mode");
    if (x.device().is_cuda()) {
        Tensor y;
        visit_floating(x.dtype(), "batch_norm", [&]<class T>(Type<T>) {
            y = batch_norm_gpu<T>(x, running_mean, running_var, weight, bias, training, momentum,
                                  eps);
        });
        return y;
    }

    ChannelStats stats;
    if (training) {
        visit_floating(x.dtype(), "batch_norm", [&]<class T>(Type<T>) {
            stats = batch_stats(x.data<T>(), l);
            if (running_mean.defined()) {
                const double n = static_cast<double>(l.count());
                update_running<T>(running_mean, stats.mean, momentum, 1.0);
                update_running<T>(running_var, stats.var, momentum, n / (n - 1));  // unbiased
            }
        });
    } else {
        stats = {running_mean.to_vector<double>(), running_var.to_vector<double>()};
    }

    std::vector<double> invstd(l.C), scale(l.C), shift(l.C);
    const std::vector<double> w = values_or(weight, l.C, 1.0), b = values_or(bias, l.C, 0.0);
    for (std::int64_t c = 0; c < l.C; ++c) {
        invstd[c] = 1.0 / std::sqrt(stats.var[c] + eps);
        scale[c] = w[c] * invstd[c];
        shift[c] = b[c] - stats.mean[c] * scale[c];
    }
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    visit_floating(x.dtype(), "batch_norm", [&]<class T>(Type<T>) {
        scale_shift(x.data<T>(), y.data<T>(), l, scale, shift);
    });

    if (needs_grad({x, weight, bias})) {
        BatchNormSaved saved{x.detach(), weight.defined() ? weight.detach() : Tensor(),
                             std::move(stats.mean), std::move(invstd), training,
                             x.requires_grad(), weight.defined() && weight.requires_grad(),
                             bias.defined() && bias.requires_grad()};
        record(y, "batch_norm", {x, weight, bias}, [saved = std::move(saved)](const Tensor& dy) {
            return batch_norm_backward(saved, dy);
        });
    }
    return y;
}

Tensor layer_norm(const Tensor& x, const std::vector<std::int64_t>& normalized_shape,
                  const Tensor& weight, const Tensor& bias, double eps) {
    require(x.defined(), "layer_norm: undefined input");
    check_input(x, "layer_norm");
    const std::size_t k = normalized_shape.size();
    bool fits = k >= 1 && k <= x.shape().size();
    for (std::size_t i = 0; fits && i < k; ++i)
        fits = x.shape()[x.shape().size() - k + i] == normalized_shape[i];
    require(fits, "layer_norm: normalized_shape ", shape_str(normalized_shape),
            " does not match the last dims of input shape ", shape_str(x.shape()));
    check_param(weight, normalized_shape, x, "layer_norm", "weight");
    check_param(bias, normalized_shape, x, "layer_norm", "bias");
    if (x.device().is_cuda()) {
        Tensor y;
        visit_floating(x.dtype(), "layer_norm", [&]<class T>(Type<T>) {
            y = layer_norm_gpu<T>(x, normalized_shape, weight, bias, eps);
        });
        return y;
    }

    const std::int64_t N = shape_numel(normalized_shape), M = N > 0 ? x.numel() / N : 0;
    const std::vector<double> w = values_or(weight, N, 1.0), b = values_or(bias, N, 0.0);
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    RowStats stats;
    visit_floating(x.dtype(), "layer_norm", [&]<class T>(Type<T>) {
        const T* in = x.data<T>();
        T* out = y.data<T>();
        stats = row_stats(in, M, N, eps);
        parallel_for(0, M, grain_for(N), [&](std::int64_t r0, std::int64_t r1) {
            for (std::int64_t r = r0; r < r1; ++r)
                for (std::int64_t j = 0; j < N; ++j) {
                    const double xhat = (double(in[r * N + j]) - stats.mean[r]) * stats.invstd[r];
                    out[r * N + j] = static_cast<T>(xhat * w[j] + b[j]);
                }
        });
    });

    if (needs_grad({x, weight, bias})) {
        LayerNormSaved saved{x.detach(), weight.defined() ? weight.detach() : Tensor(),
                             std::move(stats), x.requires_grad(),
                             weight.defined() && weight.requires_grad(),
                             bias.defined() && bias.requires_grad()};
        record(y, "layer_norm", {x, weight, bias},
               [saved = std::move(saved), normalized_shape](const Tensor& dy) {
                   return layer_norm_backward(saved, dy, normalized_shape);
               });
    }
    return y;
}

}  // namespace retort
