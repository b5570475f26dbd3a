// engine/cpu/fft2.cpp: the row and column passes behind the 2-D transforms of fft2.h.
// Shapes: B batch, H rows, W columns, K = W / 2 + 1; complex values are (re, im) pairs.
//
// The real transforms promote each row to complex and run the full-width complex FFT: simple,
// and exact to the same rounding as the complex path. A packed real FFT (two real rows in one
// complex transform) would halve the row work; the column pass of a half spectrum already only
// touches K of the W columns.
#include "engine/cpu/fft2.h"

#include <bit>
#include <vector>

#include "engine/cpu/complex.h"
#include "engine/cpu/fft_plan.h"
#include "engine/parallel.h"

namespace retort::cpu {

namespace {

// About the arithmetic of one length-n transform, to size the chunks of parallel_for.
std::int64_t transform_cost(std::int64_t n) {
    return 8 * n * std::bit_width(static_cast<std::uint64_t>(n));
}

// The half-spectrum columns whose mirror image W - k is left out (1 .. W - K).
bool has_mirror(std::int64_t k, Fft2Size size) {
    return k >= 1 && k <= size.width - size.half_width();
}

// `rows` contiguous rows of n complex numbers, each transformed in place.
template <class T>
void transform_rows(T* data, std::int64_t rows, std::int64_t n, bool inverse) {
    const FftPlan<T>& plan = fft_plan<T>(n);
    parallel_for(0, rows, grain_for(transform_cost(n)), [&](std::int64_t begin, std::int64_t end) {
        std::vector<T> work(plan.work_size());
        for (std::int64_t r = begin; r < end; ++r)
            plan.transform(data + 2 * n * r, work.data(), inverse);
    });
}

// Every column of a batch of (height, width) complex matrices, transformed in place and then
// multiplied by scale. A column is strided in memory, so it is copied into a contiguous buffer,
// transformed there and copied back.
template <class T>
void transform_columns(T* data, std::int64_t batch, std::int64_t height, std::int64_t width,
                       bool inverse, T scale) {
    const FftPlan<T>& plan = fft_plan<T>(height);
    parallel_for(0, batch * width, grain_for(transform_cost(height)),
                 [&](std::int64_t begin, std::int64_t end) {
                     std::vector<T> column(2 * height), work(plan.work_size());
                     for (std::int64_t c = begin; c < end; ++c) {
                         T* top = data + 2 * ((c / width) * height * width + c % width);
                         for (std::int64_t i = 0; i < height; ++i)
                             store(column.data(), i, load(top, i * width));
                         plan.transform(column.data(), work.data(), inverse);
                         for (std::int64_t i = 0; i < height; ++i)
                             store(top, i * width, load(column.data(), i) * scale);
                     }
                 });
}

}  // namespace

template <class T>
void fft2_complex(T* data, Fft2Size size, bool inverse, double scale) {
    transform_rows(data, size.batch * size.height, size.width, inverse);
    transform_columns(data, size.batch, size.height, size.width, inverse, static_cast<T>(scale));
}

template <class T>
void real_to_half(const T* x, T* out, Fft2Size size, double scale, bool double_mirrored) {
    const std::int64_t w = size.width, half = size.half_width();
    const FftPlan<T>& plan = fft_plan<T>(w);
    parallel_for(0, size.batch * size.height, grain_for(transform_cost(w)),
                 [&](std::int64_t begin, std::int64_t end) {
                     std::vector<T> row(2 * w), work(plan.work_size());
                     for (std::int64_t r = begin; r < end; ++r) {
                         for (std::int64_t n = 0; n < w; ++n)
                             store(row.data(), n, Complex<T>{x[r * w + n], T(0)});
                         plan.transform(row.data(), work.data(), /*inverse=*/false);
                         T* out_row = out + 2 * half * r;
                         for (std::int64_t k = 0; k < half; ++k) {
                             const bool twice = double_mirrored && has_mirror(k, size);
                             store(out_row, k, load(row.data(), k) * (twice ? T(2) : T(1)));
                         }
                     }
                 });
    transform_columns(out, size.batch, size.height, half, /*inverse=*/false, static_cast<T>(scale));
}

template <class T>
void half_to_real(const T* z, T* x, Fft2Size size, double scale, bool double_mirrored) {
    const std::int64_t w = size.width, half = size.half_width();
    // Columns first, on the K stored columns only; z is the caller's input, so work on a copy.
    std::vector<T> spectrum(z, z + 2 * size.batch * size.height * half);
    transform_columns(spectrum.data(), size.batch, size.height, half, /*inverse=*/true, T(1));
    const FftPlan<T>& plan = fft_plan<T>(w);
    const T s = static_cast<T>(scale);
    parallel_for(0, size.batch * size.height, grain_for(transform_cost(w)),
                 [&](std::int64_t begin, std::int64_t end) {
                     std::vector<T> row(2 * w), work(plan.work_size());
                     for (std::int64_t r = begin; r < end; ++r) {
                         const T* in_row = spectrum.data() + 2 * half * r;
                         for (std::int64_t k = 0; k < w; ++k) {
                             const bool twice = double_mirrored && has_mirror(k, size);
                             store(row.data(), k,
                                   k < half ? load(in_row, k) * (twice ? T(2) : T(1))
                                            : Complex<T>{T(0), T(0)});
                         }
                         plan.transform(row.data(), work.data(), /*inverse=*/true);
                         for (std::int64_t n = 0; n < w; ++n) x[r * w + n] = row[2 * n] * s;
                     }
                 });
}

template void fft2_complex<float>(float*, Fft2Size, bool, double);
template void fft2_complex<double>(double*, Fft2Size, bool, double);
template void real_to_half<float>(const float*, float*, Fft2Size, double, bool);
template void real_to_half<double>(const double*, double*, Fft2Size, double, bool);
template void half_to_real<float>(const float*, float*, Fft2Size, double, bool);
template void half_to_real<double>(const double*, double*, Fft2Size, double, bool);

}  // namespace retort::cpu
