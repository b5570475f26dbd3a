// data/sample_rng.cpp: the data pipeline's Philox streams and the distributions drawn from them.
//
// Uniforms use 32 bits each; integers use 64 (two lanes), so the modulo bias is below 2^-32 for any
// range a dataset can have. The normal is Box-Muller on two lanes (the sine half is dropped: the
// streams are cheap and dropping it keeps the draw count per value fixed). The Gamma sampler is
// Marsaglia and Tsang, "A simple method for generating gamma variables" (ACM TOMS 2000), with the
// boost for shape < 1: Gamma(a) = Gamma(a + 1) * U^(1/a).
#include "data/sample_rng.h"

#include <cmath>

#include "engine/error.h"

namespace retort {

namespace {
// splitmix64's finalizer: spreads (seed, purpose) over all 64 key bits.
std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
}  // namespace

SampleRng::SampleRng(std::uint64_t seed, Purpose purpose, std::uint64_t epoch, std::uint64_t index) {
    require(epoch <= 0xFFFFFFFFull, "data loader: epoch ", epoch, " is too large (at most 2^32 - 1)");
    const std::uint64_t key = mix64(seed ^ mix64(static_cast<std::uint64_t>(purpose)));
    key0_ = static_cast<std::uint32_t>(key);
    key1_ = static_cast<std::uint32_t>(key >> 32);
    epoch_ = static_cast<std::uint32_t>(epoch);
    index_lo_ = static_cast<std::uint32_t>(index);
    index_hi_ = static_cast<std::uint32_t>(index >> 32);
}

std::uint32_t SampleRng::bits() {
    if (lane_ == 4) {
        internal_check(next_block_ != 0xFFFFFFFFu, "a sample's random stream ran out of blocks");
        block_ = philox::philox4x32_10(philox::Block{{next_block_++, epoch_, index_lo_, index_hi_}},
                                       key0_, key1_);
        lane_ = 0;
    }
    return block_.v[lane_++];
}

double SampleRng::uniform() { return philox::uniform_double(bits()); }

double SampleRng::uniform_open() { return (bits() + 1.0) * (1.0 / 4294967296.0); }

double SampleRng::uniform(double low, double high) { return low + (high - low) * uniform(); }

std::int64_t SampleRng::integer(std::int64_t low, std::int64_t high) {
    internal_check(high > low, "SampleRng::integer needs a non-empty range");
    const std::uint64_t hi = bits(), lo = bits();
    const std::uint64_t range = static_cast<std::uint64_t>(high - low);
    return low + static_cast<std::int64_t>(((hi << 32) | lo) % range);
}

double SampleRng::normal() {
    const double u1 = uniform_open(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

double SampleRng::log_gamma(double shape) {
    internal_check(shape > 0, "Gamma shape must be positive");
    if (shape < 1) {
        // log(Gamma(a + 1) * U^(1/a)), kept in logs: U^(1/a) underflows for small a
        const double boost = std::log(uniform_open()) / shape;
        return log_gamma(shape + 1) + boost;
    }
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
        const double x = normal();
        double v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        const double u = uniform_open();
        if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return std::log(d * v);
    }
}

double SampleRng::beta(double a, double b) {
    const double log_x = log_gamma(a), log_y = log_gamma(b);
    // X / (X + Y) = 1 / (1 + exp(log Y - log X)), finite even when X and Y underflow
    return 1.0 / (1.0 + std::exp(log_y - log_x));
}

}  // namespace retort
