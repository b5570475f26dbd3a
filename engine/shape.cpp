// engine/shape.cpp: shape arithmetic shared by every op.
#include "engine/shape.h"

#include <limits>

#include "engine/error.h"

namespace retort {

std::int64_t shape_numel(const Shape& shape) {
    std::int64_t n = 1;
    for (std::int64_t s : shape) {
        require(s >= 0, "invalid shape ", shape_str(shape), ": sizes must be non-negative");
        if (s != 0 && n > std::numeric_limits<std::int64_t>::max() / s)
            fail("invalid shape ", shape_str(shape), ": the number of elements overflows");
        n *= s;
    }
    return n;
}

std::string shape_str(const Shape& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

Shape contiguous_strides(const Shape& shape) {
    Shape strides(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i)
        strides[i] = strides[i + 1] * shape[i + 1];
    return strides;
}

int normalize_dim(std::int64_t dim, std::int64_t rank, const char* op) {
    std::int64_t d = dim < 0 ? dim + rank : dim;
    require(d >= 0 && d < rank, op, ": dim ", dim, " is out of range for a tensor with ", rank,
            " dims");
    return static_cast<int>(d);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    std::size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (std::size_t i = 0; i < rank; ++i) {
        // walk from the right: missing leading dims act as 1
        std::int64_t sa = i < a.size() ? a[a.size() - 1 - i] : 1;
        std::int64_t sb = i < b.size() ? b[b.size() - 1 - i] : 1;
        require(sa == sb || sa == 1 || sb == 1, op, ": shapes ", shape_str(a), " and ",
                shape_str(b), " cannot be broadcast together");
        out[rank - 1 - i] = sa == 1 ? sb : sa;
    }
    return out;
}

DimSplit split_at_dim(const Shape& shape, int dim) {
    DimSplit s{1, shape[dim], 1};
    for (int i = 0; i < dim; ++i) s.outer *= shape[i];
    for (std::size_t i = dim + 1; i < shape.size(); ++i) s.inner *= shape[i];
    return s;
}

}  // namespace retort
