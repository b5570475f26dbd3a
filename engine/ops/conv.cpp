// engine/ops/conv.cpp: 2-D convolution (cross-correlation, as in every DL framework).
//
// Shapes: B batch, C input channels, H x W input size, O output channels, kh x kw kernel,
// OH x OW output size, G groups (each group sees C/G input channels and makes O/G outputs).
//   x (B, C, H, W) or (C, H, W), weight (O, C/G, kh, kw), bias (O) or undefined
//   -> y (B, O, OH, OW), OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1 (likewise OW).
// Matches torch.nn.functional.conv2d (stride, padding, dilation, groups; depthwise is G = C).
//
// Method: im2col unrolls each image's windows into a (C/G kh kw, OH OW) matrix and one gemm gives
// a group's outputs: y_g = W_g col. Images go in chunks: the col matrices of a chunk's images sit
// side by side, so one gemm covers them all. Late layers have few positions per image (4 x 4 in
// a CIFAR ResNet-18's last stage) and a large weight; a gemm per image would pack the whole
// weight for 16 columns of work, and the weight gradient would read and write all of dW for each
// image. A one-image chunk of a 1x1 kernel with stride 1 and no padding needs no unrolling: the
// input plane stack already is that matrix. Depthwise convolution
// (G = C: one input channel per group) uses direct loops instead, since a gemm with a single
// input channel would be all copying and no arithmetic (engine/cpu/depthwise.h).
// Backward, chunk by chunk:
//   dx_g = col2im(W_g^T dy_g)                        (the transpose is a gemm flag)
//   dW_g = sum over chunks, in order, of dy_g col^T  (im2col is recomputed; saving every col
//                                                   would cost kh kw times the input's memory)
//   db   = dy summed over batch and positions
// Saved: x (for dW) and weight (for dx), each only when that gradient is needed; detached views.
// Arithmetic: engine/cpu/gemm.h, engine/cpu/im2col.h, engine/cpu/depthwise.h; on a GPU,
// engine/kernels/conv.h around cuBLAS (engine/cuda/blas.h).
#include "engine/ops/conv.h"

#include <algorithm>
#include <vector>

#include "engine/autograd.h"
#include "engine/flops.h"
#include "engine/cpu/depthwise.h"
#include "engine/cpu/gemm.h"
#include "engine/cpu/im2col.h"
#include "engine/cpu/reduce.h"
#include "engine/cuda/blas.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/conv.h"
#include "engine/kernels/elementwise.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "engine/parallel.h"

namespace retort {

namespace {

std::string pair_str(const std::array<std::int64_t, 2>& v) {
    return cat("(", v[0], ", ", v[1], ")");
}

// Every size of one conv2d call, checked.
struct ConvShape {
    std::int64_t B, C, H, W, O, kh, kw, OH, OW, groups;
    Conv2dOptions options;

    std::int64_t in_per_group() const { return C / groups; }
    std::int64_t out_per_group() const { return O / groups; }
    std::int64_t positions() const { return OH * OW; }
    // Rows of col (and columns of the weight matrix): one per (input channel, kernel tap).
    std::int64_t taps() const { return in_per_group() * kh * kw; }
    // One input channel per group: the direct loops of engine/cpu/depthwise.h do it.
    bool depthwise() const { return groups == C; }
    cpu::DepthwiseShape depthwise_shape() const {
        cpu::ConvGeometry g = geometry();
        g.channels = 1;
        return {B, C, O / C, g};
    }
    // The input plane stack of a group is already its col matrix.
    bool needs_no_unrolling() const {
        return kh == 1 && kw == 1 && options.stride == std::array<std::int64_t, 2>{1, 1} &&
               options.padding == std::array<std::int64_t, 2>{0, 0};
    }
    cpu::ConvGeometry geometry() const {
        return {in_per_group(), H, W, kh, kw,
                options.stride[0], options.stride[1], options.padding[0], options.padding[1],
                options.dilation[0], options.dilation[1], OH, OW};
    }
};

ConvShape check_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Conv2dOptions& o) {
    require(x.defined() && weight.defined(), "conv2d: undefined tensor argument");
    require(x.dim() == 4, "conv2d: expected an input of shape (B, C, H, W) or (C, H, W), got ",
            shape_str(x.shape()));
    require(weight.dim() == 4, "conv2d: expected a weight of shape (O, C/groups, kh, kw), got ",
            shape_str(weight.shape()));
    require(x.dtype() == weight.dtype(), "conv2d: dtype mismatch, input is ",
            dtype_name(x.dtype()), " and weight is ", dtype_name(weight.dtype()));
    require(is_floating(x.dtype()), "conv2d: expected floating-point tensors, got ",
            dtype_name(x.dtype()));
    require(x.device() == weight.device(), "conv2d: the input is on ", x.device().str(),
            " but the weight on ", weight.device().str());
    require(o.groups >= 1, "conv2d: groups must be positive, got ", o.groups);
    for (int d = 0; d < 2; ++d) {
        require(o.stride[d] >= 1, "conv2d: stride must be positive, got ", pair_str(o.stride));
        require(o.dilation[d] >= 1, "conv2d: dilation must be positive, got ",
                pair_str(o.dilation));
        require(o.padding[d] >= 0, "conv2d: padding must be non-negative, got ",
                pair_str(o.padding));
    }

    const Shape& xs = x.shape();
    const Shape& ws = weight.shape();
    ConvShape s{xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], 0, 0, o.groups, o};
    require(s.C % s.groups == 0, "conv2d: groups=", s.groups, " does not divide the ", s.C,
            " channels of the input ", shape_str(xs));
    require(s.O % s.groups == 0, "conv2d: groups=", s.groups, " does not divide the ", s.O,
            " output channels of the weight ", shape_str(ws));
    require(ws[1] * s.groups == s.C, "conv2d: input ", shape_str(xs), " has ", s.C,
            " channels but weight ", shape_str(ws), " expects ", ws[1], " per group x groups=",
            s.groups, " = ", ws[1] * s.groups);
    if (bias.defined()) {
        require(bias.device() == x.device(), "conv2d: the input is on ", x.device().str(),
                " but the bias on ", bias.device().str());
        require(bias.dtype() == x.dtype(), "conv2d: dtype mismatch, input is ",
                dtype_name(x.dtype()), " and bias is ", dtype_name(bias.dtype()));
        require(bias.shape() == Shape{s.O}, "conv2d: expected a bias of shape (", s.O,
                ",) for weight ", shape_str(ws), ", got ", shape_str(bias.shape()));
    }

    // the extent of the dilated kernel
    const std::int64_t span_h = o.dilation[0] * (s.kh - 1) + 1;
    const std::int64_t span_w = o.dilation[1] * (s.kw - 1) + 1;
    s.OH = (s.H + 2 * o.padding[0] - span_h) / o.stride[0] + 1;
    s.OW = (s.W + 2 * o.padding[1] - span_w) / o.stride[1] + 1;
    // An input smaller than the (dilated) kernel would make the division above round toward 0.
    require(s.H + 2 * o.padding[0] >= span_h && s.W + 2 * o.padding[1] >= span_w && s.OH > 0 &&
                s.OW > 0,
            "conv2d: the output would be empty: input ", shape_str(xs), " padded by ",
            pair_str(o.padding), " is smaller than weight ", shape_str(ws), "'s kernel dilated by ",
            pair_str(o.dilation));
    return s;
}

// Chunks of consecutive images. A chunk aims for kChunkColumns output positions (enough columns
// for the gemm's register blocks and packing to pay off) while its col matrix stays under
// kMaxChunkValues. The cut depends only on the shapes, never on the thread count, so results do
// not either.
constexpr std::int64_t kChunkColumns = 512;
constexpr std::int64_t kMaxChunkValues = std::int64_t(1) << 21;  // 8 MiB of f32

struct ImageChunks {
    std::int64_t images = 1;  // per chunk (the last may have fewer)
    std::int64_t count = 0;
    std::int64_t first(std::int64_t chunk) const { return chunk * images; }
    std::int64_t size(std::int64_t chunk, std::int64_t batch) const {
        return std::min(images, batch - chunk * images);
    }
};

ImageChunks image_chunks(const ConvShape& s) {
    const std::int64_t n = std::max<std::int64_t>(s.positions(), 1);
    std::int64_t images = (kChunkColumns + n - 1) / n;
    images = std::min(images, kMaxChunkValues / std::max<std::int64_t>(s.taps() * n, 1));
    images = std::clamp<std::int64_t>(images, 1, std::max<std::int64_t>(s.B, 1));
    return {images, (s.B + images - 1) / images};
}

// The multiply-adds of one (chunk, group) product, to size parallel chunks: starting threads
// costs microseconds, so a chunk of parallel work should carry more than that.
std::int64_t unit_flops(const ConvShape& s, const ImageChunks& chunks) {
    return 2 * s.out_per_group() * s.taps() * s.positions() * chunks.images;
}
constexpr std::int64_t kFlopsPerChunk = std::int64_t(1) << 21;

// Runs fn(unit, group) for every unit (a chunk of images, or a run of chunks) and group. Many:
// threads split them. Few: one after another, each using all threads inside gemm. Only the speed
// depends on this choice.
template <class F>
void for_each_unit(std::int64_t units, std::int64_t groups, std::int64_t flops_per_unit, F fn) {
    const std::int64_t pairs = units * groups;
    if (pairs >= num_threads()) {
        parallel_for(0, pairs, grain_for(flops_per_unit, kFlopsPerChunk),
                     [&](std::int64_t b, std::int64_t e) {
                         for (std::int64_t p = b; p < e; ++p) fn(p / groups, p % groups);
                     });
    } else {
        for (std::int64_t p = 0; p < pairs; ++p) fn(p / groups, p % groups);
    }
}

// Per-thread scratch buffers, reused from call to call: slot 0 holds a col matrix, slot 1 a
// chunk's outputs (or output gradients) in (O/G, images * positions) order.
template <class T>
T* scratch(int slot, std::int64_t size) {
    thread_local std::vector<T> buffers[2];
    std::vector<T>& buffer = buffers[slot];
    if (static_cast<std::int64_t>(buffer.size()) < size) buffer.resize(size);
    return buffer.data();
}

// The chunk's col matrix for group g: (taps, images * positions), each image's block of columns
// side by side; a one-image 1x1 chunk is the input itself.
template <class T>
const T* chunk_col(const ConvShape& s, const T* x, std::int64_t first, std::int64_t images,
                   std::int64_t g) {
    const std::int64_t n = s.positions(), plane = s.H * s.W;
    const T* x_group = x + (first * s.C + g * s.in_per_group()) * plane;
    if (images == 1 && s.needs_no_unrolling()) return x_group;
    T* col = scratch<T>(0, s.taps() * images * n);
    for (std::int64_t i = 0; i < images; ++i)
        cpu::im2col(x_group + i * s.C * plane, s.geometry(), col + i * n, images * n);
    return col;
}

// Between a chunk's (O/G, images * n) matrix and the (images, O, n) layout of y and dy.
template <class T>
void gather_chunk(const ConvShape& s, const T* y, std::int64_t first, std::int64_t images,
                  std::int64_t g, T* out) {
    const std::int64_t og = s.out_per_group(), n = s.positions();
    for (std::int64_t o = 0; o < og; ++o)
        for (std::int64_t i = 0; i < images; ++i) {
            const T* src = y + ((first + i) * s.O + g * og + o) * n;
            std::copy(src, src + n, out + (o * images + i) * n);
        }
}

// The output's activation, applied where each output is written.
template <class T>
T apply_epilogue(T v, ConvEpilogue e) {
    if (e == ConvEpilogue::relu) return v > T(0) ? v : T(0);
    if (e == ConvEpilogue::relu6) return v > T(0) ? (v < T(6) ? v : T(6)) : T(0);
    return v;
}

template <class T>
void apply_epilogue(T* y, std::int64_t n, ConvEpilogue e) {
    if (e == ConvEpilogue::none) return;
    for (std::int64_t i = 0; i < n; ++i) y[i] = apply_epilogue(y[i], e);
}

template <class T>
void scatter_chunk(const ConvShape& s, const T* in, const T* bias, std::int64_t first,
                   std::int64_t images, std::int64_t g, T* y) {
    const std::int64_t og = s.out_per_group(), n = s.positions();
    for (std::int64_t o = 0; o < og; ++o) {
        const T b = bias ? bias[g * og + o] : T(0);
        for (std::int64_t i = 0; i < images; ++i) {
            const T* src = in + (o * images + i) * n;
            T* dst = y + ((first + i) * s.O + g * og + o) * n;
            for (std::int64_t p = 0; p < n; ++p) dst[p] = apply_epilogue(src[p] + b, s.options.epilogue);
        }
    }
}

template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y) {
    if (s.depthwise()) {
        cpu::depthwise_forward(s.depthwise_shape(), x, w, bias, y);
        const std::int64_t total = s.B * s.O * s.positions();
        parallel_for(0, total, 16384, [&](std::int64_t b, std::int64_t e) {
            apply_epilogue(y + b, e - b, s.options.epilogue);
        });
        return;
    }
    const std::int64_t og = s.out_per_group(), taps = s.taps(), n = s.positions();
    const ImageChunks chunks = image_chunks(s);
    for_each_unit(chunks.count, s.groups, unit_flops(s, chunks), [&](std::int64_t c, std::int64_t g) {
        const std::int64_t first = chunks.first(c), images = chunks.size(c, s.B);
        const T* col = chunk_col(s, x, first, images, g);
        const T* wg = w + g * og * taps;
        if (images > 1) {
            T* out = scratch<T>(1, og * images * n);
            cpu::gemm(false, false, og, images * n, taps, T(1), wg, taps, col, images * n, T(0),
                      out, images * n);
            scatter_chunk(s, out, bias, first, images, g, y);
            return;
        }
        T* yg = y + (first * s.O + g * og) * n;  // one image: the gemm writes y in place
        T beta = T(0);
        if (bias) {  // start from the bias and let gemm add W col onto it
            for (std::int64_t o = 0; o < og; ++o)
                std::fill(yg + o * n, yg + (o + 1) * n, bias[g * og + o]);
            beta = T(1);
        }
        cpu::gemm(false, false, og, n, taps, T(1), wg, taps, col, n, beta, yg, n);
        apply_epilogue(yg, og * n, s.options.epilogue);
    });
}

// dx_g = col2im(W_g^T dy_g), chunk by chunk.
template <class T>
void conv2d_grad_input(const ConvShape& s, const T* dy, const T* w, T* dx) {
    if (s.depthwise()) return cpu::depthwise_grad_input(s.depthwise_shape(), dy, w, dx);
    const std::int64_t og = s.out_per_group(), taps = s.taps(), n = s.positions();
    const std::int64_t plane = s.H * s.W;
    const ImageChunks chunks = image_chunks(s);
    for_each_unit(chunks.count, s.groups, unit_flops(s, chunks), [&](std::int64_t c, std::int64_t g) {
        const std::int64_t first = chunks.first(c), images = chunks.size(c, s.B), cols = images * n;
        T* dxg = dx + (first * s.C + g * s.in_per_group()) * plane;
        const T* wg = w + g * og * taps;
        const T* dyg = dy + (first * s.O + g * og) * n;
        if (images > 1) {
            T* gathered = scratch<T>(1, og * cols);
            gather_chunk(s, dy, first, images, g, gathered);
            dyg = gathered;
        } else if (s.needs_no_unrolling()) {  // the col matrix is dx itself
            cpu::gemm(true, false, taps, n, og, T(1), wg, taps, dyg, n, T(0), dxg, n);
            return;
        }
        T* dcol = scratch<T>(0, taps * cols);
        cpu::gemm(true, false, taps, cols, og, T(1), wg, taps, dyg, cols, T(0), dcol, cols);
        for (std::int64_t i = 0; i < images; ++i)
            cpu::col2im(dcol + i * n, s.geometry(), dxg + i * s.C * plane, cols);
    });
}

// dW_g = sum over images b of dy_g[b] col[b]^T. The chunks are grouped into fixed runs of at
// least kImagesPerPartial images; each (run, group) sums its chunks in order into a partial
// result (one gemm per chunk, its depth spanning the chunk's images), the runs work in parallel,
// and the partials are added in run order. The cut depends only on the shapes, so the result is
// the same for any thread count.
constexpr std::int64_t kImagesPerPartial = 8;

template <class T>
void conv2d_grad_weight(const ConvShape& s, const T* x, const T* dy, T* dw) {
    if (s.depthwise()) return cpu::depthwise_grad_weight(s.depthwise_shape(), x, dy, dw);
    const std::int64_t og = s.out_per_group(), taps = s.taps(), n = s.positions();
    const std::int64_t weights = s.O * taps;
    std::fill(dw, dw + weights, T(0));  // stays zero for an empty batch
    if (s.B == 0) return;
    const ImageChunks chunks = image_chunks(s);
    const std::int64_t chunks_per_run = (kImagesPerPartial + chunks.images - 1) / chunks.images;
    const std::int64_t runs = (chunks.count + chunks_per_run - 1) / chunks_per_run;
    std::vector<T> partial(static_cast<std::size_t>(runs * weights));
    auto run_sum = [&](std::int64_t run, std::int64_t g) {
        T* out = partial.data() + run * weights + g * og * taps;
        const std::int64_t first_chunk = run * chunks_per_run;
        const std::int64_t last_chunk = std::min(chunks.count, first_chunk + chunks_per_run);
        for (std::int64_t c = first_chunk; c < last_chunk; ++c) {
            const std::int64_t first = chunks.first(c), images = chunks.size(c, s.B);
            const std::int64_t cols = images * n;
            const T* col = chunk_col(s, x, first, images, g);
            const T* dyg = dy + (first * s.O + g * og) * n;
            if (images > 1) {
                T* gathered = scratch<T>(1, og * cols);
                gather_chunk(s, dy, first, images, g, gathered);
                dyg = gathered;
            }
            cpu::gemm(false, true, og, taps, cols, T(1), dyg, cols, col, cols,
                      c == first_chunk ? T(0) : T(1), out, taps);
        }
    };
    for_each_unit(runs, s.groups, unit_flops(s, chunks) * chunks_per_run, run_sum);
    parallel_for(0, weights, 4096, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
            T total = partial[i];
            for (std::int64_t run = 1; run < runs; ++run) total += partial[run * weights + i];
            dw[i] = total;
        }
    });
}

// db[o] = sum over images of (sum over positions of dy[b][o]), each in fixed chunks.
template <class T>
void conv2d_grad_bias(const ConvShape& s, const T* dy, T* db) {
    std::vector<T> per_image(static_cast<std::size_t>(s.B * s.O));
    cpu::sum_along(dy, per_image.data(), DimSplit{s.B * s.O, s.positions(), 1});
    cpu::sum_along(per_image.data(), db, DimSplit{1, s.B, s.O});
}

// ---------------------------------------------------------------------------------------------
// on a GPU: cuDNN when retort has it (engine/cuda/cudnn_conv.h); otherwise im2col / col2im
// kernels around cuBLAS products, direct kernels for depthwise (engine/kernels/conv.h), each
// image's product one item of a strided batch.

kernels::ConvWindow conv_window(const ConvShape& s) {
    return {s.in_per_group(), s.H, s.W, s.kh, s.kw, s.options.stride[0], s.options.stride[1],
            s.options.padding[0], s.options.padding[1], s.options.dilation[0],
            s.options.dilation[1], s.OH, s.OW};
}

kernels::DepthwiseLayout depthwise_layout(const ConvShape& s) {
    kernels::ConvWindow g = conv_window(s);
    g.channels = 1;
    return {s.B, s.C, s.O / s.C, g};
}

// Images per chunk on a GPU: the chunk's col matrices stay under 2^26 values (256 MiB of f32).
std::int64_t gpu_chunk_images(const ConvShape& s) {
    const std::int64_t per_image = std::max<std::int64_t>(1, s.taps() * s.positions());
    return std::clamp<std::int64_t>((std::int64_t(1) << 26) / per_image, 1, std::max<std::int64_t>(s.B, 1));
}

// The strided batch of one group over `images` images: item i multiplies at a_base + i * a_step,
// b_base + i * b_step into c_base + i * c_step (a step of 0 shares that operand; a shared output
// sums the items in order, the first with `beta`).
template <class T>
void group_products(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
                    std::int64_t K, const T* A, std::int64_t lda, std::int64_t a_step, const T* B,
                    std::int64_t ldb, std::int64_t b_step, T* C, std::int64_t ldc,
                    std::int64_t c_step, std::int64_t images, T beta) {
    std::vector<std::int64_t> a_off(images), b_off(images), c_off(images);
    for (std::int64_t i = 0; i < images; ++i) {
        a_off[i] = i * a_step;
        b_off[i] = i * b_step;
        c_off[i] = i * c_step;
    }
    cpu::GemmBatch<T> g;
    g.trans_a = trans_a;
    g.trans_b = trans_b;
    g.M = M;
    g.N = N;
    g.K = K;
    g.beta = beta;
    g.A = A;
    g.lda = lda;
    g.B = B;
    g.ldb = ldb;
    g.C = C;
    g.ldc = ldc;
    g.count = images;
    g.a_offset = a_off.data();
    g.b_offset = b_off.data();
    g.c_offset = c_off.data();
    cuda::gemm_batched(device, g);
}

cuda::CudnnConvShape cudnn_shape(const ConvShape& s) {
    return {s.B, s.C, s.H, s.W, s.O, s.kh, s.kw, s.OH, s.OW, s.groups, s.options.stride,
            s.options.padding, s.options.dilation};
}

// y's planes start at the bias (the products add onto it); false when there is none.
template <class T>
bool fill_with_bias(const ConvShape& s, const Tensor& bias, Tensor& y) {
    if (!bias.defined()) return false;
    const Shape bias_shape{s.O, 1};
    const Shape planes{s.B, s.O, s.positions()};
    cuda::launch(y.device(), y.numel(),
                 kernels::BroadcastCopy<T>{bias.device_data<T>(), y.device_data<T>(),
                                           kernels::make_broadcast_index<1>(planes, {&bias_shape})});
    return true;
}

template <class T>
void conv2d_forward_gpu(const ConvShape& s, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, Tensor& y) {
    const Device device = x.device();
    if (cuda::cudnn_for(s.depthwise()) && !reduced_precision()) {  // bf16 / f16: the GEMM path's tensor cores
        const bool with_bias = fill_with_bias<T>(s, bias, y);
        cuda::cudnn_conv_forward(device, x.dtype(), cudnn_shape(s), x.raw_device_data(),
                                 weight.raw_device_data(), y.raw_device_data(), with_bias ? 1 : 0);
        return;
    }
    if (s.depthwise()) {
        cuda::launch(device, y.numel(),
                     kernels::DepthwiseForward<T>{
                         x.device_data<T>(), weight.device_data<T>(),
                         bias.defined() ? bias.device_data<T>() : nullptr, y.device_data<T>(),
                         depthwise_layout(s)});
        return;
    }
    const T beta = fill_with_bias<T>(s, bias, y) ? T(1) : T(0);
    const kernels::ConvWindow g = conv_window(s);
    const std::int64_t taps = s.taps(), P = s.positions(), per = s.out_per_group();
    const std::int64_t chunk = gpu_chunk_images(s), plane = s.H * s.W;
    Tensor col = Tensor::empty({chunk * taps * P}, x.dtype(), device);
    for (std::int64_t first = 0; first < s.B; first += chunk) {
        const std::int64_t n = std::min(chunk, s.B - first);
        for (std::int64_t group = 0; group < s.groups; ++group) {
            cuda::launch(device, n * taps * P,
                         kernels::Im2Col<T>{x.device_data<T>() +
                                                (first * s.C + group * s.in_per_group()) * plane,
                                            col.device_data<T>(), g, s.C * plane});
            // y_i (per x P) = W_g (per x taps) col_i (taps x P)
            group_products<T>(device, false, false, per, P, taps,
                              weight.device_data<T>() + group * per * taps, taps, 0,
                              col.device_data<T>(), P, taps * P,
                              y.device_data<T>() + (first * s.O + group * per) * P, P, s.O * P, n,
                              beta);
        }
    }
}

template <class T>
void conv2d_grad_input_gpu(const ConvShape& s, const Tensor& dy, const Tensor& weight, Tensor& dx) {
    const Device device = dy.device();
    if (cuda::cudnn_for(s.depthwise()) && !reduced_precision()) {
        cuda::cudnn_conv_backward_data(device, dy.dtype(), cudnn_shape(s), dy.raw_device_data(),
                                       weight.raw_device_data(), dx.raw_device_data());
        return;
    }
    if (s.depthwise()) {
        cuda::launch(device, dx.numel(),
                     kernels::DepthwiseGradInput<T>{dy.device_data<T>(), weight.device_data<T>(),
                                                    dx.device_data<T>(), depthwise_layout(s)});
        return;
    }
    const kernels::ConvWindow g = conv_window(s);
    const std::int64_t taps = s.taps(), P = s.positions(), per = s.out_per_group();
    const std::int64_t chunk = gpu_chunk_images(s), plane = s.H * s.W;
    Tensor dcol = Tensor::empty({chunk * taps * P}, dy.dtype(), device);
    for (std::int64_t first = 0; first < s.B; first += chunk) {
        const std::int64_t n = std::min(chunk, s.B - first);
        for (std::int64_t group = 0; group < s.groups; ++group) {
            // dcol_i (taps x P) = W_g^T (taps x per) dy_i (per x P)
            group_products<T>(device, true, false, taps, P, per,
                              weight.device_data<T>() + group * per * taps, taps, 0,
                              dy.device_data<T>() + (first * s.O + group * per) * P, P, s.O * P,
                              dcol.device_data<T>(), P, taps * P, n, T(0));
            cuda::launch(device, n * s.in_per_group() * plane,
                         kernels::Col2Im<T>{dcol.device_data<T>(),
                                            dx.device_data<T>() +
                                                (first * s.C + group * s.in_per_group()) * plane,
                                            g, s.C * plane});
        }
    }
}

template <class T>
void conv2d_grad_weight_gpu(const ConvShape& s, const Tensor& x, const Tensor& dy, Tensor& dw) {
    const Device device = x.device();
    if (cuda::cudnn_for(s.depthwise()) && !reduced_precision()) {
        cuda::cudnn_conv_backward_filter(device, x.dtype(), cudnn_shape(s), x.raw_device_data(),
                                         dy.raw_device_data(), dw.raw_device_data());
        return;
    }
    if (s.depthwise()) {
        cuda::launch(device, dw.numel(),
                     kernels::DepthwiseGradWeight<T>{x.device_data<T>(), dy.device_data<T>(),
                                                     dw.device_data<T>(), depthwise_layout(s)});
        return;
    }
    const kernels::ConvWindow g = conv_window(s);
    const std::int64_t taps = s.taps(), P = s.positions(), per = s.out_per_group();
    const std::int64_t chunk = gpu_chunk_images(s), plane = s.H * s.W;
    Tensor col = Tensor::empty({chunk * taps * P}, x.dtype(), device);
    for (std::int64_t first = 0; first < s.B; first += chunk) {
        const std::int64_t n = std::min(chunk, s.B - first);
        for (std::int64_t group = 0; group < s.groups; ++group) {
            cuda::launch(device, n * taps * P,
                         kernels::Im2Col<T>{x.device_data<T>() +
                                                (first * s.C + group * s.in_per_group()) * plane,
                                            col.device_data<T>(), g, s.C * plane});
            // dW_g (per x taps) += dy_i (per x P) col_i^T (P x taps), over the images in order
            group_products<T>(device, false, true, per, taps, P,
                              dy.device_data<T>() + (first * s.O + group * per) * P, P, s.O * P,
                              col.device_data<T>(), P, taps * P,
                              dw.device_data<T>() + group * per * taps, taps, 0, n,
                              first == 0 ? T(0) : T(1));
        }
    }
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options) {
    if (x.defined() && x.dim() == 3)  // one unbatched image, as PyTorch allows
        return conv2d(x.unsqueeze(0), weight, bias, options).squeeze(0);
    const ConvShape s = check_conv2d(x, weight, bias, options);
    require(options.epilogue == ConvEpilogue::none || !needs_grad({x, weight, bias}),
            "conv2d: a fused activation is for inference only (no gradient is recorded through "
            "it); apply the activation as its own op when training");

    Tensor y = Tensor::empty({s.B, s.O, s.OH, s.OW}, x.dtype(), x.device());
    // bf16 / f16 runs multiply rounded operands (engine/precision.h)
    const Tensor rx = round_for_products(x), rw = round_for_products(weight);
    visit_floating(x.dtype(), "conv2d", [&]<class T>(Type<T>) {
        if (x.device().is_cuda()) {
            require(options.epilogue == ConvEpilogue::none,
                    "conv2d: fused activations run on the CPU only; apply it as its own op");
            conv2d_forward_gpu<T>(s, rx, rw, bias, y);
            return;
        }
        conv2d_forward<T>(s, rx.data<T>(), rw.data<T>(),
                          bias.defined() ? bias.data<T>() : nullptr, y.data<T>());
    });
    // each output element is a dot product over (C / groups) * kh * kw taps
    if (weight.size(0) > 0) add_flops(2 * y.numel() * (weight.numel() / weight.size(0)));

    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    // dx needs only the weight and dW only the input: save just what will be used.
    record(y, "conv2d", {x, weight, bias},
           [sx = need_w ? x.detach() : Tensor(), sw = need_x ? weight.detach() : Tensor(),
            x_shape = x.shape(), w_shape = weight.shape(), s, need_x, need_w,
            need_b](const Tensor& dy) {
               const Device device = dy.device();
               Tensor dx = need_x ? Tensor::empty(x_shape, dy.dtype(), device) : Tensor();
               Tensor dw = need_w ? Tensor::empty(w_shape, dy.dtype(), device) : Tensor();
               const Tensor rdy = round_for_products(dy);
               const Tensor rw = need_x ? round_for_products(sw) : Tensor();
               const Tensor rx = need_w ? round_for_products(sx) : Tensor();
               if (device.is_cuda()) {
                   visit_floating(dy.dtype(), "conv2d backward", [&]<class T>(Type<T>) {
                       if (need_x) conv2d_grad_input_gpu<T>(s, rdy, rw, dx);
                       if (need_w) conv2d_grad_weight_gpu<T>(s, rx, rdy, dw);
                   });
                   return std::vector<Tensor>{dx, dw, need_b ? sum(dy, {0, 2, 3}) : Tensor()};
               }
               Tensor db = need_b ? Tensor::empty({s.O}, dy.dtype()) : Tensor();
               visit_floating(dy.dtype(), "conv2d backward", [&]<class T>(Type<T>) {
                   if (need_x) conv2d_grad_input<T>(s, rdy.data<T>(), rw.data<T>(), dx.data<T>());
                   if (need_w) conv2d_grad_weight<T>(s, rx.data<T>(), rdy.data<T>(), dw.data<T>());
                   if (need_b) conv2d_grad_bias<T>(s, dy.data<T>(), db.data<T>());
               });
               return std::vector<Tensor>{dx, dw, db};
           });
    return y;
}

}  // namespace retort
