// data/sample_rng.h: the random numbers of the data pipeline, one Philox stream per purpose.
//
// Every random choice of the loader comes from a stream named by (seed, purpose, epoch, index):
//   sample  the augmentations of dataset sample `index` in epoch `epoch` (crop offsets, flips)
//   batch   the batch transform of batch `index` in epoch `epoch` (mixup/cutmix lambda and box)
//   order   the shuffled sample order of epoch `epoch` (index 0)
// The Philox key is a hash of (seed, purpose); the 128-bit counter is
// (draw block, epoch, index low 32 bits, index high 32 bits). A value is therefore a pure function
// of its name and its position in the stream: which thread builds a sample, and in what order,
// cannot change it. Using the whole counter (rather than hashing epoch and index into the key)
// keeps distinct streams distinct by construction, never by luck.
#pragma once

#include <cstdint>

#include "engine/math/philox.h"

namespace retort {

class SampleRng {
public:
    enum class Purpose : std::uint32_t { sample = 1, batch = 2, order = 3 };

    SampleRng(std::uint64_t seed, Purpose purpose, std::uint64_t epoch, std::uint64_t index);
    static SampleRng for_sample(std::uint64_t seed, std::uint64_t epoch, std::uint64_t index) {
        return SampleRng(seed, Purpose::sample, epoch, index);
    }
    static SampleRng for_batch(std::uint64_t seed, std::uint64_t epoch, std::uint64_t batch) {
        return SampleRng(seed, Purpose::batch, epoch, batch);
    }

    std::uint32_t bits();                      // the next 32 random bits of the stream
    double uniform();                          // in [0, 1), steps of 2^-32
    double uniform(double low, double high);   // in [low, high)
    std::int64_t integer(std::int64_t low, std::int64_t high);  // in [low, high), high > low
    bool bernoulli(double p) { return uniform() < p; }
    double normal();                           // standard normal (Box-Muller)
    // Gamma(shape, 1) by Marsaglia and Tsang (2000), returned as its logarithm so that tiny
    // shapes (whose draws underflow a double) still give a usable Beta.
    double log_gamma(double shape);
    double beta(double a, double b);           // Beta(a, b) as X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b)

private:
    double uniform_open();  // in (0, 1]: safe to take the logarithm of
    std::uint32_t key0_, key1_;
    std::uint32_t epoch_, index_lo_, index_hi_;
    std::uint32_t next_block_ = 0;
    philox::Block block_{};
    int lane_ = 4;  // lanes of block_ already used; 4 means "draw a new block"
};

}  // namespace retort
