// engine/kernels/random.h: random tensors on a GPU from the same Philox stream as the CPU
// (engine/random.cpp): element i takes lane i % 4 of block offset + i / 4, so a dropout mask drawn
// on a GPU equals the one the CPU draws from the same generator state, bit for bit.
#pragma once

#include <cstdint>

#include "engine/math/hd.h"
#include "engine/math/philox.h"

namespace retort::kernels {

// out[i] = value with probability p (a uniform float below p), else 0: dropout's scaled mask.
template <class T>
struct BernoulliScaled {
    T* out;
    std::uint64_t seed, offset;
    float p;
    T value;
    RETORT_HD void operator()(std::int64_t i) const {
        const philox::Block r = philox::block_at(seed, offset + static_cast<std::uint64_t>(i / 4));
        out[i] = philox::uniform_float(r.v[i % 4]) < p ? value : T(0);
    }
};

}  // namespace retort::kernels
