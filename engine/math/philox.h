// engine/math/philox.h: the Philox4x32-10 counter-based random number generator.
//
// Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011); the same generator
// cuRAND and PyTorch's CUDA backend use. A random value is a pure function of (key, counter): element
// i of a random tensor uses counter block (offset + i / 4), lane i % 4. No state is shared between
// threads, so any thread count (or a GPU) produces the same numbers.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"

namespace retort::philox {

struct Block {
    std::uint32_t v[4];
};

RETORT_HD inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                              std::uint32_t& lo) {
    std::uint64_t p = static_cast<std::uint64_t>(a) * b;
    hi = static_cast<std::uint32_t>(p >> 32);
    lo = static_cast<std::uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter `ctr` with key (k0, k1).
RETORT_HD inline Block philox4x32_10(Block ctr, std::uint32_t k0, std::uint32_t k1) {
    constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        std::uint32_t hi0, lo0, hi1, lo1;
        mulhilo(M0, ctr.v[0], hi0, lo0);
        mulhilo(M1, ctr.v[2], hi1, lo1);
        ctr = Block{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        k0 += W0;
        k1 += W1;
    }
    return ctr;
}

// The 32 random bits for element `index` of a draw that starts at counter block `offset`.
RETORT_HD inline std::uint32_t bits(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
    Block ctr{{static_cast<std::uint32_t>(offset + index / 4),
               static_cast<std::uint32_t>((offset + index / 4) >> 32), 0u, 0u}};
    return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32))
        .v[index % 4];
}

// Uniform in [0, 1): the top 24 bits, so every value is exactly representable as a float.
RETORT_HD inline float uniform_float(std::uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }
RETORT_HD inline double uniform_double(std::uint32_t x) { return x * (1.0 / 4294967296.0); }

// The Philox block that holds the random bits of draws [4 * block, 4 * block + 4) of a stream.
RETORT_HD inline Block block_at(std::uint64_t seed, std::uint64_t block) {
    Block ctr{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 0u, 0u}};
    return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Standard normal from lane `lane` of a block, by Box-Muller on the lane pair (0,1) or (2,3):
// the even lane takes the cosine, the odd lane the sine.
RETORT_HD inline double normal_from_block(const Block& r, int lane) {
    int first = lane - lane % 2;
    double u1 = (r.v[first] + 1.0) * (1.0 / 4294967296.0);  // (0, 1]: log(u1) is finite
    double u2 = r.v[first + 1] * (1.0 / 4294967296.0);
    double radius = std::sqrt(-2.0 * std::log(u1));
    double angle = 6.283185307179586476925 * u2;
    return lane % 2 == 0 ? radius * std::cos(angle) : radius * std::sin(angle);
}

// Standard normal for element `index` of a draw that starts at counter block `offset`.
RETORT_HD inline double normal(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
    return normal_from_block(block_at(seed, offset + index / 4), static_cast<int>(index % 4));
}

}  // namespace retort::philox
