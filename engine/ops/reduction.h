// engine/ops/reduction.h: reductions along dims. Shapes: x (...) -> the reduced dims removed,
// or kept with size 1 when keepdim. `dims` may be negative; an empty list means all dims.
//
// Determinism: a reduction of length R is summed in fixed chunks whose partial results are
// combined in order (see engine/cpu/reduce.h), so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace retort {

using Dims = std::vector<std::int64_t>;

Tensor sum(const Tensor& x);  // all elements -> shape ()
Tensor sum(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Dims& dims, bool keepdim = false);

// Values and indices of the maximum / minimum along one dim (first index on ties, NaN wins as in
// PyTorch). The values are differentiable: the gradient goes to the selected element.
struct ValuesIndices {
    Tensor values, indices;
};
ValuesIndices max(const Tensor& x, std::int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, std::int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements -> shape ()
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim = false);  // int64
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim = false);

// Variance and standard deviation; correction = 1 is the unbiased estimator (torch's default).
Tensor var(const Tensor& x, const Dims& dims, std::int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims, std::int64_t correction = 1, bool keepdim = false);
// log(sum(exp(x))) along dims, computed stably (max subtracted first).
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);

}  // namespace retort
