// engine/random.cpp: random tensors from the Philox stream. Each element is computed from its own
// index, so the loops are freely parallel and the result never depends on the thread count.
#include "engine/random.h"

#include "engine/math/philox.h"
#include "engine/parallel.h"

namespace retort {

Generator& default_generator() {
    static Generator gen(0);
    return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

// Fills t with values made from Philox blocks: each block (4 x 32 random bits) yields
// `per_block` values, value k of block b being value_of(block, k) for element b * per_block + k.
// Every element is a function of (seed, offset, its index) alone, whatever the thread count.
template <class F>
Tensor fill_random(const Shape& shape, DType dtype, Generator* gen, int per_block, F value_of) {
    Tensor t = Tensor::empty(shape, dtype);
    Generator& g = pick(gen);
    const std::int64_t n = t.numel();
    const std::int64_t blocks = (n + per_block - 1) / per_block;
    const std::uint64_t seed = g.seed();
    const std::uint64_t offset = g.reserve(static_cast<std::uint64_t>(blocks) * 4);
    visit_dtype(dtype, [&]<class T>(Type<T>) {
        T* out = t.data<T>();
        parallel_for(0, blocks, 4096, [&](std::int64_t b0, std::int64_t b1) {
            for (std::int64_t b = b0; b < b1; ++b) {
                const philox::Block r = philox::block_at(seed, offset + static_cast<std::uint64_t>(b));
                for (int k = 0; k < per_block; ++k) {
                    const std::int64_t i = b * per_block + k;
                    if (i < n) out[i] = static_cast<T>(value_of(r, k));
                }
            }
        });
    });
    return t;
}
}  // namespace

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
    require(is_floating(dtype), "uniform: dtype must be floating-point");
    require(low <= high, "uniform: low (", low, ") must not exceed high (", high, ")");
    const double width = high - low;
    if (dtype == DType::f32) {
        return fill_random(shape, dtype, gen, 4, [=](const philox::Block& r, int k) {
            return static_cast<float>(low) + static_cast<float>(width) * philox::uniform_float(r.v[k]);
        });
    }
    return fill_random(shape, dtype, gen, 4, [=](const philox::Block& r, int k) {
        return low + width * philox::uniform_double(r.v[k]);
    });
}

Tensor rand(const Shape& shape, DType dtype, Generator* gen) {
    return uniform(shape, 0.0, 1.0, dtype, gen);
}

Tensor normal(const Shape& shape, double mean, double stddev, DType dtype, Generator* gen) {
    require(is_floating(dtype), "normal: dtype must be floating-point");
    require(stddev >= 0, "normal: stddev must be non-negative, got ", stddev);
    return fill_random(shape, dtype, gen, 4, [=](const philox::Block& r, int k) {
        return mean + stddev * philox::normal_from_block(r, k);
    });
}

Tensor randn(const Shape& shape, DType dtype, Generator* gen) {
    return normal(shape, 0.0, 1.0, dtype, gen);
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* gen) {
    require(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got ", p);
    const float pf = static_cast<float>(p);
    return fill_random(shape, dtype, gen, 4, [=](const philox::Block& r, int k) {
        return philox::uniform_float(r.v[k]) < pf ? 1.0 : 0.0;
    });
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, DType dtype,
               Generator* gen) {
    require(low < high, "randint: low (", low, ") must be below high (", high, ")");
    const std::uint64_t range = static_cast<std::uint64_t>(high - low);
    // Two 32-bit draws make a 64-bit value; the modulo bias is below 2^-32 for any range
    // that fits a tensor.
    return fill_random(shape, dtype, gen, 2, [=](const philox::Block& r, int k) {
        std::uint64_t wide = (static_cast<std::uint64_t>(r.v[2 * k]) << 32) | r.v[2 * k + 1];
        return static_cast<double>(low + static_cast<std::int64_t>(wide % range));
    });
}

Tensor randperm(std::int64_t n, Generator* gen) {
    require(n >= 0, "randperm: n must be non-negative, got ", n);
    Tensor t = arange(n);
    std::int64_t* p = t.data<std::int64_t>();
    Generator& g = pick(gen);
    const std::uint64_t seed = g.seed();
    const std::uint64_t offset = g.reserve(static_cast<std::uint64_t>(n) * 2);
    for (std::int64_t i = n - 1; i > 0; --i) {
        std::uint64_t hi = philox::bits(seed, offset, 2 * i), lo = philox::bits(seed, offset, 2 * i + 1);
        std::int64_t j = static_cast<std::int64_t>(((hi << 32) | lo) % static_cast<std::uint64_t>(i + 1));
        std::swap(p[i], p[j]);
    }
    return t;
}

}  // namespace retort
