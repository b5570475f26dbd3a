// engine/math/lane_sum.h: a sum in double precision over n terms, in a fixed order.
//
// One running sum waits for each addition to finish before the next can start (about 4 cycles
// on current x86 cores), so a long reduction runs at a quarter of the rate the adder allows.
// Four running sums, term j going to sum j mod 4, keep four additions in flight. The order is
// still fixed by n alone (the four sums are added as (s0 + s1) + (s2 + s3)), so a result never
// depends on the thread count, and the CPU loops and the GPU kernels, which call these same
// functions, add in the same order (nvcc may still fuse a term's multiply with its addition,
// which rounds once instead of twice: the devices agree to rounding, not always to the bit).
#pragma once

#include <cstdint>

#include "engine/math/hd.h"

namespace retort {

// The sum of term(j) for j = 0 .. n-1, accumulated in Sum (double, or SumPair below): Sum needs
// a zero value, += and +.
template <class Sum, class Term>
RETORT_HD Sum lane_sum_as(std::int64_t n, Term term) {
    Sum s0{}, s1{}, s2{}, s3{};
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += term(j);
        s1 += term(j + 1);
        s2 += term(j + 2);
        s3 += term(j + 3);
    }
    if (j < n) s0 += term(j);
    if (j + 1 < n) s1 += term(j + 1);
    if (j + 2 < n) s2 += term(j + 2);
    return (s0 + s1) + (s2 + s3);
}

template <class Term>
RETORT_HD double lane_sum(std::int64_t n, Term term) {
    return lane_sum_as<double>(n, term);
}

// Two sums in one pass over the terms, for reductions that read the same inputs twice (a
// gradient's sum and its sum against xhat): term(j) returns {a_j, b_j}; each of the two sums
// has lane_sum's order.
struct SumPair {
    double a = 0, b = 0;
    RETORT_HD void operator+=(SumPair t) {
        a += t.a;
        b += t.b;
    }
    RETORT_HD SumPair operator+(SumPair t) const { return {a + t.a, b + t.b}; }
};

template <class Term>
RETORT_HD SumPair lane_sum_pair(std::int64_t n, Term term) {
    return lane_sum_as<SumPair>(n, term);
}

}  // namespace retort
