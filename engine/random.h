// engine/random.h: seeded random tensors.
//
// A Generator is a seed plus a counter offset. Each draw of n values takes the next ceil(n/4)
// counter blocks of Philox (engine/math/philox.h) and advances the offset, so the sequence of draws
// after manual_seed(s) is fully determined by s, whatever the thread count.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace retort {

class Generator {
public:
    explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
    void manual_seed(std::uint64_t seed) { seed_ = seed; offset_ = 0; }
    std::uint64_t seed() const { return seed_; }
    std::uint64_t offset() const { return offset_; }
    void set_offset(std::uint64_t offset) { offset_ = offset; }  // restores a saved state
    // Reserves the counter blocks for n values; returns the first block.
    std::uint64_t reserve(std::uint64_t n) {
        std::uint64_t first = offset_;
        offset_ += (n + 3) / 4;
        return first;
    }

private:
    std::uint64_t seed_;
    std::uint64_t offset_ = 0;
};

// The process-wide generator that the functions below use when none is given.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

// Uniform in [low, high).
Tensor rand(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32,
               Generator* gen = nullptr);
// Normal with the given mean and standard deviation.
Tensor randn(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double stddev, DType dtype = DType::f32,
              Generator* gen = nullptr);
// 1 with probability p, else 0.
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Generator* gen = nullptr);
// Integers uniform in [low, high).
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, DType dtype = DType::i64,
               Generator* gen = nullptr);
// A random permutation of 0..n-1 (Fisher-Yates driven by Philox).
Tensor randperm(std::int64_t n, Generator* gen = nullptr);

}  // namespace retort
