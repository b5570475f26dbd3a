// engine/shape.h: tensor shapes and the rules that relate them (dims, broadcasting).
//
// A shape is a list of sizes, outermost first; tensors are contiguous row-major, so the shape
// alone fixes where every element lives: element (i0, ..., in) is at sum_k ik * stride_k, where
// stride_k is the product of the sizes after dim k.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace retort {

using Shape = std::vector<std::int64_t>;

// Number of elements; throws if a size is negative or the product overflows.
std::int64_t shape_numel(const Shape& shape);

// "(2, 3, 4)": how shapes appear in every error message.
std::string shape_str(const Shape& shape);

// Row-major strides, in elements.
Shape contiguous_strides(const Shape& shape);

// Turns a possibly negative dim (-1 = last) into 0..rank-1, or throws naming the op.
int normalize_dim(std::int64_t dim, std::int64_t rank, const char* op);

// NumPy/PyTorch broadcasting: align from the right; sizes must match or be 1.
// Throws an error naming the op and both shapes when they cannot broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Splits a shape around dim into (outer, size, inner) so a kernel can treat any tensor as
// a 3-D array [outer][size][inner] when it works along one dim.
struct DimSplit {
    std::int64_t outer, size, inner;
};
DimSplit split_at_dim(const Shape& shape, int dim);

}  // namespace retort
