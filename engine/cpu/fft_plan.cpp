// engine/cpu/fft_plan.cpp: building and running the 1-D FFT plans of fft_plan.h.
//
// Notation: n the transform length; w_L = exp(-2 pi i / L); dir = 1 for the forward transform
// and -1 for the inverse one (the inverse uses conjugate roots: every sine changes sign).
// At a Stockham stage: p the radix, s the stride (sub-sequences so far), m = n / (s p).
//
// Why one Stockham stage is correct. Take one sub-sequence a of length p m and write the input
// index as j + t m (j < m, t < p) and the output index as r + p k' (r < p, k' < m). Then
//     A[r + p k'] = sum_{j<m} w_m^(j k') * b_r[j],
//     b_r[j] = w_{pm}^(j r) * sum_{t<p} a[j + t m] w_p^(t r)
// so A splits into p DFTs of length m, of the sequences b_r. The inner sum is a radix-p DFT of
// the p values a[j + t m] (the butterfly), and w_{pm}^(j r) is the twiddle factor. The stage
// stores b_r[j] as element j of the new sub-sequence q + s r, at position q + s (p j + r).
// Natural order follows by induction: with stride s, element k of the DFT of sub-sequence q ends
// at position q + s k. That holds after the last stage (length-1 sub-sequences are their own
// DFTs), and passes back through each stage, since q + s r + (s p) k' = q + s (r + p k'). At the
// first stage (s = 1, q = 0) it puts X[k] at position k: no bit-reversal pass is needed.
#include "engine/cpu/fft_plan.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>

#include "engine/cpu/complex.h"
#include "engine/error.h"

namespace retort::cpu {

namespace {

constexpr double kTwoPi = 2 * std::numbers::pi;

// ---- butterflies: y[r] = sum_t a[t] w_p^(dir t r) for r < p ----

struct Radix2 {
    template <class T>
    void operator()(const Complex<T>* a, Complex<T>* y, T) const {
        y[0] = a[0] + a[1];
        y[1] = a[0] - a[1];
    }
};

// w_4^dir = -i dir, so the odd outputs differ from the even ones by a quarter turn.
struct Radix4 {
    template <class T>
    void operator()(const Complex<T>* a, Complex<T>* y, T dir) const {
        const Complex<T> sum02 = a[0] + a[2], diff02 = a[0] - a[2], sum13 = a[1] + a[3];
        const Complex<T> turned13 = rotate_quarter(a[1] - a[3], dir);
        y[0] = sum02 + sum13;
        y[1] = diff02 + turned13;
        y[2] = sum02 - sum13;
        y[3] = diff02 - turned13;
    }
};

// Any odd radix p, using the pairs (a[t], a[p - t]): with theta = 2 pi t r / p,
//     a[t] w^(t r) + a[p-t] w^(-t r) = (a[t] + a[p-t]) cos(theta)
//                                      - i dir (a[t] - a[p-t]) sin(theta)
// so y[r] = R - i dir I and y[p - r] = R + i dir I share the two sums
//     R = a[0] + sum_t (a[t] + a[p-t]) cos(theta),   I = sum_t (a[t] - a[p-t]) sin(theta),
// about half the multiplies of the plain sum. P > 0 fixes the radix at compile time (3, 5, 7,
// whose loops the compiler unrolls); P = 0 reads it at run time (11, 13).
template <class T, int P>
struct OddRadix {
    int radix;
    const T* cos_table;  // cos(2 pi k / p), k < p
    const T* sin_table;  // sin(2 pi k / p)

    void operator()(const Complex<T>* a, Complex<T>* y, T dir) const {
        const int p = P > 0 ? P : radix;
        const int half = (p - 1) / 2;
        Complex<T> sums[kLargestRadix / 2 + 1], diffs[kLargestRadix / 2 + 1];
        Complex<T> total = a[0];
        for (int t = 1; t <= half; ++t) {
            sums[t] = a[t] + a[p - t];
            diffs[t] = a[t] - a[p - t];
            total = total + sums[t];
        }
        y[0] = total;
        for (int r = 1; r <= half; ++r) {
            Complex<T> even = a[0], odd = {T(0), T(0)};
            for (int t = 1; t <= half; ++t) {
                const int k = (t * r) % p;  // theta = 2 pi k / p, reduced to a table index
                even = even + sums[t] * cos_table[k];
                odd = odd + diffs[t] * sin_table[k];
            }
            const Complex<T> turned = rotate_quarter(odd, dir);
            y[r] = even + turned;
            y[p - r] = even - turned;
        }
    }
};

// ---- one Stockham stage ----

template <int P, class T, class Butterfly>
void stage_pass(const FftStage<T>& stage, const T* in, T* out, T dir, const Butterfly& butterfly) {
    const int p = P > 0 ? P : stage.radix;
    const std::int64_t s = stage.stride, m = stage.length;
    Complex<T> a[kLargestRadix], y[kLargestRadix];
    for (std::int64_t j = 0; j < m; ++j) {
        const T* twiddles = stage.twiddles.data() + 2 * (p - 1) * j;
        // the inner loop walks the s sub-sequences, which sit next to each other in memory
        for (std::int64_t q = 0; q < s; ++q) {
            for (int t = 0; t < p; ++t) a[t] = load(in, q + s * (j + t * m));
            butterfly(a, y, dir);
            store(out, q + s * p * j, y[0]);
            for (int r = 1; r < p; ++r) {
                Complex<T> w = load(twiddles, r - 1);
                w.im *= dir;  // the inverse transform's twiddles are the conjugates
                store(out, q + s * (p * j + r), y[r] * w);
            }
        }
    }
}

template <class T>
void run_stage(const FftStage<T>& stage, const T* in, T* out, T dir) {
    const T* cosines = stage.cos_table.data();
    const T* sines = stage.sin_table.data();
    switch (stage.radix) {
        case 2: return stage_pass<2>(stage, in, out, dir, Radix2{});
        case 4: return stage_pass<4>(stage, in, out, dir, Radix4{});
        case 3: return stage_pass<3>(stage, in, out, dir, OddRadix<T, 3>{3, cosines, sines});
        case 5: return stage_pass<5>(stage, in, out, dir, OddRadix<T, 5>{5, cosines, sines});
        case 7: return stage_pass<7>(stage, in, out, dir, OddRadix<T, 7>{7, cosines, sines});
        default:
            return stage_pass<0>(stage, in, out, dir, OddRadix<T, 0>{stage.radix, cosines, sines});
    }
}

// ---- building a plan ----

// The radices of n, powers of 4 first; false if n has a prime factor above kLargestRadix.
bool small_radices(std::int64_t n, std::vector<int>& radices) {
    for (int p : {4, 2, 3, 5, 7, 11, 13}) {
        while (n % p == 0) {
            radices.push_back(p);
            n /= p;
        }
    }
    return n == 1;
}

template <class T>
void store_root(std::vector<T>& table, std::int64_t k, double angle) {
    table[2 * k] = static_cast<T>(std::cos(angle));
    table[2 * k + 1] = static_cast<T>(-std::sin(angle));
}

template <class T>
FftStage<T> make_stage(int p, std::int64_t stride, std::int64_t length) {
    FftStage<T> stage;
    stage.radix = p;
    stage.stride = stride;
    stage.length = length;
    const std::int64_t span = p * length;
    stage.twiddles.resize(2 * (p - 1) * length);
    for (std::int64_t j = 0; j < length; ++j)
        for (int r = 1; r < p; ++r)  // reducing j r mod span keeps the angle, and its error, small
            store_root(stage.twiddles, (p - 1) * j + r - 1,
                       kTwoPi * static_cast<double>((j * r) % span) / static_cast<double>(span));
    if (p % 2 == 1) {
        stage.cos_table.resize(p);
        stage.sin_table.resize(p);
        for (int k = 0; k < p; ++k) {
            stage.cos_table[k] = static_cast<T>(std::cos(kTwoPi * k / p));
            stage.sin_table[k] = static_cast<T>(std::sin(kTwoPi * k / p));
        }
    }
    return stage;
}

}  // namespace

template <class T>
FftPlan<T>::FftPlan(std::int64_t n) : n_(n) {
    internal_check(n >= 1, "an FFT plan needs a length of at least 1");
    std::vector<int> radices;
    if (small_radices(n, radices)) {
        std::int64_t stride = 1;
        for (int p : radices) {
            stages_.push_back(make_stage<T>(p, stride, n / (stride * p)));
            stride *= p;
        }
        return;
    }
    // Bluestein: the convolution must not wrap around, so M >= 2n - 1.
    conv_size_ = 1;
    while (conv_size_ < 2 * n - 1) conv_size_ *= 2;
    const std::int64_t m = conv_size_;
    chirp_.resize(2 * n);
    std::vector<double> kernel(2 * m, 0.0);  // conj(chirp) at offsets d and -d (mod M)
    for (std::int64_t j = 0; j < n; ++j) {
        // pi j^2 / n, with j^2 reduced mod 2n first so the angle stays below 2 pi
        const double angle =
            std::numbers::pi * static_cast<double>((j * j) % (2 * n)) / static_cast<double>(n);
        store_root(chirp_, j, angle);
        kernel[2 * j] = std::cos(angle);
        kernel[2 * j + 1] = std::sin(angle);
        if (j > 0) {
            kernel[2 * (m - j)] = kernel[2 * j];
            kernel[2 * (m - j) + 1] = kernel[2 * j + 1];
        }
    }
    // The kernel's spectrum is computed once, in double precision, and stored with the 1/M of
    // the inverse transform folded in.
    FftPlan<double> exact(m);
    std::vector<double> work(exact.work_size());
    exact.transform(kernel.data(), work.data(), /*inverse=*/false);
    kernel_spectrum_.resize(2 * m);
    for (std::int64_t i = 0; i < 2 * m; ++i)
        kernel_spectrum_[i] = static_cast<T>(kernel[i] / static_cast<double>(m));
    conv_plan_ = std::make_unique<FftPlan<T>>(m);
}

template <class T>
FftPlan<T>::~FftPlan() = default;

template <class T>
std::int64_t FftPlan<T>::work_size() const {
    return conv_plan_ ? 2 * conv_size_ + conv_plan_->work_size() : 2 * n_;
}

template <class T>
void FftPlan<T>::transform(T* data, T* work, bool inverse) const {
    if (conv_plan_) bluestein(data, work, inverse);
    else stockham(data, work, inverse);
}

template <class T>
void FftPlan<T>::stockham(T* data, T* work, bool inverse) const {
    const T dir = inverse ? T(-1) : T(1);
    T* in = data;
    T* out = work;
    for (const FftStage<T>& stage : stages_) {
        run_stage(stage, in, out, dir);
        std::swap(in, out);
    }
    if (in != data) std::copy(in, in + 2 * n_, data);
}

// X[k] = c[k] * sum_j (x[j] c[j]) conj(c[k - j]) with c[j] = exp(-i pi j^2 / n): a product by
// the chirp, a cyclic convolution of length M done as FFT, product by the kernel's spectrum,
// inverse FFT, and a product by the chirp again. The inverse transform conjugates every chirp and
// the kernel spectrum (the kernel is symmetric, d and -d alike, so the spectrum of its conjugate
// is the conjugate of its spectrum).
template <class T>
void FftPlan<T>::bluestein(T* data, T* work, bool inverse) const {
    const std::int64_t m = conv_size_;
    T* buffer = work;
    T* conv_work = work + 2 * m;
    auto chirp = [&](std::int64_t j) {
        const Complex<T> c = load(chirp_.data(), j);
        return inverse ? conj(c) : c;
    };
    for (std::int64_t j = 0; j < n_; ++j) store(buffer, j, load(data, j) * chirp(j));
    std::fill(buffer + 2 * n_, buffer + 2 * m, T(0));
    conv_plan_->transform(buffer, conv_work, /*inverse=*/false);
    for (std::int64_t k = 0; k < m; ++k) {
        Complex<T> h = load(kernel_spectrum_.data(), k);
        store(buffer, k, load(buffer, k) * (inverse ? conj(h) : h));
    }
    conv_plan_->transform(buffer, conv_work, /*inverse=*/true);
    for (std::int64_t k = 0; k < n_; ++k) store(data, k, load(buffer, k) * chirp(k));
}

template <class T>
const FftPlan<T>& fft_plan(std::int64_t n) {
    static std::mutex mutex;
    static std::map<std::int64_t, std::unique_ptr<FftPlan<T>>> plans;
    std::lock_guard<std::mutex> lock(mutex);
    std::unique_ptr<FftPlan<T>>& plan = plans[n];
    if (!plan) plan = std::make_unique<FftPlan<T>>(n);
    return *plan;
}

template class FftPlan<float>;
template class FftPlan<double>;
template const FftPlan<float>& fft_plan<float>(std::int64_t);
template const FftPlan<double>& fft_plan<double>(std::int64_t);

}  // namespace retort::cpu
