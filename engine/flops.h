// engine/flops.h: counting the arithmetic of the heavy ops (matmul, linear, conv2d), so
// `retort summary` can report a model's forward FLOPs and benchmarks can report GFLOP/s.
// Convention: one multiply-add = 2 FLOPs; only the forward products are counted (elementwise
// ops, norms and pooling are small next to them and are left out, as most papers do).
#pragma once

#include <cstdint>

namespace retort {

// Counts while alive (on this thread); counters nest, and the innermost one counts.
class FlopCounter {
public:
    FlopCounter();
    ~FlopCounter();
    FlopCounter(const FlopCounter&) = delete;
    FlopCounter& operator=(const FlopCounter&) = delete;
    std::int64_t flops() const { return flops_; }

private:
    friend void add_flops(std::int64_t);
    std::int64_t flops_ = 0;
    FlopCounter* previous_;
};

// Called by the ops: adds to the active counter, if any (one thread-local pointer check otherwise).
void add_flops(std::int64_t flops);

}  // namespace retort
