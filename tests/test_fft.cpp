// tests/test_fft.cpp: fft2, ifft2, rfft2, irfft2, complex_abs and complex_angle.
// Forward values against direct O(n^2) DFTs written here (every 1-D length up to 70 and larger
// primes, whose plans use Bluestein's algorithm), round trips for every norm, PyTorch fixtures
// (values and gradients, irfft2 on half spectra that are not Hermitian included), float64
// gradient checks, the same bits for 1 and 4 threads, and every error message.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <numbers>
#include <string>

#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::leaf;
using retort::testing::max_abs_diff;

namespace {

using cd = std::complex<double>;
const FftNorm kNorms[] = {FftNorm::backward, FftNorm::ortho, FftNorm::forward};

// The factor torch.fft applies to a transform of n points for `norm`, in either direction.
double norm_scale(FftNorm norm, bool inverse, double n) {
    if (norm == FftNorm::ortho) return 1 / std::sqrt(n);
    const bool scaled = inverse ? norm == FftNorm::backward : norm == FftNorm::forward;
    return scaled ? 1 / n : 1;
}

std::vector<cd> complex_values(const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    std::vector<cd> z(v.size() / 2);
    for (std::size_t i = 0; i < z.size(); ++i) z[i] = {v[2 * i], v[2 * i + 1]};
    return z;
}

std::vector<cd> real_values(const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    return std::vector<cd>(v.begin(), v.end());
}

// max |a - b| over max(1, max |b|): an error relative to the size of the expected values.
double relative_error(const std::vector<cd>& a, const std::vector<cd>& b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, scale = 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(a[i] - b[i]));
        scale = std::max(scale, std::abs(b[i]));
    }
    return diff / scale;
}

double relative_error(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    return relative_error(real_values(a), real_values(b));
}

// The definition, term by term: for every (h, w) matrix of the batch,
//     out[k1][k2] = scale * sum_{n1, n2} x[n1][n2] exp(dir 2 pi i (k1 n1 / h + k2 n2 / w))
// with dir = -1 forward and +1 inverse. O((h w)^2) per matrix; no separability is used.
std::vector<cd> direct_dft2(const std::vector<cd>& x, std::int64_t h, std::int64_t w, bool inverse,
                            double scale) {
    const double dir = inverse ? 1 : -1;
    auto roots = [dir](std::int64_t n) {
        std::vector<cd> r(n);
        for (std::int64_t k = 0; k < n; ++k)
            r[k] = std::polar(1.0, dir * 2 * std::numbers::pi * static_cast<double>(k) / n);
        return r;
    };
    const std::vector<cd> row_roots = roots(h), column_roots = roots(w);
    std::vector<cd> out(x.size());
    for (std::size_t base = 0; base < x.size(); base += h * w)
        for (std::int64_t k1 = 0; k1 < h; ++k1)
            for (std::int64_t k2 = 0; k2 < w; ++k2) {
                cd total = 0;
                for (std::int64_t n1 = 0; n1 < h; ++n1)
                    for (std::int64_t n2 = 0; n2 < w; ++n2)
                        total += x[base + n1 * w + n2] * row_roots[(k1 * n1) % h] *
                                 column_roots[(k2 * n2) % w];
                out[base + k1 * w + k2] = total * scale;
            }
    return out;
}

// The first w / 2 + 1 columns of each row of (rows, w) values.
std::vector<cd> first_half_columns(const std::vector<cd>& x, std::int64_t w) {
    std::vector<cd> out;
    for (std::size_t row = 0; row < x.size(); row += w)
        for (std::int64_t k = 0; k <= w / 2; ++k) out.push_back(x[row + k]);
    return out;
}

// torch.fft.irfft2(z, s=(h, w)) the way pocketfft defines it: an inverse DFT over H of each of
// the K = w / 2 + 1 columns, then the 1-D complex-to-real transform over W, which reads only the
// real parts of column 0 and (even w) column w / 2 and counts every other column twice.
std::vector<cd> direct_irfft2(const std::vector<cd>& z, std::int64_t h, std::int64_t w,
                              double scale) {
    const std::int64_t k_count = w / 2 + 1;
    std::vector<cd> columns_done(z.size());
    for (std::size_t base = 0; base < z.size(); base += h * k_count)
        for (std::int64_t m = 0; m < h; ++m)
            for (std::int64_t k = 0; k < k_count; ++k) {
                cd total = 0;
                for (std::int64_t j = 0; j < h; ++j)
                    total +=
                        z[base + j * k_count + k] *
                        std::polar(1.0, 2 * std::numbers::pi * static_cast<double>(j * m % h) / h);
                columns_done[base + m * k_count + k] = total;
            }
    std::vector<cd> out;
    for (std::size_t row = 0; row < columns_done.size(); row += k_count)
        for (std::int64_t n = 0; n < w; ++n) {
            const cd* u = &columns_done[row];
            double x = u[0].real();
            for (std::int64_t k = 1; k < k_count; ++k) {
                if (2 * k == w) {
                    x += u[k].real() * (n % 2 == 0 ? 1 : -1);
                } else {
                    const double angle = 2 * std::numbers::pi * static_cast<double>(k * n % w) / w;
                    x += 2 * (u[k] * std::polar(1.0, angle)).real();
                }
            }
            out.push_back(x * scale);
        }
    return out;
}

struct SignalCase {
    Shape batch;
    std::int64_t h, w;
};

// The sizes of the frequency-domain objectives (7, 14, 28, 56), 1, small primes, and (13, 17),
// (11, 31), whose 17 and 31 take Bluestein's path.
const std::vector<SignalCase> kCases = {
    {{2, 3}, 1, 1}, {{2, 3}, 2, 3}, {{3}, 7, 7},   {{2}, 14, 14},
    {{2}, 28, 28},  {{1}, 5, 56},   {{2}, 13, 17}, {{2}, 11, 31},
};

Shape with(Shape shape, std::initializer_list<std::int64_t> tail) {
    shape.insert(shape.end(), tail);
    return shape;
}

std::string describe(const SignalCase& c) {
    return shape_str(c.batch) + " x " + std::to_string(c.h) + " x " + std::to_string(c.w);
}

}  // namespace

TEST_CASE("fft: fft2 and ifft2 match a direct DFT in float64") {
    std::uint64_t seed = 10;
    for (const SignalCase& c : kCases) {
        CAPTURE(describe(c));
        Tensor x = leaf(with(c.batch, {c.h, c.w, 2}), ++seed).detach();
        const std::vector<cd> values = complex_values(x);
        const double n = static_cast<double>(c.h * c.w);
        for (FftNorm norm : kNorms) {
            CAPTURE(fft_norm_name(norm));
            Tensor y = fft2(x, norm), yi = ifft2(x, norm);
            CHECK(y.shape() == x.shape());
            CHECK(relative_error(complex_values(y),
                                 direct_dft2(values, c.h, c.w, false, norm_scale(norm, false, n))) <
                  1e-12);
            CHECK(relative_error(complex_values(yi),
                                 direct_dft2(values, c.h, c.w, true, norm_scale(norm, true, n))) <
                  1e-12);
        }
    }
}

TEST_CASE("fft: rfft2 and irfft2 match direct transforms in float64") {
    std::uint64_t seed = 20;
    for (const SignalCase& c : kCases) {
        CAPTURE(describe(c));
        const std::int64_t k = c.w / 2 + 1;
        Tensor x = leaf(with(c.batch, {c.h, c.w}), ++seed).detach();
        Tensor half = leaf(with(c.batch, {c.h, k, 2}), ++seed).detach();  // not Hermitian
        const double n = static_cast<double>(c.h * c.w);
        for (FftNorm norm : kNorms) {
            CAPTURE(fft_norm_name(norm));
            Tensor y = rfft2(x, norm);
            CHECK(y.shape() == with(c.batch, {c.h, k, 2}));
            const std::vector<cd> full =
                direct_dft2(real_values(x), c.h, c.w, false, norm_scale(norm, false, n));
            CHECK(relative_error(complex_values(y), first_half_columns(full, c.w)) < 1e-12);
            Tensor r = irfft2(half, c.w, norm);
            CHECK(r.shape() == with(c.batch, {c.h, c.w}));
            CHECK(relative_error(real_values(r), direct_irfft2(complex_values(half), c.h, c.w,
                                                               norm_scale(norm, true, n))) < 1e-12);
        }
    }
}

TEST_CASE("fft: every length from 1 to 70 and larger ones, along rows and along columns") {
    std::vector<std::int64_t> lengths;
    for (std::int64_t n = 1; n <= 70; ++n) lengths.push_back(n);
    // powers of 3, 11, 13; primes and prime squares on Bluestein's path; large mixed sizes
    for (std::int64_t n : {97, 121, 128, 169, 210, 243, 257, 289, 1000, 1024, 1031})
        lengths.push_back(n);
    std::uint64_t seed = 30;
    for (std::int64_t n : lengths) {
        CAPTURE(n);
        Tensor row = leaf({1, n, 2}, ++seed).detach();
        const std::vector<cd> values = complex_values(row);
        const std::vector<cd> forward = direct_dft2(values, 1, n, false, 1.0);
        const std::vector<cd> inverse = direct_dft2(values, 1, n, true, 1.0 / n);
        CHECK(relative_error(complex_values(fft2(row)), forward) < 1e-12);
        CHECK(relative_error(complex_values(ifft2(row)), inverse) < 1e-12);
        // the same numbers as one column: the column pass gathers, transforms and scatters
        CHECK(relative_error(complex_values(fft2(row.reshape({n, 1, 2}))), forward) < 1e-12);
        // float32 keeps float32 accuracy, Bluestein's path included
        CHECK(relative_error(complex_values(fft2(row.to(DType::f32))), forward) < 2e-6);
    }
}

TEST_CASE("fft: round trips recover the signal for every norm, float64 and float32") {
    for (FftNorm norm : kNorms) {
        CAPTURE(fft_norm_name(norm));
        for (std::int64_t w : {1, 2, 6, 7, 14, 17}) {
            CAPTURE(w);
            Tensor z = leaf({2, 5, w, 2}, 40 + w).detach();
            Tensor x = leaf({3, 5, w}, 50 + w).detach();
            CHECK(max_abs_diff(ifft2(fft2(z, norm), norm), z) < 1e-12);
            CHECK(max_abs_diff(fft2(ifft2(z, norm), norm), z) < 1e-12);
            CHECK(max_abs_diff(irfft2(rfft2(x, norm), w, norm), x) < 1e-12);
            Tensor z32 = z.to(DType::f32), x32 = x.to(DType::f32);
            CHECK(max_abs_diff(ifft2(fft2(z32, norm), norm), z32) < 1e-5);
            CHECK(max_abs_diff(irfft2(rfft2(x32, norm), w, norm), x32) < 1e-5);
        }
    }
}

TEST_CASE("fft: values and gradients match torch.fft, float64 and float32") {
    Fixture fx("fft.txt");
    using Op = std::function<Tensor(const Tensor&, FftNorm)>;
    const std::vector<std::pair<std::string, Op>> ops = {
        {"fft2", [](const Tensor& x, FftNorm n) { return fft2(x, n); }},
        {"ifft2", [](const Tensor& x, FftNorm n) { return ifft2(x, n); }},
        {"rfft2_odd", [](const Tensor& x, FftNorm n) { return rfft2(x, n); }},
        {"rfft2_even", [](const Tensor& x, FftNorm n) { return rfft2(x, n); }},
        {"irfft2_w6", [](const Tensor& x, FftNorm n) { return irfft2(x, 6, n); }},
        {"irfft2_w7", [](const Tensor& x, FftNorm n) { return irfft2(x, 7, n); }},
    };
    for (DType dtype : {DType::f64, DType::f32}) {
        const bool f64 = dtype == DType::f64;
        const double value_tol = f64 ? 1e-12 : 1e-5, grad_tol = f64 ? 1e-12 : 1e-4;
        for (const auto& [name, op] : ops) {
            for (FftNorm norm : kNorms) {
                const std::string key = name + "." + fft_norm_name(norm);
                CAPTURE(key);
                CAPTURE(dtype_name(dtype));
                Tensor x = fx[name + ".x"].to(dtype).set_requires_grad();
                Tensor w = fx[name + ".w"].to(dtype);
                Tensor y = op(x, norm);
                if (norm == FftNorm::backward)
                    CHECK(relative_error(y, fx[name + ".out"]) < value_tol);
                Tensor loss = sum(w * y);
                const double expected = fx[key + ".loss"].item();
                CHECK(std::abs(loss.item() - expected) <=
                      value_tol * std::max(1.0, std::abs(expected)));
                loss.backward();
                CHECK(relative_error(x.grad(), fx[key + ".grad"]) < grad_tol);
            }
        }
    }
}

TEST_CASE("fft: gradient checks of the four transforms in float64, each norm") {
    for (FftNorm norm : kNorms) {
        CAPTURE(fft_norm_name(norm));
        for (const Shape& shape :
             {Shape{2, 3, 4, 2}, Shape{3, 5, 2}, Shape{1, 1, 2}, Shape{4, 1, 2}}) {
            CAPTURE(shape_str(shape));
            CHECK(gradcheck([norm](auto& v) { return fft2(v[0], norm); }, {leaf(shape, 61)}));
            CHECK(gradcheck([norm](auto& v) { return ifft2(v[0], norm); }, {leaf(shape, 62)}));
        }
        for (const Shape& shape :
             {Shape{2, 3, 4}, Shape{5, 3}, Shape{1, 1}, Shape{3, 1}, Shape{2, 7}}) {
            CAPTURE(shape_str(shape));
            CHECK(gradcheck([norm](auto& v) { return rfft2(v[0], norm); }, {leaf(shape, 63)}));
        }
        // (input columns, output width): even and odd widths share a column count
        const std::vector<std::pair<Shape, std::int64_t>> half_spectra = {
            {{3, 3, 2}, 4}, {{3, 3, 2}, 5}, {{2, 2, 2, 2}, 2}, {{2, 2, 2, 2}, 3},
            {{4, 1, 2}, 1}, {{1, 4, 2}, 6}, {{1, 4, 2}, 7}};
        for (const auto& [shape, width] : half_spectra) {
            CAPTURE(shape_str(shape));
            CAPTURE(width);
            CHECK(gradcheck([norm, width](auto& v) { return irfft2(v[0], width, norm); },
                            {leaf(shape, 64)}));
        }
    }
}

TEST_CASE("fft: complex_abs and complex_angle, values and gradients") {
    Tensor z = leaf({3, 4, 2}, 70);
    const std::vector<cd> values = complex_values(z);
    std::vector<double> abs_values = complex_abs(z).to_vector<double>();
    std::vector<double> angles = complex_angle(z).to_vector<double>();
    CHECK(complex_abs(z).shape() == Shape{3, 4});
    for (std::size_t i = 0; i < values.size(); ++i) {
        CHECK(abs_values[i] == doctest::Approx(std::abs(values[i])).epsilon(1e-15));
        CHECK(angles[i] == doctest::Approx(std::arg(values[i])).epsilon(1e-15));
    }
    CHECK(gradcheck([](auto& v) { return complex_abs(v[0]); }, {z}));
    CHECK(gradcheck([](auto& v) { return complex_angle(v[0]); }, {leaf({5, 2}, 71)}));
    // the amplitude spectrum of a real map, as a frequency-domain loss uses it
    CHECK(gradcheck([](auto& v) { return complex_abs(rfft2(v[0], FftNorm::ortho)); },
                    {leaf({2, 5, 6}, 72)}));

    // at z = 0 the gradient does not exist; it is defined as 0, never NaN
    Tensor zero = zeros({2, 2}, DType::f64).set_requires_grad();
    sum(complex_abs(zero) + complex_angle(zero)).backward();
    CHECK(zero.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 0});
    CHECK(complex_abs(zero).to_vector<double>() == std::vector<double>{0, 0});
    // a single complex number (shape (2,)) gives a scalar
    CHECK(complex_abs(from_vector<float>({3, 4})).item() == 5.0);
}

TEST_CASE("fft: results have the same bits for 1 and 4 threads") {
    auto run = [] {
        Generator gen(99);
        Tensor maps = randn({4, 3, 28, 28}, DType::f32, &gen).set_requires_grad();
        Tensor signal = randn({3, 17, 31, 2}, DType::f32, &gen).set_requires_grad();  // Bluestein
        Tensor spectrum = rfft2(maps, FftNorm::ortho);
        Tensor loss = sum(complex_abs(spectrum)) + sum(irfft2(spectrum * spectrum, 28) * 0.01) +
                      sum(complex_abs(ifft2(fft2(signal) * 0.5)));
        loss.backward();
        std::vector<float> bits = spectrum.to_vector<float>();
        for (const Tensor& t : {maps.grad(), signal.grad()})
            for (float g : t.to_vector<float>()) bits.push_back(g);
        bits.push_back(loss.item<float>());
        return bits;
    };
    const int before = num_threads();
    set_num_threads(1);
    std::vector<float> one = run();
    set_num_threads(4);
    std::vector<float> four = run();
    set_num_threads(before);
    REQUIRE(one.size() == four.size());
    CHECK(std::memcmp(one.data(), four.data(), one.size() * sizeof(float)) == 0);
}

TEST_CASE("fft: norm names") {
    for (FftNorm norm : kNorms) CHECK(parse_fft_norm(fft_norm_name(norm)) == norm);
    CHECK(parse_fft_norm("ortho") == FftNorm::ortho);
    CHECK_THROWS_WITH_AS(parse_fft_norm("orthonormal"),
                         doctest::Contains("unknown norm \"orthonormal\"; expected one of "
                                           "backward, ortho, forward"),
                         Error);
}

TEST_CASE("fft: an empty batch gives an empty result") {
    CHECK(fft2(zeros({0, 3, 4, 2})).shape() == Shape{0, 3, 4, 2});
    CHECK(rfft2(zeros({2, 0, 3, 4})).shape() == Shape{2, 0, 3, 3, 2});
    CHECK(irfft2(zeros({0, 3, 3, 2}), 5).shape() == Shape{0, 3, 5});
}

TEST_CASE("fft: bad arguments are errors that name the op and the shape") {
    CHECK_THROWS_WITH_AS(fft2(zeros({3, 2})),
                         doctest::Contains("fft2: expected a complex tensor (..., H, W, 2) of at "
                                           "least 3 dims, got shape (3, 2)"),
                         Error);
    CHECK_THROWS_WITH_AS(ifft2(zeros({2, 3, 4})),
                         doctest::Contains("ifft2: expected a last dim of 2 (real, imaginary), "
                                           "got shape (2, 3, 4)"),
                         Error);
    CHECK_THROWS_WITH_AS(rfft2(zeros({5})),
                         doctest::Contains("rfft2: expected a real tensor (..., H, W) of at least "
                                           "2 dims, got shape (5,)"),
                         Error);
    CHECK_THROWS_WITH_AS(
        irfft2(zeros({3, 4, 2}), 8),
        doctest::Contains("irfft2: an output width of 8 needs 5 complex columns "
                          "(width / 2 + 1), but the input of shape (3, 4, 2) has 4"),
        Error);
    CHECK_THROWS_WITH_AS(irfft2(zeros({3, 1, 2}), 0),
                         doctest::Contains("irfft2: the output width must be at least 1, got 0"),
                         Error);
    CHECK_THROWS_WITH_AS(irfft2(zeros({3, 2}), 2),
                         doctest::Contains("irfft2: expected a complex tensor"), Error);
    CHECK_THROWS_WITH_AS(fft2(zeros({2, 2, 2}, DType::i64)),
                         doctest::Contains("fft2: expected a float32 or float64 tensor, got int64"),
                         Error);
    CHECK_THROWS_WITH_AS(
        rfft2(zeros({2, 2}, DType::i32)),
        doctest::Contains("rfft2: expected a float32 or float64 tensor, got int32"), Error);
    CHECK_THROWS_WITH_AS(fft2(zeros({0, 3, 2})),
                         doctest::Contains("fft2: cannot transform an empty signal (H = 0, W = 3) "
                                           "in shape (0, 3, 2)"),
                         Error);
    CHECK_THROWS_WITH_AS(rfft2(zeros({4, 0})),
                         doctest::Contains("rfft2: cannot transform an empty signal"), Error);
    CHECK_THROWS_WITH_AS(fft2(Tensor()), doctest::Contains("fft2: undefined tensor argument"),
                         Error);
    CHECK_THROWS_WITH_AS(complex_abs(zeros({3})),
                         doctest::Contains("complex_abs: expected a complex tensor (..., 2) with a "
                                           "last dim of 2 (real, imaginary), got shape (3,)"),
                         Error);
    CHECK_THROWS_WITH_AS(complex_angle(scalar_tensor(1.0)),
                         doctest::Contains("complex_angle: expected a complex tensor (..., 2)"),
                         Error);
    CHECK_THROWS_WITH_AS(complex_abs(zeros({2}, DType::i64)),
                         doctest::Contains("complex_abs: expected a float32 or float64 tensor"),
                         Error);
}
