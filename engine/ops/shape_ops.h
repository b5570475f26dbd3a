// engine/ops/shape_ops.h: ops that move elements around without arithmetic.
// (reshape, flatten, unsqueeze and squeeze are Tensor methods: they are free views.)
// Matches torch.permute, torch.cat, torch.stack, torch.split, torch.narrow, torch.index_select,
// torch.gather, torch.Tensor.scatter_add, torch.nn.functional.pad.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace retort {

// A contiguous copy with dims reordered: out.shape[i] = x.shape[order[i]].
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order);
Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1);
// Joins tensors along an existing dim (all other sizes equal).
Tensor concat(const std::vector<Tensor>& tensors, std::int64_t dim);
// Joins tensors along a new dim.
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim);
// The slice [start, start + length) along dim, copied.
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length);
// Pieces of `split_size` along dim (the last may be smaller), as torch.split.
std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim);
// Pieces with the given sizes (which must add up to x.size(dim)).
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim);
// out = x taken at `index` (int32/int64, 1-D) along dim.
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
// out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (and so on), as torch.gather.
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
// out = x with src added at index along dim: out[i][index[i][j][k]][k] += src[i][j][k] (dim = 1).
Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src);
// Pads the last dims: pads = {left, right} for the last dim, then {top, bottom} for the one before,
// as torch.nn.functional.pad. mode: "constant" (with value), "reflect", "replicate".
// Negative pads crop.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, const std::string& mode = "constant",
           double value = 0.0);

}  // namespace retort
