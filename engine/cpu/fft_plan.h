// engine/cpu/fft_plan.h: the one-dimensional complex FFT of any length n, the kernel under every
// transform of engine/ops/fft.cpp.
//
// A plan for length n computes, in place, on n complex numbers stored as (re, im) pairs of T
// (float or double, see engine/cpu/complex.h):
//     forward:  X[k] = sum_j x[j] exp(-2 pi i j k / n)
//     inverse:  X[k] = sum_j x[j] exp(+2 pi i j k / n)
// without any 1/n: the caller scales, because where the scale goes depends on the norm.
//
// Two algorithms, both O(n log n), chosen once per n:
//  - Every prime factor of n is at most kLargestRadix (13): a Stockham mixed-radix FFT. n is
//    split into radices 4, 2, 3, 5, 7, 11, 13 (largest powers of 4 first). Each stage applies n/p
//    butterflies of radix p and twiddle factors; it reads one buffer and writes the other in an
//    order that leaves the result in natural order, so no bit-reversal pass is needed.
//  - n has a larger prime factor: Bluestein's algorithm. With jk = (j^2 + k^2 - (k - j)^2) / 2
//    the DFT becomes a convolution with the chirp exp(i pi d^2 / n), done by FFTs of a power of
//    two M >= 2n - 1: two FFTs of size M and three pointwise products per transform, several
//    times the work of a mixed-radix transform of similar length. A butterfly of radix p costs
//    about p / 2 complex multiplies per element, so radices up to 13 stay cheaper done directly,
//    and only larger primes take the detour.
// Twiddle factors and chirps are computed in double precision and stored as T, so float32
// transforms lose nothing to the tables.
//
// A plan is immutable once built: one plan serves many threads at once, each with its own work
// buffer. fft_plan() builds each (n, T) once and keeps it for the life of the program (a plan
// costs O(n) memory, and a model uses a handful of sizes).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace retort::cpu {

// Radices with their own butterflies; a prime factor above this sends n to Bluestein.
constexpr int kLargestRadix = 13;

// One Stockham stage. Before it, the data holds `stride` interleaved sub-sequences of length
// radix * length (element i of sub-sequence q at q + stride * i); the stage splits each into
// `radix` sub-sequences of length `length`, so afterwards there are stride * radix of them.
template <class T>
struct FftStage {
    int radix = 0;
    std::int64_t stride = 0;
    std::int64_t length = 0;
    std::vector<T> twiddles;   // (radix - 1) per j < length: exp(-2 pi i j r / (radix * length))
    std::vector<T> cos_table;  // cos(2 pi k / radix), k < radix (odd radices)
    std::vector<T> sin_table;  // sin(2 pi k / radix)
};

template <class T>
class FftPlan {
public:
    explicit FftPlan(std::int64_t n);
    ~FftPlan();
    FftPlan(const FftPlan&) = delete;
    FftPlan& operator=(const FftPlan&) = delete;

    std::int64_t size() const { return n_; }
    bool uses_bluestein() const { return conv_plan_ != nullptr; }
    // Elements of T that transform() needs as scratch space.
    std::int64_t work_size() const;
    // Transforms the n complex numbers at `data` (2n values of T) in place.
    void transform(T* data, T* work, bool inverse) const;

private:
    void stockham(T* data, T* work, bool inverse) const;
    void bluestein(T* data, T* work, bool inverse) const;

    std::int64_t n_;
    std::vector<FftStage<T>> stages_;
    // Bluestein only: the chirp c[j] = exp(-i pi j^2 / n), j < n; the FFT of the convolution
    // kernel conj(c[|d|]) laid out cyclically over M points, already divided by M; and the plan
    // for M.
    std::int64_t conv_size_ = 0;
    std::vector<T> chirp_;
    std::vector<T> kernel_spectrum_;
    std::unique_ptr<FftPlan<T>> conv_plan_;
};

// The shared plan for length n (n >= 1). Thread-safe; the plan lives until the program ends.
template <class T>
const FftPlan<T>& fft_plan(std::int64_t n);

}  // namespace retort::cpu
