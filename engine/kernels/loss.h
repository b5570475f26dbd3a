// engine/kernels/loss.h: the target matrix of the class-index losses (cross_entropy, nll_loss).
//
// loss = -sum_k(logp * Q) per item, with Q `on` at the item's target class, `off` at the others
// (label smoothing), and all zeros for an item whose target is ignore_index. Q has the scores'
// shape viewed as [B][K][d1 * ...]; the targets are [B][d1 * ...]. One call per element of Q.
// Both backends run this struct; the targets are range-checked before, on the CPU.
#pragma once

#include <cstdint>

#include "engine/math/hd.h"
#include "engine/shape.h"

namespace retort::kernels {

template <class T, class I>
struct ClassWeights {
    const I* target;
    T* q;
    DimSplit split;  // of the scores around the class dim
    T on, off;
    std::int64_t ignore_index;
    RETORT_HD void operator()(std::int64_t j) const {
        const std::int64_t i = j % split.inner;
        const std::int64_t k = j / split.inner % split.size;
        const std::int64_t o = j / (split.inner * split.size);
        const std::int64_t c = static_cast<std::int64_t>(target[o * split.inner + i]);
        q[j] = c == ignore_index ? T(0) : (k == c ? on : off);
    }
};

}  // namespace retort::kernels
