// engine/ops/elementwise.h: arithmetic, comparisons and math functions, elementwise.
// Binary ops broadcast as PyTorch does; both tensors must have the same dtype (a double scalar
// is converted to the tensor's dtype). Shapes: any.
#pragma once

#include <optional>

#include "engine/tensor.h"

namespace retort {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);   // a^b elementwise (a > 0 where b is not integer)
Tensor pow(const Tensor& a, double exponent);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
// where(cond, a, b): a where cond != 0, else b. cond may have any dtype; it gets no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
// clamp(x, lo, hi); either side may be open (std::nullopt).
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi);

// Comparisons: 1 where true, 0 where false, in the inputs' dtype. Not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// Repeats size-1 dims (and adds leading dims) to reach `shape`, as torch.Tensor.expand but copied.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// Operators, for readable formulas: (a - b) * 0.5
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

}  // namespace retort
