// engine/ops/shape_ops.cpp: permute, transpose, concat, stack, narrow, split, index_select,
// gather, scatter_add and pad: ops that move elements around (scatter_add and some backward
// passes also add them up).
//
// Shapes: any rank; a `dim` may be negative (-1 is the last). Index tensors are int32 or int64.
// Matches torch.permute / torch.transpose (which here return a contiguous copy), torch.cat,
// torch.stack, torch.narrow, torch.split, torch.index_select, torch.gather,
// torch.Tensor.scatter_add (out of place) and torch.nn.functional.pad.
//
// Backward: every gradient is itself a move of elements, so it reuses the ops of this file:
//   permute      <- permute by the inverse order
//   concat       <- narrow of the gradient, one piece per input
//   narrow       <- the gradient copied into a zero tensor of the input's shape
//   index_select <- index_add into zeros (a row picked twice gets both gradients)
//   gather       <- scatter_add into zeros;  scatter_add <- (g for x, gather(g) for src)
//   pad          <- constant: pad by the negated pads (crops what was added, zero-fills what was
//                   cropped); reflect/replicate: each output's gradient goes back to the input
//                   element it was copied from.
// Saved: shapes, and the index tensors; no op here needs the input's values in backward.
//
// Determinism: where gradients accumulate (index_select backward, scatter_add, pad backward),
// one thread owns each output element and adds its contributions in index order.
#include "engine/ops/shape_ops.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/copy.h"
#include "engine/kernels/indexing.h"
#include "engine/ops.h"
#include "engine/parallel.h"

namespace retort {

namespace {

// For the ops that run on either device.
void check_defined(const Tensor& t, const char* op) {
    require(t.defined(), op, ": undefined tensor argument");
}

void check_same_device(const Tensor& x, const Tensor& other, const char* op, const char* name) {
    require(other.device() == x.device(), op, ": the input is on ", x.device().str(), " but ", name,
            " is on ", other.device().str());
}


std::int64_t product(const Shape& s, std::size_t begin, std::size_t end) {
    std::int64_t n = 1;
    for (std::size_t i = begin; i < end; ++i) n *= s[i];
    return n;
}

// Calls f(Type<I>{}) for an int32 or int64 index tensor.
template <class F>
void visit_index(const Tensor& index, const char* op, F&& f) {
    if (index.dtype() == DType::i32) return f(Type<std::int32_t>{});
    if (index.dtype() == DType::i64) return f(Type<std::int64_t>{});
    fail(op, ": index must be an int32 or int64 tensor, got ", dtype_name(index.dtype()));
}

// Every index value must address an element of dim `dim` (size `size`) of a tensor of `shape`.
void check_index_range(const Tensor& index, const Shape& shape, int dim, const char* op) {
    const std::int64_t size = shape[dim];
    const Tensor host = index.to(Device::cpu());  // a GPU's index is checked on a copy
    visit_index(index, op, [&]<class I>(Type<I>) {
        const I* p = host.data<I>();
        for (std::int64_t k = 0; k < index.numel(); ++k)
            if (p[k] < 0 || p[k] >= size)
                fail(op, ": index ", p[k], " is out of range for dim ", dim, " (size ", size,
                     ") of shape ", shape_str(shape));
    });
}

// ---------------------------------------------------------------------------------------------
// index_select on a GPU (engine/kernels/indexing.h): rows by index, and their gradients gathered
// back per row of x.

Tensor index_select_gpu(const Tensor& x, int d, const Tensor& index) {
    const std::int64_t n = index.numel();
    Shape out_shape = x.shape();
    out_shape[d] = n;
    Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
    const DimSplit s = split_at_dim(x.shape(), d);
    visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
        visit_index(index, "index_select", [&]<class I>(Type<I>) {
            cuda::launch(x.device(), out.numel(),
                         kernels::IndexSelect<T, I>{x.device_data<T>(), index.device_data<I>(),
                                                    out.device_data<T>(), s, n});
        });
    });
    record(out, "index_select", {x, index}, [shape = x.shape(), si = index.detach(), s, n](const Tensor& g) {
        Tensor gx = Tensor::empty(shape, g.dtype(), g.device());
        visit_floating(g.dtype(), "index_select backward", [&]<class T>(Type<T>) {
            visit_index(si, "index_select", [&]<class I>(Type<I>) {
                cuda::launch(g.device(), gx.numel(),
                             kernels::IndexAdd<T, I>{g.device_data<T>(), si.device_data<I>(),
                                                     gx.device_data<T>(), s, n});
            });
        });
        return std::vector<Tensor>{gx, Tensor()};
    });
    return out;
}

// ---------------------------------------------------------------------------------------------
// permute

// A permuted copy in its simplest form: output dims of size 1 dropped, and neighbouring output
// dims merged when they are also neighbours, in the same order, in the input. Transposing the
// last two dims of (B, H, W) stays 3-D; permuting (B, C, H, W) to (B, H, W, C) becomes
// (B, H*W, C) with input strides (C*H*W, 1, H*W).
struct PermutePlan {
    Shape sizes;       // output dims, outermost first (the output is contiguous in them)
    Shape in_strides;  // where one step along each output dim moves in the input
};

PermutePlan plan_permute(const Shape& in_shape, const std::vector<int>& order) {
    const Shape strides = contiguous_strides(in_shape);
    PermutePlan plan;
    for (int d : order) {
        if (in_shape[d] == 1) continue;
        if (!plan.sizes.empty() && plan.in_strides.back() == strides[d] * in_shape[d]) {
            plan.sizes.back() *= in_shape[d];
            plan.in_strides.back() = strides[d];
        } else {
            plan.sizes.push_back(in_shape[d]);
            plan.in_strides.push_back(strides[d]);
        }
    }
    if (plan.sizes.empty()) plan = {{1}, {1}};
    return plan;
}

// Input and output offsets of coordinate `flat` over the plan dims listed in `dims`.
std::pair<std::int64_t, std::int64_t> offsets_of(std::int64_t flat, const std::vector<int>& dims,
                                                 const PermutePlan& plan, const Shape& out_strides) {
    std::int64_t in = 0, out = 0;
    for (auto it = dims.rbegin(); it != dims.rend(); ++it) {
        const std::int64_t coord = flat % plan.sizes[*it];
        flat /= plan.sizes[*it];
        in += coord * plan.in_strides[*it];
        out += coord * out_strides[*it];
    }
    return {in, out};
}

// When the input's innermost dim stays innermost, the copy is a sequence of contiguous rows.
template <class T>
void copy_rows(const T* in, T* out, const PermutePlan& plan) {
    const int rank = static_cast<int>(plan.sizes.size());
    const std::int64_t inner = plan.sizes.back();
    const std::int64_t rows = product(plan.sizes, 0, rank - 1);
    if (rows == 1) {
        parallel_for(0, inner, 65536, [&](std::int64_t b, std::int64_t e) {
            std::copy(in + b, in + e, out + b);
        });
        return;
    }
    std::vector<int> row_dims(rank - 1);
    std::iota(row_dims.begin(), row_dims.end(), 0);
    const Shape out_strides = contiguous_strides(plan.sizes);
    parallel_for(0, rows, grain_for(inner), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t r = b; r < e; ++r) {
            auto [src, dst] = offsets_of(r, row_dims, plan, out_strides);
            std::copy(in + src, in + src + inner, out + dst);
        }
    });
}

// Otherwise the copy is a batch of 2-D transposes between output dim k (contiguous in the input)
// and the last output dim (contiguous in the output). Each square tile is read into a small
// buffer along input rows and written out along output rows, so memory is only ever touched in
// contiguous runs; the strided part of the transpose happens inside the buffer, in L1 cache.
// (Reading the input column by column instead would, for power-of-two sizes, map every line of a
// tile to the same cache set.)
template <class T>
void copy_tiled(const T* in, T* out, const PermutePlan& plan) {
    constexpr std::int64_t kTile = 32;
    const int rank = static_cast<int>(plan.sizes.size());
    const int last = rank - 1;
    const int k = static_cast<int>(std::find(plan.in_strides.begin(), plan.in_strides.end(), 1) -
                                   plan.in_strides.begin());
    internal_check(k < last, "permute: no input-contiguous dim before the last output dim");
    std::vector<int> batch_dims;
    for (int d = 0; d < last; ++d)
        if (d != k) batch_dims.push_back(d);
    const Shape out_strides = contiguous_strides(plan.sizes);
    const std::int64_t size_k = plan.sizes[k], size_l = plan.sizes[last];
    const std::int64_t out_step_k = out_strides[k], in_step_l = plan.in_strides[last];
    const std::int64_t tiles_k = (size_k + kTile - 1) / kTile, tiles_l = (size_l + kTile - 1) / kTile;
    const std::int64_t tiles = tiles_k * tiles_l;
    std::int64_t batches = 1;
    for (int d : batch_dims) batches *= plan.sizes[d];

    parallel_for(0, batches * tiles, grain_for(kTile * kTile), [&](std::int64_t b, std::int64_t e) {
        T buffer[kTile][kTile];  // buffer[l][k]: the tile as the input holds it
        for (std::int64_t item = b; item < e; ++item) {
            auto [in_base, out_base] = offsets_of(item / tiles, batch_dims, plan, out_strides);
            const std::int64_t k0 = (item % tiles) / tiles_l * kTile, l0 = (item % tiles) % tiles_l * kTile;
            const std::int64_t nk = std::min(size_k - k0, kTile), nl = std::min(size_l - l0, kTile);
            for (std::int64_t l = 0; l < nl; ++l) {
                const T* src = in + in_base + (l0 + l) * in_step_l + k0;
                std::copy(src, src + nk, buffer[l]);
            }
            for (std::int64_t kk = 0; kk < nk; ++kk) {
                T* dst = out + out_base + (k0 + kk) * out_step_k + l0;
                for (std::int64_t l = 0; l < nl; ++l) dst[l] = buffer[l][kk];
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// slices along one dim (concat, narrow, split)

// Copies slices [src_start, src_start + length) of src along `dim` into dst at dst_start; src and
// dst agree in every other dim. Works on bytes, so it serves every dtype.
void copy_slices(const Tensor& src, std::int64_t src_start, Tensor dst, std::int64_t dst_start,
                 int dim, std::int64_t length) {
    const DimSplit s = split_at_dim(src.shape(), dim), d = split_at_dim(dst.shape(), dim);
    if (dst.device().is_cuda()) {
        require(src.device() == dst.device(), "copy between ", src.device().str(), " and ",
                dst.device().str(), " tensors: move one with .to()");
        visit_dtype(src.dtype(), [&]<class T>(Type<T>) {
            cuda::launch(dst.device(), s.outer * length * s.inner,
                         kernels::SliceCopy<T>{src.device_data<T>(), dst.device_data<T>(), s, d,
                                               src_start, dst_start, length});
        });
        return;
    }
    const std::size_t elem = dtype_size(src.dtype());
    const std::size_t bytes = static_cast<std::size_t>(length * s.inner) * elem;
    if (bytes == 0) return;
    const char* from = static_cast<const char*>(src.raw_data());
    char* to = static_cast<char*>(dst.raw_data());
    parallel_for(0, s.outer, grain_for(length * s.inner), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t o = b; o < e; ++o)
            std::memcpy(to + static_cast<std::size_t>((o * d.size + dst_start) * d.inner) * elem,
                        from + static_cast<std::size_t>((o * s.size + src_start) * s.inner) * elem,
                        bytes);
    });
}

// Calls fn(o, i_begin, i_end) over blocks of the (outer, inner) coordinates of a tensor viewed as
// [outer][n][inner], threaded. A block owns whole lines along the middle dim, so a kernel that
// accumulates along that dim does it in one thread, in index order.
template <class F>
void for_each_line_block(std::int64_t outer, std::int64_t n, std::int64_t inner, F fn) {
    constexpr std::int64_t kBlock = 1024;
    const std::int64_t blocks = (inner + kBlock - 1) / kBlock;
    const std::int64_t work = std::max<std::int64_t>(n, 1) * std::min(inner, kBlock);
    parallel_for(0, outer * blocks, grain_for(work), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t item = b; item < e; ++item) {
            const std::int64_t i0 = item % blocks * kBlock;
            fn(item / blocks, i0, std::min(inner, i0 + kBlock));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// gather / scatter_add

// How an index of shape I addresses a tensor of shape S along `dim`: the index is viewed as
// [outer][n][inner] around dim, and its element (o, j, i) stands for the element of S with the
// same coordinates except along dim, where it holds the index value (gather, scatter_add) or j
// (the src of scatter_add). S may be larger than I, as torch.gather allows, so the offsets of the
// outer and inner coordinates are tabulated once.
struct IndexWalk {
    std::int64_t outer = 1, n = 1, inner = 1;
    Shape outer_offset;  // per o: offset in S of the coordinates before dim
    Shape inner_offset;  // per i: offset in S of the coordinates after dim
    std::int64_t dim_stride = 1;
};

// Offsets in S (strides `strides`) of every coordinate of I's dims [begin, end), row-major.
Shape coordinate_offsets(const Shape& index_shape, const Shape& strides, int begin, int end) {
    Shape offsets{0};
    for (int d = begin; d < end; ++d) {
        Shape next;
        next.reserve(offsets.size() * static_cast<std::size_t>(index_shape[d]));
        for (std::int64_t base : offsets)
            for (std::int64_t k = 0; k < index_shape[d]; ++k) next.push_back(base + k * strides[d]);
        offsets = std::move(next);
    }
    return offsets;
}

IndexWalk index_walk(const Shape& index_shape, const Shape& target, int dim) {
    const Shape strides = contiguous_strides(target);
    const int rank = static_cast<int>(index_shape.size());
    const DimSplit s = split_at_dim(index_shape, dim);
    return {s.outer, s.size, s.inner, coordinate_offsets(index_shape, strides, 0, dim),
            coordinate_offsets(index_shape, strides, dim + 1, rank), strides[dim]};
}

// torch.gather's rule: the index has x's rank and is no larger than x in any dim but `free_dim`
// (free_dim = -1: in no dim, as for the src of scatter_add).
void check_index_fits(const Tensor& index, const Tensor& x, int free_dim, const char* op,
                      const char* x_name) {
    require(index.dim() == x.dim(), op, ": index has ", index.dim(), " dims but ", x_name,
            " has ", x.dim(), " (shapes ", shape_str(index.shape()), " and ",
            shape_str(x.shape()), ")");
    for (int d = 0; d < x.dim(); ++d)
        require(d == free_dim || index.shape()[d] <= x.shape()[d], op, ": index of shape ",
                shape_str(index.shape()), " is larger than ", x_name, " of shape ",
                shape_str(x.shape()), " in dim ", d);
}

template <class T, class I>
void gather_kernel(const T* x, const I* index, T* out, const IndexWalk& w) {
    for_each_line_block(w.outer, w.n, w.inner, [&](std::int64_t o, std::int64_t i0, std::int64_t i1) {
        const T* x_o = x + w.outer_offset[o];
        for (std::int64_t j = 0; j < w.n; ++j) {
            const std::int64_t row = (o * w.n + j) * w.inner;
            for (std::int64_t i = i0; i < i1; ++i)
                out[row + i] = x_o[index[row + i] * w.dim_stride + w.inner_offset[i]];
        }
    });
}

// out[... index[o][j][i] ...] += src[... j ...]; `to` walks out, `from` walks src.
template <class T, class I>
void scatter_add_kernel(T* out, const I* index, const T* src, const IndexWalk& to,
                        const IndexWalk& from) {
    for_each_line_block(to.outer, to.n, to.inner, [&](std::int64_t o, std::int64_t i0, std::int64_t i1) {
        T* out_o = out + to.outer_offset[o];
        const T* src_o = src + from.outer_offset[o];
        for (std::int64_t j = 0; j < to.n; ++j) {
            const std::int64_t row = (o * to.n + j) * to.inner;
            const T* src_j = src_o + j * from.dim_stride;
            for (std::int64_t i = i0; i < i1; ++i)
                out_o[index[row + i] * to.dim_stride + to.inner_offset[i]] +=
                    src_j[from.inner_offset[i]];
        }
    });
}

// out += src scattered along dim at index (shapes already checked); out is changed in place.
void scatter_add_into(Tensor out, int dim, const Tensor& index, const Tensor& src) {
    if (index.numel() == 0) return;
    if (out.device().is_cuda()) {  // out = out + scattered src, as a gather per element of out
        const Tensor base = out.clone();
        visit_dtype(out.dtype(), [&]<class T>(Type<T>) {
            visit_index(index, "scatter_add", [&]<class I>(Type<I>) {
                cuda::launch(out.device(), out.numel(),
                             kernels::ScatterAdd<T, I>{
                                 base.device_data<T>(), index.device_data<I>(),
                                 src.device_data<T>(), out.device_data<T>(),
                                 kernels::make_layout(out.shape()),
                                 kernels::make_layout(index.shape()),
                                 kernels::make_layout(src.shape()), dim});
            });
        });
        return;
    }
    const IndexWalk to = index_walk(index.shape(), out.shape(), dim);
    const IndexWalk from = index_walk(index.shape(), src.shape(), dim);
    visit_dtype(out.dtype(), [&]<class T>(Type<T>) {
        visit_index(index, "scatter_add", [&]<class I>(Type<I>) {
            scatter_add_kernel(out.data<T>(), index.data<I>(), src.data<T>(), to, from);
        });
    });
}

// ---------------------------------------------------------------------------------------------
// pad

enum class PadMode { constant, reflect, replicate };

PadMode parse_pad_mode(const std::string& mode) {
    if (mode == "constant") return PadMode::constant;
    if (mode == "reflect") return PadMode::reflect;
    if (mode == "replicate") return PadMode::replicate;
    fail("pad: unknown mode \"", mode, "\" (expected \"constant\", \"reflect\" or \"replicate\")");
}

kernels::PadKind gpu_pad_kind(PadMode m) {
    if (m == PadMode::reflect) return kernels::PadKind::reflect;
    if (m == PadMode::replicate) return kernels::PadKind::replicate;
    return kernels::PadKind::constant;
}

// For one padded dim: the input coordinate each output coordinate copies, or -1 for the fill.
Shape source_coordinates(std::int64_t in_size, std::int64_t left, std::int64_t out_size,
                         PadMode mode) {
    Shape source(static_cast<std::size_t>(out_size));
    for (std::int64_t o = 0; o < out_size; ++o) {
        std::int64_t s = o - left;
        if (s < 0 || s >= in_size) {
            if (mode == PadMode::constant) s = -1;
            if (mode == PadMode::reflect) s = s < 0 ? -s : 2 * (in_size - 1) - s;  // edge not repeated
            if (mode == PadMode::replicate) s = std::clamp<std::int64_t>(s, 0, in_size - 1);
        }
        source[o] = s;
    }
    return source;
}

// The pad as index maps: the leading unpadded dims form `outer` slabs; inside a slab, every
// padded dim has a source_coordinates map.
struct PadPlan {
    std::int64_t outer = 1;
    Shape in_shape, out_shape;      // the padded dims only
    std::vector<Shape> source;      // per padded dim
    std::int64_t in_slab = 1, out_slab = 1;
};

PadPlan plan_pad(const Shape& shape, const std::vector<std::int64_t>& pads, PadMode mode) {
    const int rank = static_cast<int>(shape.size());
    const int padded = static_cast<int>(pads.size() / 2);
    PadPlan plan;
    plan.outer = product(shape, 0, rank - padded);
    for (int d = rank - padded; d < rank; ++d) {
        const std::size_t pair = 2 * static_cast<std::size_t>(rank - 1 - d);  // last dim first
        const std::int64_t left = pads[pair], right = pads[pair + 1], in = shape[d];
        const std::int64_t out = in + left + right;
        require(out >= 0, "pad: padding (", left, ", ", right, ") of dim ", d, " (size ", in,
                ") of shape ", shape_str(shape), " gives a negative size ", out);
        if (mode == PadMode::reflect)
            require(left < in && right < in, "pad: reflect padding (", left, ", ", right,
                    ") must be less than the size ", in, " of dim ", d, " of shape ",
                    shape_str(shape));
        if (mode == PadMode::replicate)
            require(in > 0 || out == 0, "pad: replicate padding of dim ", d, " of shape ",
                    shape_str(shape), " has nothing to replicate");
        plan.in_shape.push_back(in);
        plan.out_shape.push_back(out);
        plan.source.push_back(source_coordinates(in, left, out, mode));
        plan.in_slab *= in;
        plan.out_slab *= out;
    }
    return plan;
}

// Calls row(in_offset or -1, out_offset) for each output row (all padded dims but the last) of
// slab o; in_offset is -1 when the row lies wholly in the constant fill.
template <class RowFn>
void for_each_pad_row(const PadPlan& plan, std::int64_t o, RowFn row) {
    const int padded = static_cast<int>(plan.out_shape.size());
    const std::int64_t rows = product(plan.out_shape, 0, padded - 1);
    const Shape in_strides = contiguous_strides(plan.in_shape);
    const std::int64_t out_width = plan.out_shape.back();
    for (std::int64_t r = 0; r < rows; ++r) {
        std::int64_t in = o * plan.in_slab, rest = r;
        for (int d = padded - 2; d >= 0 && in >= 0; --d) {
            const std::int64_t s = plan.source[d][rest % plan.out_shape[d]];
            rest /= plan.out_shape[d];
            in = s < 0 ? -1 : in + s * in_strides[d];
        }
        row(in, o * plan.out_slab + r * out_width);
    }
}

template <class T>
void pad_kernel(const T* x, T* out, const PadPlan& plan, T value) {
    const Shape& last = plan.source.back();
    const std::int64_t width = static_cast<std::int64_t>(last.size());
    parallel_for(0, plan.outer, grain_for(plan.out_slab), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t o = b; o < e; ++o)
            for_each_pad_row(plan, o, [&](std::int64_t in, std::int64_t at) {
                for (std::int64_t w = 0; w < width; ++w)
                    out[at + w] = (in < 0 || last[w] < 0) ? value : x[in + last[w]];
            });
    });
}

// Reflect/replicate backward: each output's gradient goes to the element it copied; a slab is
// one thread's, and its rows are visited in order, so the sums are deterministic.
template <class T>
void pad_backward_kernel(const T* g, T* gx, const PadPlan& plan) {
    const Shape& last = plan.source.back();
    const std::int64_t width = static_cast<std::int64_t>(last.size());
    parallel_for(0, plan.outer, grain_for(plan.out_slab), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t o = b; o < e; ++o)
            for_each_pad_row(plan, o, [&](std::int64_t in, std::int64_t at) {
                for (std::int64_t w = 0; w < width; ++w) gx[in + last[w]] += g[at + w];
            });
    });
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order) {
    check_defined(x, "permute");
    const int rank = x.dim();
    std::vector<int> dims;
    std::vector<bool> seen(rank, false);
    bool valid = static_cast<int>(order.size()) == rank;
    for (std::size_t i = 0; valid && i < order.size(); ++i) {
        valid = order[i] >= -rank && order[i] < rank;
        if (!valid) break;
        const int d = static_cast<int>(order[i] < 0 ? order[i] + rank : order[i]);
        valid = !seen[d];
        seen[d] = true;
        dims.push_back(d);
    }
    require(valid, "permute: order ", shape_str(order), " is not a permutation of the ", rank,
            " dims of shape ", shape_str(x.shape()));

    Shape out_shape;
    for (int d : dims) out_shape.push_back(x.shape()[d]);
    Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
    if (out.numel() > 0) {
        const PermutePlan plan = plan_permute(x.shape(), dims);
        visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
            if (x.device().is_cuda()) {
                const int plan_rank = static_cast<int>(plan.sizes.size());
                require(plan_rank <= kernels::kMaxKernelDims, "permute: ", plan_rank,
                        " independent dims; GPU kernels take at most ", kernels::kMaxKernelDims);
                kernels::PermuteCopy<T> copy{x.device_data<T>(), out.device_data<T>(), plan_rank,
                                             {}, {}};
                for (int d = 0; d < plan_rank; ++d) {
                    copy.sizes[d] = plan.sizes[d];
                    copy.in_strides[d] = plan.in_strides[d];
                }
                cuda::launch(x.device(), out.numel(), copy);
            } else if (plan.in_strides.back() == 1)
                copy_rows(x.data<T>(), out.data<T>(), plan);
            else
                copy_tiled(x.data<T>(), out.data<T>(), plan);
        });
    }
    record(out, "permute", {x}, [dims](const Tensor& g) {
        std::vector<std::int64_t> inverse(dims.size());
        for (std::size_t i = 0; i < dims.size(); ++i) inverse[dims[i]] = static_cast<std::int64_t>(i);
        return std::vector<Tensor>{permute(g, inverse)};
    });
    return out;
}

Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1) {
    check_defined(x, "transpose");
    const int a = normalize_dim(dim0, x.dim(), "transpose"), b = normalize_dim(dim1, x.dim(), "transpose");
    std::vector<std::int64_t> order(x.dim());
    std::iota(order.begin(), order.end(), 0);
    std::swap(order[a], order[b]);
    return permute(x, order);
}

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t dim) {
    require(!tensors.empty(), "concat: needs at least one tensor");
    for (const Tensor& t : tensors) check_defined(t, "concat");
    const Tensor& first = tensors[0];
    const int d = normalize_dim(dim, first.dim(), "concat");
    Shape out_shape = first.shape();
    out_shape[d] = 0;
    std::vector<std::int64_t> sizes;
    std::vector<bool> needs;
    for (std::size_t k = 0; k < tensors.size(); ++k) {
        const Tensor& t = tensors[k];
        require(t.dtype() == first.dtype(), "concat: tensor ", k, " is ", dtype_name(t.dtype()),
                " but tensor 0 is ", dtype_name(first.dtype()));
        bool same = t.dim() == first.dim();
        for (int i = 0; same && i < t.dim(); ++i) same = i == d || t.shape()[i] == first.shape()[i];
        require(same, "concat: tensor ", k, " has shape ", shape_str(t.shape()),
                " but tensor 0 has shape ", shape_str(first.shape()),
                "; the sizes must match except in dim ", d);
        require(t.device() == first.device(), "concat: tensor ", k, " is on ", t.device().str(),
                " but tensor 0 is on ", first.device().str());
        sizes.push_back(t.shape()[d]);
        needs.push_back(t.requires_grad());
        out_shape[d] += t.shape()[d];
    }
    Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < tensors.size(); ++k) {
        copy_slices(tensors[k], 0, out, offset, d, sizes[k]);
        offset += sizes[k];
    }
    record(out, "concat", tensors, [sizes, needs, d](const Tensor& g) {
        std::vector<Tensor> grads;
        std::int64_t start = 0;
        for (std::size_t k = 0; k < sizes.size(); ++k) {
            grads.push_back(needs[k] ? narrow(g, d, start, sizes[k]) : Tensor());
            start += sizes[k];
        }
        return grads;
    });
    return out;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
    require(!tensors.empty(), "stack: needs at least one tensor");
    for (const Tensor& t : tensors) check_defined(t, "stack");
    const int d = normalize_dim(dim, tensors[0].dim() + 1, "stack");
    std::vector<Tensor> pieces;
    for (std::size_t k = 0; k < tensors.size(); ++k) {
        require(tensors[k].shape() == tensors[0].shape(), "stack: tensor ", k, " has shape ",
                shape_str(tensors[k].shape()), " but tensor 0 has shape ",
                shape_str(tensors[0].shape()), "; stack needs equal shapes");
        pieces.push_back(tensors[k].unsqueeze(d));
    }
    return concat(pieces, d);
}

Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
    check_defined(x, "narrow");
    const int d = normalize_dim(dim, x.dim(), "narrow");
    const std::int64_t size = x.shape()[d];
    const std::int64_t first = start < 0 ? start + size : start;  // as torch: counts from the end
    require(first >= 0 && length >= 0 && first + length <= size, "narrow: start ", start,
            " and length ", length, " do not fit in dim ", d, " (size ", size, ") of shape ",
            shape_str(x.shape()));
    Shape out_shape = x.shape();
    out_shape[d] = length;
    Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
    copy_slices(x, first, out, 0, d, length);
    record(out, "narrow", {x}, [shape = x.shape(), d, first, length](const Tensor& g) {
        Tensor gx = zeros(shape, g.dtype(), g.device());
        copy_slices(g, 0, gx, first, d, length);
        return std::vector<Tensor>{gx};
    });
    return out;
}

std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim) {
    check_defined(x, "split");
    const int d = normalize_dim(dim, x.dim(), "split");
    require(split_size > 0, "split: split_size must be positive, got ", split_size);
    const std::int64_t size = x.shape()[d];
    std::vector<std::int64_t> sizes;
    for (std::int64_t at = 0; at < size; at += split_size) sizes.push_back(std::min(split_size, size - at));
    if (sizes.empty()) sizes.push_back(0);  // as torch: an empty dim gives one empty piece
    return split(x, sizes, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
    check_defined(x, "split");
    const int d = normalize_dim(dim, x.dim(), "split");
    std::int64_t total = 0;
    for (std::int64_t s : sizes) {
        require(s >= 0, "split: sizes ", shape_str(sizes), " contain a negative size");
        total += s;
    }
    require(total == x.shape()[d], "split: sizes ", shape_str(sizes), " add up to ", total,
            " but dim ", d, " of shape ", shape_str(x.shape()), " has size ", x.shape()[d]);
    std::vector<Tensor> pieces;
    std::int64_t start = 0;
    for (std::int64_t s : sizes) {
        pieces.push_back(narrow(x, d, start, s));
        start += s;
    }
    return pieces;
}

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
    check_defined(x, "index_select");
    check_defined(index, "index_select");
    check_same_device(x, index, "index_select", "index");
    const int d = normalize_dim(dim, x.dim(), "index_select");
    require(index.dim() <= 1, "index_select: index must be 1-D, got shape ",
            shape_str(index.shape()));
    check_index_range(index, x.shape(), d, "index_select");
    if (x.device().is_cuda()) return index_select_gpu(x, d, index);
    const std::vector<std::int64_t> idx = index.to_vector<std::int64_t>();
    const std::int64_t n = static_cast<std::int64_t>(idx.size());
    Shape out_shape = x.shape();
    out_shape[d] = n;
    Tensor out = Tensor::empty(out_shape, x.dtype());
    const DimSplit s = split_at_dim(x.shape(), d);
    const std::size_t row_bytes = static_cast<std::size_t>(s.inner) * dtype_size(x.dtype());
    const char* from = static_cast<const char*>(x.raw_data());
    char* to = static_cast<char*>(out.raw_data());
    if (row_bytes > 0)
        parallel_for(0, s.outer * n, grain_for(s.inner), [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t r = b; r < e; ++r) {
                const std::int64_t o = r / n, j = r % n;
                std::memcpy(to + r * row_bytes, from + (o * s.size + idx[j]) * row_bytes, row_bytes);
            }
        });

    record(out, "index_select", {x, index}, [shape = x.shape(), idx, s, n](const Tensor& g) {
        // index_add: rows picked several times get the sum of their gradients, in index order
        Tensor gx = zeros(shape, g.dtype());
        visit_floating(g.dtype(), "index_select backward", [&]<class T>(Type<T>) {
            const T* src = g.data<T>();
            T* dst = gx.data<T>();
            for_each_line_block(s.outer, n, s.inner, [&](std::int64_t o, std::int64_t i0, std::int64_t i1) {
                for (std::int64_t j = 0; j < n; ++j) {
                    const T* from_row = src + (o * n + j) * s.inner;
                    T* to_row = dst + (o * s.size + idx[j]) * s.inner;
                    for (std::int64_t i = i0; i < i1; ++i) to_row[i] += from_row[i];
                }
            });
        });
        return std::vector<Tensor>{gx, Tensor()};
    });
    return out;
}

Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index) {
    check_defined(x, "gather");
    check_defined(index, "gather");
    check_same_device(x, index, "gather", "index");
    const int d = normalize_dim(dim, x.dim(), "gather");
    check_index_fits(index, x, d, "gather", "x");
    check_index_range(index, x.shape(), d, "gather");
    Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
    if (out.numel() > 0 && x.device().is_cuda()) {
        visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
            visit_index(index, "gather", [&]<class I>(Type<I>) {
                cuda::launch(x.device(), out.numel(),
                             kernels::Gather<T, I>{x.device_data<T>(), index.device_data<I>(),
                                                   out.device_data<T>(),
                                                   kernels::make_layout(index.shape()),
                                                   kernels::make_layout(x.shape()), d});
            });
        });
    } else if (out.numel() > 0) {
        const IndexWalk walk = index_walk(index.shape(), x.shape(), d);
        visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
            visit_index(index, "gather", [&]<class I>(Type<I>) {
                gather_kernel(x.data<T>(), index.data<I>(), out.data<T>(), walk);
            });
        });
    }
    record(out, "gather", {x, index}, [shape = x.shape(), d, si = index.detach()](const Tensor& g) {
        Tensor gx = zeros(shape, g.dtype(), g.device());
        scatter_add_into(gx, d, si, g);
        return std::vector<Tensor>{gx, Tensor()};
    });
    return out;
}

Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src) {
    check_defined(x, "scatter_add");
    check_defined(index, "scatter_add");
    check_defined(src, "scatter_add");
    check_same_device(x, index, "scatter_add", "index");
    check_same_device(x, src, "scatter_add", "src");
    const int d = normalize_dim(dim, x.dim(), "scatter_add");
    require(src.dtype() == x.dtype(), "scatter_add: src is ", dtype_name(src.dtype()), " but x is ",
            dtype_name(x.dtype()));
    check_index_fits(index, x, d, "scatter_add", "x");
    check_index_fits(index, src, -1, "scatter_add", "src");  // src must cover index in every dim
    check_index_range(index, x.shape(), d, "scatter_add");

    Tensor out = x.detach().clone();
    scatter_add_into(out, d, index, src);
    record(out, "scatter_add", {x, index, src},
           [d, si = index.detach(), src_shape = src.shape(), need_src = src.requires_grad()](
               const Tensor& g) {
               if (!need_src) return std::vector<Tensor>{g, Tensor(), Tensor()};
               Tensor gsrc = gather(g, d, si);
               if (gsrc.shape() != src_shape) {  // src elements beyond the index get no gradient
                   std::vector<std::int64_t> pads;
                   for (std::size_t i = src_shape.size(); i-- > 0;)
                       pads.insert(pads.end(), {0, src_shape[i] - gsrc.shape()[i]});
                   gsrc = pad(gsrc, pads);
               }
               return std::vector<Tensor>{g, Tensor(), gsrc};
           });
    return out;
}

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, const std::string& mode,
           double value) {
    check_defined(x, "pad");
    const PadMode m = parse_pad_mode(mode);
    require(pads.size() % 2 == 0, "pad: pads must come in (left, right) pairs, got ", pads.size(),
            " values");
    require(pads.size() / 2 <= static_cast<std::size_t>(x.dim()), "pad: ", pads.size(),
            " values pad ", pads.size() / 2, " dims, but shape ", shape_str(x.shape()), " has ",
            x.dim());
    if (pads.empty()) return x.clone();
    const PadPlan plan = plan_pad(x.shape(), pads, m);
    Shape out_shape = x.shape();
    std::copy(plan.out_shape.begin(), plan.out_shape.end(),
              out_shape.end() - static_cast<std::ptrdiff_t>(plan.out_shape.size()));
    Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
    if (out.numel() > 0 && x.device().is_cuda())
        visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
            kernels::Pad<T> kernel{x.device_data<T>(), out.device_data<T>(),
                                   kernels::make_layout(out_shape), kernels::make_layout(x.shape()),
                                   {}, gpu_pad_kind(m), static_cast<T>(value)};
            const int padded = static_cast<int>(pads.size() / 2);
            for (int k = 0; k < padded; ++k) kernel.left[x.dim() - 1 - k] = pads[2 * k];
            cuda::launch(x.device(), out.numel(), kernel);
        });
    else if (out.numel() > 0)
        visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
            pad_kernel(x.data<T>(), out.data<T>(), plan, static_cast<T>(value));
        });

    record(out, "pad", {x}, [pads, m, shape = x.shape()](const Tensor& g) {
        if (m == PadMode::constant) {
            std::vector<std::int64_t> crop(pads.size());
            std::transform(pads.begin(), pads.end(), crop.begin(), [](std::int64_t p) { return -p; });
            return std::vector<Tensor>{pad(g, crop)};
        }
        if (g.device().is_cuda()) {  // a gather per input element: engine/kernels/indexing.h
            Tensor gx = Tensor::empty(shape, g.dtype(), g.device());
            visit_floating(g.dtype(), "pad backward", [&]<class T>(Type<T>) {
                kernels::PadBackward<T> kernel{g.device_data<T>(), gx.device_data<T>(),
                                               kernels::make_layout(g.shape()),
                                               kernels::make_layout(shape), {}, gpu_pad_kind(m)};
                for (std::size_t k = 0; k < pads.size() / 2; ++k)
                    kernel.left[shape.size() - 1 - k] = pads[2 * k];
                cuda::launch(g.device(), gx.numel(), kernel);
            });
            return std::vector<Tensor>{gx};
        }
        Tensor gx = zeros(shape, g.dtype());
        const PadPlan plan = plan_pad(shape, pads, m);
        if (g.numel() > 0)
            visit_floating(g.dtype(), "pad backward", [&]<class T>(Type<T>) {
                pad_backward_kernel(g.data<T>(), gx.data<T>(), plan);
            });
        return std::vector<Tensor>{gx};
    });
    return out;
}

}  // namespace retort
