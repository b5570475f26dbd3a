// engine/ops/reduction.cpp: sum, mean, max/min, argmax/argmin, var/std, logsumexp.
// Shapes: x (...) -> x with the reduced dims removed (or kept as 1 with keepdim).
// Matches torch.sum, torch.mean, torch.max(dim), torch.var, torch.logsumexp.
// Backward: sum spreads the gradient back over the reduced dims (broadcast_to); the others are
// composed from differentiable ops or route the gradient to the selected elements.
//   max/min along a dim: saves the int64 indices; the gradient goes to the selected element only.
//   max/min of all elements: saves x and the result; the gradient is split evenly among the
//     elements equal to the result (PyTorch's rule for torch.max(x) and torch.amax).
//   var/std: composed from mean, sub, mul, sum and sqrt, so autograd derives the backward.
//   logsumexp: log(sum(exp(x - m))) + m with m the (detached) max; the backward is softmax(x) * g,
//     which the composition gives because the result does not depend on m.
#include "engine/ops/reduction.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/cpu/broadcast.h"
#include "engine/cpu/reduce.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/reduce.h"
#include "engine/ops.h"

namespace retort {

namespace {

// Normalizes, sorts and de-duplicates dims; an empty list means every dim.
std::vector<int> reduction_dims(const Tensor& x, const Dims& dims, const char* op) {
    std::vector<int> out;
    if (dims.empty()) {
        for (int d = 0; d < x.dim(); ++d) out.push_back(d);
        return out;
    }
    for (std::int64_t d : dims) out.push_back(normalize_dim(d, x.dim(), op));
    std::sort(out.begin(), out.end());
    require(std::adjacent_find(out.begin(), out.end()) == out.end(), op,
            ": a dim appears twice in the list");
    return out;
}

Shape keepdim_shape(const Shape& shape, const std::vector<int>& dims) {
    Shape s = shape;
    for (int d : dims) s[d] = 1;
    return s;
}

Shape dropped_shape(const Shape& shape, const std::vector<int>& dims) {
    Shape s;
    for (int d = 0; d < static_cast<int>(shape.size()); ++d)
        if (std::find(dims.begin(), dims.end(), d) == dims.end()) s.push_back(shape[d]);
    return s;
}

// Sums one dim away, keeping it with size 1. No graph: the caller records one node.
// On a GPU: chunk sums, then their ordered totals (engine/kernels/reduce.h), which gives the
// CPU's bits.
Tensor sum_one_dim(const Tensor& x, int dim) {
    Shape out_shape = x.shape();
    out_shape[dim] = 1;
    Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
    const DimSplit split = split_at_dim(x.shape(), dim);
    visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
        if (!x.device().is_cuda()) {
            cpu::sum_along(x.data<T>(), out.data<T>(), split);
            return;
        }
        const std::int64_t outputs = split.outer * split.inner;
        const std::int64_t chunks = std::max<std::int64_t>(1, kernels::reduce_chunks(split.size));
        Tensor partials = zeros({outputs * chunks}, x.dtype(), x.device());
        if (split.size > 0)
            cuda::launch(x.device(), outputs * chunks,
                         kernels::SumChunks<T>{x.device_data<T>(), partials.device_data<T>(),
                                               split, chunks});
        cuda::launch(x.device(), outputs,
                     kernels::SumPartials<T>{partials.device_data<T>(), out.device_data<T>(),
                                             chunks});
    });
    return out;
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
    std::vector<int> ds = reduction_dims(x, dims, "sum");
    Tensor out;
    {
        NoGradGuard plain;  // the intermediate steps are not part of the graph
        out = x.detach();
        for (auto it = ds.rbegin(); it != ds.rend(); ++it) out = sum_one_dim(out, *it);
        if (ds.empty()) out = x.clone().detach();  // a 0-dim tensor: the sum is the value itself
        out = out.reshape(keepdim ? keepdim_shape(x.shape(), ds) : dropped_shape(x.shape(), ds));
    }
    record(out, "sum", {x}, [sx = x.shape(), kept = keepdim_shape(x.shape(), ds)](const Tensor& g) {
        return std::vector<Tensor>{broadcast_to(g.reshape(kept), sx)};
    });
    return out;
}

Tensor sum(const Tensor& x) { return sum(x, Dims{}, false); }

Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
    require(is_floating(x.dtype()), "mean: expected a floating-point tensor, got ",
            dtype_name(x.dtype()));
    std::int64_t count = 1;
    for (int d : reduction_dims(x, dims, "mean")) count *= x.shape()[d];
    require(count > 0, "mean: reducing over zero elements");
    return sum(x, dims, keepdim) * (1.0 / static_cast<double>(count));
}

Tensor mean(const Tensor& x) { return mean(x, Dims{}, false); }

// ---- max / min ----

namespace {

// values[o][i], indices[o][i] = the extreme of x[o][:][i] and where it is. Each output belongs to
// one outer slab, so the threads never share an output.
template <class T>
void extreme_along(const T* x, T* values, std::int64_t* indices, DimSplit s, bool want_max) {
    parallel_for(0, s.outer, grain_for(s.size * s.inner), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t o = b; o < e; ++o) {
            const T* slab = x + o * s.size * s.inner;
            T* best = values + o * s.inner;
            std::int64_t* at = indices + o * s.inner;
            for (std::int64_t i = 0; i < s.inner; ++i) {
                best[i] = slab[i];
                at[i] = 0;
            }
            // r outside, i inside: the inner loop reads contiguous memory
            for (std::int64_t r = 1; r < s.size; ++r) {
                const T* row = slab + r * s.inner;
                for (std::int64_t i = 0; i < s.inner; ++i) {
                    if (kernels::replaces(row[i], best[i], want_max)) {
                        best[i] = row[i];
                        at[i] = r;
                    }
                }
            }
        }
    });
}

// dx[o][indices[o][i]][i] = g[o][i], zero elsewhere: the backward of max/min along a dim.
template <class T>
void route_to_indices(const T* g, const std::int64_t* indices, T* dx, DimSplit s) {
    parallel_for(0, s.outer, grain_for(s.size * s.inner), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t o = b; o < e; ++o) {
            T* slab = dx + o * s.size * s.inner;
            std::fill(slab, slab + s.size * s.inner, T(0));
            for (std::int64_t i = 0; i < s.inner; ++i)
                slab[indices[o * s.inner + i] * s.inner + i] = g[o * s.inner + i];
        }
    });
}

// A 0-dim tensor reduces like a tensor of shape (1,), as in PyTorch (dim 0 and -1 are valid).
Shape at_least_1d(const Shape& shape) { return shape.empty() ? Shape{1} : shape; }

// The extreme along one dim, kept with size 1, without a graph node (argmax, logsumexp and the
// public max/min share it).
ValuesIndices extreme_kept(const Tensor& x, int dim, bool want_max, const char* op) {
    const Shape shape = at_least_1d(x.shape());
    require(shape[dim] > 0, op, ": cannot reduce over dim ", dim, " of size 0 in shape ",
            shape_str(x.shape()));
    Shape kept = shape;
    kept[dim] = 1;
    ValuesIndices out{Tensor::empty(kept, x.dtype(), x.device()),
                      Tensor::empty(kept, DType::i64, x.device())};
    const DimSplit split = split_at_dim(shape, dim);
    visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
        if (x.device().is_cuda())
            cuda::launch(x.device(), split.outer * split.inner,
                         kernels::ExtremeAlong<T>{x.device_data<T>(), out.values.device_data<T>(),
                                                  out.indices.device_data<std::int64_t>(), split,
                                                  want_max});
        else
            extreme_along(x.data<T>(), out.values.data<T>(), out.indices.data<std::int64_t>(),
                          split, want_max);
    });
    return out;
}

int extreme_dim(const Tensor& x, std::int64_t dim, const char* op) {
    require(x.defined(), op, ": undefined tensor argument");
    return normalize_dim(dim, std::max(x.dim(), 1), op);
}

Shape reduced_shape(const Tensor& x, int dim, bool keepdim) {
    if (x.dim() == 0) return {};
    return keepdim ? keepdim_shape(x.shape(), {dim}) : dropped_shape(x.shape(), {dim});
}

ValuesIndices extreme_along_dim(const Tensor& x, std::int64_t dim, bool keepdim, bool want_max) {
    const char* op = want_max ? "max" : "min";
    const int d = extreme_dim(x, dim, op);
    ValuesIndices vi = extreme_kept(x, d, want_max, op);
    const Tensor kept_indices = vi.indices;
    const Shape out_shape = reduced_shape(x, d, keepdim);
    vi.values = vi.values.reshape(out_shape);
    vi.indices = vi.indices.reshape(out_shape);
    record(vi.values, op, {x}, [kept_indices, sx = x.shape(), d](const Tensor& g) {
        Tensor dx = Tensor::empty(sx, g.dtype(), g.device());
        const DimSplit split = split_at_dim(at_least_1d(sx), d);
        visit_floating(g.dtype(), "max/min backward", [&]<class T>(Type<T>) {
            if (g.device().is_cuda())
                cuda::launch(g.device(), dx.numel(),
                             kernels::RouteToIndices<T>{g.device_data<T>(),
                                                        kept_indices.device_data<std::int64_t>(),
                                                        dx.device_data<T>(), split});
            else
                route_to_indices(g.data<T>(), kept_indices.data<std::int64_t>(), dx.data<T>(),
                                 split);
        });
        return std::vector<Tensor>{dx};
    });
    return vi;
}

// 1 where x equals its extreme m (NaN counts as equal to a NaN result), else 0. Built from ops,
// so it runs wherever x is; only max(x)'s backward needs it.
Tensor ties_mask(const Tensor& x, const Tensor& m) {
    const Tensor both_nan = mul(ne(x, x), ne(m, m));  // only NaN differs from itself
    return add(eq(x, m), both_nan);                   // never both 1: NaN equals nothing
}

Tensor extreme_all(const Tensor& x, bool want_max) {
    const char* op = want_max ? "max" : "min";
    require(x.numel() > 0, op, ": cannot reduce an empty tensor of shape ", shape_str(x.shape()));
    Tensor out = extreme_kept(x.detach().reshape({x.numel()}), 0, want_max, op).values.reshape({});
    record(out, op, {x}, [sx = x.detach(), so = out.detach()](const Tensor& g) {
        Tensor mask = ties_mask(sx, so);
        return std::vector<Tensor>{mask * (g / sum(mask))};
    });
    return out;
}

}  // namespace

ValuesIndices max(const Tensor& x, std::int64_t dim, bool keepdim) {
    return extreme_along_dim(x, dim, keepdim, true);
}
ValuesIndices min(const Tensor& x, std::int64_t dim, bool keepdim) {
    return extreme_along_dim(x, dim, keepdim, false);
}
Tensor max(const Tensor& x) { return extreme_all(x, true); }
Tensor min(const Tensor& x) { return extreme_all(x, false); }

Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim) {
    const int d = extreme_dim(x, dim, "argmax");
    return extreme_kept(x, d, true, "argmax").indices.reshape(reduced_shape(x, d, keepdim));
}
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim) {
    const int d = extreme_dim(x, dim, "argmin");
    return extreme_kept(x, d, false, "argmin").indices.reshape(reduced_shape(x, d, keepdim));
}

// ---- var / std ----

Tensor var(const Tensor& x, const Dims& dims, std::int64_t correction, bool keepdim) {
    require(is_floating(x.dtype()), "var: expected a floating-point tensor, got ",
            dtype_name(x.dtype()));
    std::int64_t count = 1;
    for (int d : reduction_dims(x, dims, "var")) count *= x.shape()[d];
    Tensor centered = x - mean(x, dims, /*keepdim=*/true);
    // PyTorch divides by max(0, N - correction): N <= correction gives inf or nan, not an error
    const double divisor = static_cast<double>(std::max<std::int64_t>(0, count - correction));
    return sum(centered * centered, dims, keepdim) / divisor;
}

Tensor std(const Tensor& x, const Dims& dims, std::int64_t correction, bool keepdim) {
    return sqrt(var(x, dims, correction, keepdim));
}

// ---- logsumexp ----

namespace {

// The max over `dims`, kept with size 1; infinities become 0 so that x - m stays finite-or-nan the
// way PyTorch's does (an all -inf slice gives log(0) = -inf, not nan). Reducing over an empty dim
// gives 0 for the same reason.
Tensor logsumexp_shift(const Tensor& x, const std::vector<int>& dims) {
    NoGradGuard plain;
    Tensor m = x.detach();
    bool empty = false;
    for (int d : dims) {
        if (x.shape()[d] == 0) empty = true;
        else m = extreme_kept(m, d, true, "logsumexp").values;
    }
    if (empty) return zeros(keepdim_shape(x.shape(), dims), x.dtype(), x.device());
    const Tensor infinite = eq(abs(m), scalar_tensor(INFINITY, m.dtype(), m.device()));
    return where(infinite, zeros_like(m), m);
}

}  // namespace

Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim) {
    require(is_floating(x.dtype()), "logsumexp: expected a floating-point tensor, got ",
            dtype_name(x.dtype()));
    const std::vector<int> ds = reduction_dims(x, dims, "logsumexp");
    Tensor shift = logsumexp_shift(x, ds);
    Tensor out = log(sum(exp(x - shift), dims, /*keepdim=*/true)) + shift;
    return keepdim ? out : out.reshape(dropped_shape(x.shape(), ds));
}

}  // namespace retort
