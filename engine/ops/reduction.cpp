// engine/ops/reduction.cpp: sum, mean, max/min, argmax/argmin, var/std, logsumexp.
// Shapes: x (...) -> x with the reduced dims removed (or kept as 1 with keepdim).
// Matches torch.sum, torch.mean, torch.max(dim), torch.var, torch.logsumexp.
// Backward: sum spreads the gradient back over the reduced dims (broadcast_to); the others are
// composed from differentiable ops or route the gradient to the selected elements.
#include "engine/ops/reduction.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/cpu/reduce.h"
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
Tensor sum_one_dim(const Tensor& x, int dim) {
    Shape out_shape = x.shape();
    out_shape[dim] = 1;
    Tensor out = Tensor::empty(out_shape, x.dtype());
    visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
        cpu::sum_along(x.data<T>(), out.data<T>(), split_at_dim(x.shape(), dim));
    });
    return out;
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
    require(x.device().is_cpu(), "sum: no kernel for ", x.device().str(), " tensors yet");
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

}  // namespace retort
