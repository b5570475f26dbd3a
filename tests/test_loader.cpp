// tests/test_loader.cpp: the data pipeline after the readers: the per-sample Philox streams, the
// transforms (the deterministic ones against torchvision fixtures from
// tests/fixtures/gen_transforms.py, the random ones by structure, statistics and exact
// reproducibility), mixup and cutmix, the spec parser's errors, and the threaded DataLoader
// (coverage, order, drop_last, identical bits for any worker count, resuming, cancelling,
// errors crossing threads, clean shutdown).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>

#include "data/batch_transforms.h"
#include "data/loader.h"
#include "data/loader_bench.h"
#include "data/sample_rng.h"
#include "data/transforms.h"
#include "engine/engine.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::Fixture;
using retort::testing::max_abs_diff;

namespace {

// A small in-memory dataset whose pixels and labels are functions of the index, with switches
// for the failure cases: a sample that throws, a sample of another shape, a slow get().
class TinyDataset : public Dataset {
public:
    TinyDataset(std::int64_t n, Shape shape, std::int64_t classes = 10)
        : n_(n), shape_(std::move(shape)), classes_(classes) {}
    std::int64_t size() const override { return n_; }
    std::int64_t num_classes() const override { return classes_; }
    Shape image_shape() const override { return shape_; }
    std::string describe() const override { return "tiny"; }

    Sample get(std::int64_t index) const override {
        ++calls;
        if (index == throw_at) {
            if (throw_kind == 1) fail("the disk is on fire");
            if (throw_kind == 2) throw 42;  // not even an exception class
            throw std::runtime_error("the disk is on fire");
        }
        if (index == int_image_at) return {zeros(shape_, DType::i64), 0};
        if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        Shape shape = index == odd_shape_at ? odd_shape : shape_;
        Tensor image = Tensor::empty(shape);
        float* p = image.data<float>();
        for (std::int64_t k = 0; k < image.numel(); ++k)
            p[k] = static_cast<float>((index * 131 + k * 7) % 251) / 251.0f;
        return {image, index == bad_label_at ? classes_ : index % classes_};
    }

    std::int64_t throw_at = -1;
    int throw_kind = 0;  // 0: std::runtime_error, 1: retort::Error, 2: an int
    std::int64_t int_image_at = -1;
    std::int64_t odd_shape_at = -1;
    Shape odd_shape;
    std::int64_t bad_label_at = -1;
    int delay_us = 0;
    mutable std::atomic<std::int64_t> calls{0};

private:
    std::int64_t n_;
    Shape shape_;
    std::int64_t classes_;
};

// Every batch of one epoch.
std::vector<Batch> epoch_batches(DataLoader& loader, std::int64_t epoch, std::int64_t skip = 0) {
    loader.start_epoch(epoch, skip);
    std::vector<Batch> out;
    Batch b;
    while (loader.next(b)) out.push_back(b);
    return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    return a.shape() == b.shape() && a.dtype() == b.dtype() &&
           std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}

void check_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].indices == b[i].indices);
        CHECK(same_bits(a[i].images, b[i].images));
        CHECK(same_bits(a[i].labels, b[i].labels));
        CHECK(same_bits(a[i].targets, b[i].targets));
    }
}

// An image whose pixel (c, h, w) holds 1 + (c * H + h) * W + w: every value names its position.
Tensor numbered_image(std::int64_t C, std::int64_t H, std::int64_t W) {
    return arange(1.0, static_cast<double>(C * H * W + 1), 1.0, DType::f32).reshape({C, H, W});
}

SampleRng rng_for(std::int64_t index) { return SampleRng::for_sample(7, 0, static_cast<std::uint64_t>(index)); }

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }
double var_of(const std::vector<double>& v) {
    const double m = mean_of(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / v.size();
}

}  // namespace

// =============================================================================================
// SampleRng

TEST_CASE("sample rng: a stream is a function of (seed, purpose, epoch, index) alone") {
    auto draws = [](SampleRng r) {
        std::vector<std::uint32_t> v;
        for (int i = 0; i < 9; ++i) v.push_back(r.bits());
        return v;
    };
    const auto base = draws(SampleRng::for_sample(1, 2, 3));
    CHECK(base == draws(SampleRng::for_sample(1, 2, 3)));
    CHECK(base != draws(SampleRng::for_sample(2, 2, 3)));
    CHECK(base != draws(SampleRng::for_sample(1, 3, 3)));
    CHECK(base != draws(SampleRng::for_sample(1, 2, 4)));
    CHECK(base != draws(SampleRng::for_sample(1, 2, 3ull << 32)));  // the index's high half counts
    CHECK(base != draws(SampleRng::for_batch(1, 2, 3)));
    CHECK(std::set<std::uint32_t>(base.begin(), base.end()).size() == base.size());
    CHECK_THROWS_WITH_AS(SampleRng::for_sample(1, 1ull << 32, 0), doctest::Contains("epoch"), Error);
}

TEST_CASE("sample rng: uniform, integer, normal, gamma and beta have the right moments") {
    SampleRng r = SampleRng::for_batch(42, 0, 0);
    const int n = 20000;
    std::vector<double> u, z, g_small, g_big, b_small, b_skew;
    std::vector<int> counts(5, 0);
    for (int i = 0; i < n; ++i) {
        u.push_back(r.uniform());
        const std::int64_t k = r.integer(-2, 3);
        REQUIRE((k >= -2 && k < 3));
        ++counts[k + 2];
        z.push_back(r.normal());
        g_small.push_back(std::exp(r.log_gamma(0.5)));
        g_big.push_back(std::exp(r.log_gamma(3.0)));
        b_small.push_back(r.beta(0.2, 0.2));
        b_skew.push_back(r.beta(2.0, 5.0));
    }
    CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
    CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
    // tolerances are about 4 standard errors of the mean
    CHECK(mean_of(u) == doctest::Approx(0.5).epsilon(0.01));
    for (int c : counts) CHECK(std::abs(c - n / 5) < 4 * std::sqrt(n * 0.2 * 0.8));
    CHECK(std::abs(mean_of(z)) < 0.03);
    CHECK(var_of(z) == doctest::Approx(1.0).epsilon(0.04));
    CHECK(mean_of(g_small) == doctest::Approx(0.5).epsilon(0.04));  // Gamma(k): mean k, var k
    CHECK(var_of(g_small) == doctest::Approx(0.5).epsilon(0.1));
    CHECK(mean_of(g_big) == doctest::Approx(3.0).epsilon(0.02));
    CHECK(var_of(g_big) == doctest::Approx(3.0).epsilon(0.06));
    // Beta(a, b): mean a / (a + b), variance ab / ((a + b)^2 (a + b + 1))
    CHECK(mean_of(b_small) == doctest::Approx(0.5).epsilon(0.03));
    CHECK(var_of(b_small) == doctest::Approx(0.04 / (0.16 * 1.4)).epsilon(0.03));
    CHECK(mean_of(b_skew) == doctest::Approx(2.0 / 7.0).epsilon(0.02));
    CHECK(var_of(b_skew) == doctest::Approx(10.0 / (49.0 * 8.0)).epsilon(0.06));
    // a tiny alpha puts almost all mass at 0 and 1, and never gives NaN
    for (int i = 0; i < 1000; ++i) {
        const double b = r.beta(0.01, 0.01);
        REQUIRE((b >= 0.0 && b <= 1.0));
    }
}

// =============================================================================================
// Transforms against torchvision

TEST_CASE("transforms: resize matches torchvision Resize (bilinear, no antialias)") {
    Fixture f("transforms.txt");
    const Tensor x = f.f32("x"), gray = f.f32("gray");
    SampleRng rng = rng_for(0);
    struct Case {
        const char* spec;
        Tensor image;
        const char* expected;
    };
    for (const Case& c : {Case{"resize:size=3x4", gray, "resize.gray.3x4"},
                          Case{"resize:size=8x11", gray, "resize.gray.8x11"},
                          Case{"resize:size=1x1", gray, "resize.gray.1x1"},
                          Case{"resize:size=4", gray, "resize.gray.short4"},  // shorter side
                          Case{"resize:size=2x3", x, "resize.x.2x3"},
                          Case{"resize:size=6", x, "resize.x.short6"}}) {
        CAPTURE(c.spec);
        const Tensor out = TransformPipeline(c.spec).apply(c.image, rng);
        REQUIRE(out.shape() == f[c.expected].shape());
        CHECK(max_abs_diff(out, f.f32(c.expected)) < 1e-6);
    }
    CHECK(same_bits(resize_image(gray, 5, 7), gray));  // the same size is the identity
}

TEST_CASE("transforms: center_crop matches torchvision CenterCrop, zero-padding larger crops") {
    Fixture f("transforms.txt");
    const Tensor gray = f.f32("gray");  // (1, 5, 7)
    SampleRng rng = rng_for(0);
    for (const char* size : {"3x4", "2x2", "6x9", "4x9"}) {
        CAPTURE(size);
        const Tensor out = TransformPipeline(cat("center_crop:size=", size)).apply(gray, rng);
        CHECK(same_bits(out, f.f32(cat("center_crop.", size))));
    }
    // Python rounds (5 - 2) / 2 = 1.5 and (7 - 2) / 2 = 2.5 both to 2
    const CropBox box = center_crop_box(5, 7, 2, 2);
    CHECK(box.top == 2);
    CHECK(box.left == 2);
    CHECK(TransformPipeline("center_crop:size=3").apply(gray, rng).shape() == Shape{1, 3, 3});
}

TEST_CASE("transforms: crops of the zero-padded image match torchvision's pad then crop") {
    Fixture f("transforms.txt");
    const Tensor gray = f.f32("gray");
    // RandomCrop(padding=2) cropping the padded image at (top, left) is crop_image at (top-2, left-2)
    CHECK(same_bits(crop_image(gray, 4 - 2, 1 - 2, 5, 7), f.f32("padded_crop.4.1.5x7")));
    CHECK(same_bits(crop_image(gray, 1 - 2, 3 - 2, 4, 6), f.f32("padded_crop.1.3.4x6")));
    // entirely outside: all zeros
    CHECK(sum(crop_image(gray, 20, 20, 2, 2)).item() == 0.0);
}

TEST_CASE("transforms: a resized crop matches torchvision resized_crop") {
    Fixture f("transforms.txt");
    const Tensor gray = f.f32("gray");
    CHECK(max_abs_diff(resize_image(crop_image(gray, 1, 2, 3, 4), 6, 6),
                       f.f32("resized_crop.1.2.3x4.6x6")) < 1e-6);
    CHECK(max_abs_diff(resize_image(crop_image(gray, 2, 1, 2, 5), 3, 8),
                       f.f32("resized_crop.2.1.2x5.3x8")) < 1e-6);
}

TEST_CASE("transforms: normalize matches torchvision Normalize, per channel or one value") {
    Fixture f("transforms.txt");
    SampleRng rng = rng_for(0);
    const Tensor a = TransformPipeline("normalize:mean=0.4914/0.4822/0.4465,std=0.247/0.243/0.261")
                         .apply(f.f32("x"), rng);
    CHECK(max_abs_diff(a, f.f32("normalize")) < 1e-6);
    const Tensor b = TransformPipeline("normalize: mean = 0.286, std = 0.353").apply(f.f32("gray"), rng);
    CHECK(max_abs_diff(b, f.f32("normalize.one")) < 1e-6);
    // the defaults map [0, 1] to [-1, 1]
    const Tensor c = TransformPipeline("normalize").apply(from_vector<float>({0, 0.5f, 1}, {1, 1, 3}), rng);
    CHECK(c.to_vector<float>() == std::vector<float>{-1, 0, 1});
    CHECK_THROWS_WITH_AS(TransformPipeline("normalize:mean=0.1/0.2").apply(f.f32("x"), rng),
                         doctest::Contains("mean has 2 values but the image (3, 4, 5) has 3 channels"),
                         Error);
}

// =============================================================================================
// Random transforms: structure, statistics, reproducibility

TEST_CASE("transforms: flip mirrors the columns with probability p, reproducibly") {
    const Tensor img = numbered_image(2, 2, 3);
    const Tensor flipped = flip_image(img);
    CHECK(flipped.to_vector<float>() == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
    SampleRng r0 = rng_for(0), r1 = rng_for(0);
    CHECK(same_bits(TransformPipeline("flip:p=0").apply(img, r0), img));
    CHECK(same_bits(TransformPipeline("flip:p=1").apply(img, r1), flipped));

    const TransformPipeline flip("flip");
    int flips = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
        SampleRng r = rng_for(i), again = rng_for(i);
        const Tensor out = flip.apply(img, r);
        CHECK(same_bits(out, flip.apply(img, again)));
        flips += same_bits(out, flipped) ? 1 : 0;
    }
    CHECK(std::abs(flips - n / 2) < 4 * std::sqrt(n * 0.25));
}

TEST_CASE("transforms: random_crop takes every padded offset, uniformly, reproducibly") {
    const std::int64_t H = 5, W = 6, pad = 2;
    const Tensor img = numbered_image(2, H, W);
    const TransformPipeline crop("random_crop:padding=2");
    std::vector<int> seen((2 * pad + 1) * (2 * pad + 1), 0);
    const int n = 2500;
    for (int i = 0; i < n; ++i) {
        SampleRng r = rng_for(i), again = rng_for(i);
        const Tensor out = crop.apply(img, r);
        REQUIRE(out.shape() == img.shape());  // the size defaults to the input's
        CHECK(same_bits(out, crop.apply(img, again)));
        // find the offset from any pixel that came from the image (all image values are > 0)
        const float* p = out.data<float>();
        std::int64_t top = 0, left = 0;
        for (std::int64_t k = 0; k < H * W; ++k)
            if (p[k] > 0) {
                const auto v = static_cast<std::int64_t>(p[k]) - 1;
                top = v / W - k / W, left = v % W - k % W;
                break;
            }
        REQUIRE((std::abs(top) <= pad && std::abs(left) <= pad));
        CHECK(same_bits(out, crop_image(img, top, left, H, W)));
        ++seen[(top + pad) * (2 * pad + 1) + left + pad];
    }
    const double expected = static_cast<double>(n) / seen.size();
    for (int s : seen) CHECK(std::abs(s - expected) < 5 * std::sqrt(expected));

    SampleRng r = rng_for(0);
    CHECK(TransformPipeline("random_crop:size=3x4").apply(img, r).shape() == Shape{2, 3, 4});
    CHECK(TransformPipeline("random_crop:size=9x10,padding=2").apply(img, r).shape() == Shape{2, 9, 10});
    CHECK_THROWS_WITH_AS(TransformPipeline("random_crop:size=10,padding=2").apply(img, r),
                         doctest::Contains("random_crop: the crop 10x10 is larger than the padded image 9x10"),
                         Error);
}

TEST_CASE("transforms: random_resized_crop follows torchvision's box rules and its fallback") {
    int tries = 0;
    for (int i = 0; i < 2000; ++i) {
        SampleRng r = rng_for(i);
        const CropBox b = random_resized_crop_box(40, 60, {0.08, 1.0}, {3.0 / 4, 4.0 / 3}, r);
        REQUIRE((b.top >= 0 && b.left >= 0 && b.height >= 1 && b.width >= 1));
        REQUIRE((b.top + b.height <= 40 && b.left + b.width <= 60));
        // sides are rounded, so the area and the ratio hold up to half a pixel per side
        CHECK(static_cast<double>(b.height + 1) * (b.width + 1) / (40 * 60) >= 0.08);
        CHECK((b.width + 0.5) / (b.height - 0.5) >= 0.75);
        CHECK((b.width - 0.5) / (b.height + 0.5) <= 4.0 / 3);
        tries += b.height * b.width < 40 * 60 ? 1 : 0;
    }
    CHECK(tries > 1500);  // boxes really vary

    // scale above 1 never fits: the center crop, clamped to the ratio range
    SampleRng r = rng_for(0);
    auto fallback = [&](std::int64_t H, std::int64_t W) {
        return random_resized_crop_box(H, W, {2.0, 3.0}, {3.0 / 4, 4.0 / 3}, r);
    };
    CropBox wide = fallback(10, 20);  // ratio 2 > 4/3: h = 10, w = round(10 * 4/3) = 13
    CHECK((wide.top == 0 && wide.left == 3 && wide.height == 10 && wide.width == 13));
    CropBox tall = fallback(20, 10);  // ratio 0.5 < 3/4: w = 10, h = round(10 / 0.75) = 13
    CHECK((tall.top == 3 && tall.left == 0 && tall.height == 13 && tall.width == 10));
    CropBox whole = fallback(10, 12);
    CHECK((whole.top == 0 && whole.left == 0 && whole.height == 10 && whole.width == 12));

    // the transform is that box, cropped and resized to `size`
    const Tensor img = numbered_image(3, 12, 16) * (1.0 / 600.0);
    const TransformPipeline rrc("random_resized_crop:size=8x6");
    for (int i = 0; i < 20; ++i) {
        SampleRng a = rng_for(i), b = rng_for(i);
        const Tensor out = rrc.apply(img, a);
        const CropBox box = random_resized_crop_box(12, 16, {0.08, 1.0}, {3.0 / 4, 4.0 / 3}, b);
        CHECK(same_bits(out, resize_image(crop_image(img, box.top, box.left, box.height, box.width), 8, 6)));
    }
    SampleRng c = rng_for(0);
    CHECK(TransformPipeline("random_resized_crop").apply(img, c).shape() == img.shape());
}

TEST_CASE("transforms: repeat_channels turns gray into 3 channels and passes 3 through") {
    SampleRng r = rng_for(0);
    const Tensor gray = numbered_image(1, 2, 2);
    const Tensor rgb = TransformPipeline("repeat_channels").apply(gray, r);
    CHECK(rgb.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4});
    CHECK(same_bits(TransformPipeline("repeat_channels:to=3").apply(rgb, r), rgb));
    CHECK_THROWS_WITH_AS(TransformPipeline("repeat_channels").apply(numbered_image(2, 2, 2), r),
                         doctest::Contains("can only repeat a 1-channel image to 3 channels, got an image of shape (2, 2, 2)"),
                         Error);
}

TEST_CASE("transforms: a pipeline draws from one stream and never modifies its input") {
    const Tensor img = numbered_image(1, 6, 6) * (1.0 / 36.0);
    const Tensor before = img.clone();
    const TransformPipeline p("random_crop:size=4,padding=1; flip; random_resized_crop:size=5; normalize");
    SampleRng a = rng_for(3), b = rng_for(3), c = rng_for(4);
    const Tensor x = p.apply(img, a), y = p.apply(img, b), z = p.apply(img, c);
    CHECK(same_bits(x, y));
    CHECK_FALSE(same_bits(x, z));
    CHECK(x.shape() == Shape{1, 5, 5});
    CHECK(same_bits(img, before));
}

TEST_CASE("transforms: spec parsing, canonical form, and every error lists what is valid") {
    CHECK(TransformPipeline("").empty());
    CHECK(TransformPipeline(" ; ").empty());
    CHECK(TransformPipeline(" random_crop : padding = 4 ;flip;normalize:mean=0.1,std=0.2; ").describe() ==
          "random_crop:size=input,padding=4; flip:p=0.5; normalize:mean=0.1,std=0.2");
    CHECK(TransformPipeline("resize:size=32;center_crop:size=24x28;repeat_channels:to=3").describe() ==
          "resize:size=32; center_crop:size=24x28; repeat_channels:to=3");
    CHECK(TransformPipeline("random_resized_crop:size=8,scale=0.5/1,ratio=1/2").describe() ==
          "random_resized_crop:size=8x8,scale=0.5/1,ratio=1/2");
    CHECK(transform_names().size() == 7);

    struct Bad {
        const char* spec;
        const char* message;
    };
    for (const Bad& b : {
             Bad{"jitter", "unknown transform 'jitter' in 'jitter'; valid transforms: normalize, random_crop, flip, resize, random_resized_crop, center_crop, repeat_channels"},
             Bad{"flip:prob=0.5", "transform 'flip' has no key 'prob'; valid keys: p"},
             Bad{"random_crop:pad=4", "valid keys: size, padding"},
             Bad{"flip:p=2", "transform 'flip': key 'p' must be a number in [0, 1], got '2'"},
             Bad{"flip:p=half", "key 'p' must be a number"},
             Bad{"flip:p=", "key 'p' of transform 'flip' has no value"},
             Bad{"flip:p", "'p' in transform 'flip' is not key=value"},
             Bad{"flip:p=0.1,p=0.2", "key 'p' is given twice"},
             Bad{":p=1", "has no name before the ':'"},
             Bad{"random_crop:padding=-1", "key 'padding' must be an integer in [0, "},
             Bad{"random_crop:padding=1.5", "key 'padding' must be an integer"},
             Bad{"resize", "transform 'resize' needs key 'size' (N or HxW)"},
             Bad{"center_crop", "transform 'center_crop' needs key 'size'"},
             Bad{"resize:size=0", "key 'size' must be a size N or HxW of positive integers, got '0'"},
             Bad{"resize:size=3x", "got '3x'"},
             Bad{"resize:size=3x4x5", "must be a size N or HxW, got '3x4x5'"},
             Bad{"normalize:std=0", "key 'std' must be positive"},
             Bad{"normalize:mean=0.5/x", "key 'mean' must be numbers in"},
             Bad{"random_resized_crop:scale=1/0.5", "key 'scale' must be a range low/high with low <= high"},
             Bad{"random_resized_crop:ratio=1", "key 'ratio' must be a range low/high"},
             Bad{"random_resized_crop:scale=0/0", "key 'scale' needs a positive upper end"},
             Bad{"random_resized_crop:ratio=0/1", "key 'ratio' must be positive"},
             Bad{"flip:=1", "a key is missing in '=1'"},
             Bad{"repeat_channels:to=0", "key 'to' must be an integer in [1, 4096]"},
         }) {
        CAPTURE(b.spec);
        CHECK_THROWS_WITH_AS(TransformPipeline{b.spec}, doctest::Contains(b.message), Error);
    }
    SampleRng r = rng_for(0);
    CHECK_THROWS_WITH_AS(TransformPipeline("flip:p=1").apply(Tensor::empty({2, 2}), r),
                         doctest::Contains("flip: expected a float32 image of shape (C, H, W), got float32 (2, 2)"),
                         Error);
}

TEST_CASE("transforms: the building blocks reject empty sizes and images") {
    SampleRng r = rng_for(0);
    const Tensor img = numbered_image(1, 3, 3);
    const Tensor empty = Tensor::empty({1, 0, 4});
    CHECK_THROWS_WITH_AS(crop_image(img, 0, 0, 0, 2), doctest::Contains("crop: the crop size must be positive, got 0x2"), Error);
    CHECK_THROWS_WITH_AS(resize_image(img, 2, 0), doctest::Contains("resize: the output size must be positive, got 2x0"), Error);
    CHECK_THROWS_WITH_AS(resize_image(empty, 2, 2), doctest::Contains("resize: cannot resize an empty image (1, 0, 4)"), Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("resize:size=2").apply(empty, r), doctest::Contains("cannot resize an empty image"), Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("random_resized_crop").apply(empty, r), doctest::Contains("random_resized_crop: empty image (1, 0, 4)"), Error);
    CHECK_THROWS_WITH_AS(normalize_image(img, {0.5}, {0.0}), doctest::Contains("normalize: std must not be 0"), Error);
    CHECK_THROWS_WITH_AS(flip_image(Tensor()), doctest::Contains("flip: the image is undefined"), Error);
    CHECK_THROWS_WITH_AS(flip_image(zeros({1, 2, 2}, DType::f64)), doctest::Contains("got float64 (1, 2, 2)"), Error);
}

// =============================================================================================
// Batch transforms

namespace {
Batch small_batch(std::int64_t B, std::int64_t H, std::int64_t W, std::vector<std::int64_t> labels) {
    Batch b;
    b.images = numbered_image(B, H, W).reshape({B, 1, H, W});
    b.labels = from_vector(labels);
    return b;
}
}  // namespace

TEST_CASE("batch transforms: mixup blends sample i with sample B-1-i, targets likewise") {
    Batch b = small_batch(3, 1, 2, {0, 2, 1});  // images {1,2}, {3,4}, {5,6}
    const double lam = 0.3;
    mixup_batch(b, lam, 4);
    const float k = 0.3f, t = static_cast<float>(1.0 - lam);
    CHECK(b.images.to_vector<float>() ==
          std::vector<float>{1 * k + 5 * t, 2 * k + 6 * t, 3 * k + 3 * t, 4 * k + 4 * t, 5 * k + 1 * t, 6 * k + 2 * t});
    REQUIRE(b.targets.shape() == Shape{3, 4});
    CHECK(max_abs_diff(b.targets, from_vector<float>({0.3f, 0.7f, 0, 0,  0, 0, 1, 0,  0.7f, 0.3f, 0, 0}, {3, 4})) < 1e-7);
    CHECK(b.labels.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 2, 1});  // kept
    Batch bad = small_batch(2, 1, 1, {0, 5});
    CHECK_THROWS_WITH_AS(mixup_batch(bad, 0.5, 4), doctest::Contains("mixup: label 5 is outside [0, 4)"), Error);
    CHECK_THROWS_WITH_AS(mixup_batch(bad, 0.5, 0), doctest::Contains("mixup: the dataset must have at least one class"), Error);
    Batch flat = small_batch(2, 1, 1, {0, 1});
    flat.images = flat.images.reshape({2, 1});
    CHECK_THROWS_WITH_AS(mixup_batch(flat, 0.5, 4), doctest::Contains("mixup: expected float32 images of shape (B, C, H, W)"), Error);
    Batch short_labels = small_batch(2, 1, 1, {0});
    CHECK_THROWS_WITH_AS(mixup_batch(short_labels, 0.5, 4), doctest::Contains("mixup: expected int64 labels of shape (B) for images (2, 1, 1, 1)"), Error);
}

TEST_CASE("batch transforms: cutmix pastes the partner's box and corrects lambda to its area") {
    Batch b = small_batch(2, 4, 5, {1, 0});
    const Tensor before = b.images.clone();
    const CutBox box{1, 3, 2, 5};  // rows 1..2, columns 2..4: 6 of 20 pixels
    const double lam = cutmix_batch(b, box, 3);
    CHECK(lam == doctest::Approx(1.0 - 6.0 / 20.0));
    const float* x = b.images.data<float>();
    const float* x0 = before.data<float>();
    for (std::int64_t i = 0; i < 2; ++i)
        for (std::int64_t r = 0; r < 4; ++r)
            for (std::int64_t c = 0; c < 5; ++c) {
                const bool inside = r >= 1 && r < 3 && c >= 2 && c < 5;
                const std::int64_t from = inside ? 1 - i : i;
                CHECK(x[(i * 4 + r) * 5 + c] == x0[(from * 4 + r) * 5 + c]);
            }
    CHECK(max_abs_diff(b.targets, from_vector<float>({0.3f, 0.7f, 0, 0.7f, 0.3f, 0}, {2, 3})) < 1e-7);
    CHECK_THROWS_WITH_AS(cutmix_batch(b, CutBox{0, 5, 0, 1}, 3), doctest::Contains("does not fit images (2, 1, 4, 5)"), Error);

    // timm's rand_bbox: sides int(H * sqrt(1 - lam)), centered at a random pixel, clipped
    for (int i = 0; i < 500; ++i) {
        SampleRng r = SampleRng::for_batch(1, 0, static_cast<std::uint64_t>(i));
        const CutBox c = cutmix_box(10, 16, 0.75, r);  // sqrt(0.25) = 0.5: at most 5 x 8
        REQUIRE((0 <= c.top && c.top <= c.bottom && c.bottom <= 10));
        REQUIRE((0 <= c.left && c.left <= c.right && c.right <= 16));
        CHECK(c.bottom - c.top <= 2 * (5 / 2));
        CHECK(c.right - c.left <= 2 * (8 / 2));
    }
    SampleRng r = SampleRng::for_batch(1, 0, 0);
    const CutBox none = cutmix_box(10, 16, 1.0, r);  // lam = 1: an empty box, nothing is pasted
    CHECK(none.bottom - none.top == 0);
}

TEST_CASE("batch transforms: spec, Beta-distributed lambda, one of several per batch") {
    CHECK(make_batch_transform("") == nullptr);
    CHECK(make_batch_transform("mixup")->describe() == "mixup:alpha=1");
    CHECK(make_batch_transform("mixup:alpha=0.8; cutmix")->describe() == "mixup:alpha=0.8; cutmix:alpha=1");
    CHECK_THROWS_WITH_AS(make_batch_transform("cutout"),
                         doctest::Contains("unknown batch transform 'cutout' in 'cutout'; valid batch transforms: mixup, cutmix"),
                         Error);
    CHECK_THROWS_WITH_AS(make_batch_transform("mixup:alpha=0"), doctest::Contains("key 'alpha' must be a number in"), Error);
    CHECK_THROWS_WITH_AS(make_batch_transform("cutmix:beta=1"), doctest::Contains("valid keys: alpha"), Error);

    // lam of mixup:alpha=2 is Beta(2, 2): mean 1/2, variance 1/20; read it off the targets
    const auto mixup = make_batch_transform("mixup:alpha=2");
    const auto both = make_batch_transform("mixup; cutmix");
    std::vector<double> lams;
    int cut = 0;
    for (int i = 0; i < 3000; ++i) {
        Batch b = small_batch(2, 4, 4, {0, 1});
        SampleRng r = SampleRng::for_batch(5, 0, static_cast<std::uint64_t>(i));
        mixup->apply(b, 2, r);
        lams.push_back(b.targets.to_vector<double>()[0]);
        Batch c = small_batch(2, 4, 4, {0, 1});
        SampleRng r2 = SampleRng::for_batch(5, 0, static_cast<std::uint64_t>(i));
        both->apply(c, 2, r2);
        // cutmix leaves every pixel an original value of one of the two images
        const std::vector<float> v = c.images.to_vector<float>();
        bool pasted_only = true;
        for (float p : v) pasted_only = pasted_only && p == std::floor(p);
        cut += pasted_only ? 1 : 0;
        const std::vector<float> t = c.targets.to_vector<float>();
        CHECK(t[0] + t[1] == doctest::Approx(1.0));
    }
    CHECK(mean_of(lams) == doctest::Approx(0.5).epsilon(0.02));
    CHECK(var_of(lams) == doctest::Approx(0.05).epsilon(0.08));
    CHECK(std::abs(cut - 1500) < 4 * std::sqrt(3000 * 0.25));
}

// =============================================================================================
// DataLoader

TEST_CASE("loader: every sample exactly once per epoch, a new order each epoch") {
    auto data = std::make_shared<TinyDataset>(103, Shape{1, 3, 2}, 7);
    LoaderOptions o;
    o.batch_size = 10;
    o.workers = 2;
    o.seed = 11;
    DataLoader loader(data, o);
    CHECK(loader.batches_per_epoch() == 11);
    std::vector<std::vector<std::int64_t>> orders;
    for (std::int64_t epoch : {0, 1, 0}) {
        std::vector<std::int64_t> order;
        const std::vector<Batch> batches = epoch_batches(loader, epoch);
        REQUIRE(batches.size() == 11);
        CHECK(batches.back().images.shape() == Shape{3, 1, 3, 2});
        for (const Batch& b : batches) {
            CHECK(b.images.size(0) == static_cast<std::int64_t>(b.indices.size()));
            CHECK_FALSE(b.targets.defined());
            const std::vector<std::int64_t> labels = b.labels.to_vector<std::int64_t>();
            for (std::size_t i = 0; i < b.indices.size(); ++i) {
                CHECK(labels[i] == b.indices[i] % 7);
                const Tensor expected = data->get(b.indices[i]).image;
                CHECK(std::memcmp(b.images.data<float>() + i * 6, expected.data<float>(), 6 * sizeof(float)) == 0);
            }
            order.insert(order.end(), b.indices.begin(), b.indices.end());
        }
        CHECK(order == epoch_order(103, 11, epoch, true));
        std::vector<std::int64_t> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        std::vector<std::int64_t> all(103);
        std::iota(all.begin(), all.end(), 0);
        CHECK(sorted == all);
        orders.push_back(order);
    }
    CHECK(orders[0] != orders[1]);
    CHECK(orders[0] == orders[2]);
    CHECK(epoch_order(103, 12, 0, true) != orders[0]);  // the seed matters

    o.shuffle = false;
    DataLoader in_order(data, o);
    std::vector<std::int64_t> order;
    for (const Batch& b : epoch_batches(in_order, 3)) order.insert(order.end(), b.indices.begin(), b.indices.end());
    std::vector<std::int64_t> all(103);
    std::iota(all.begin(), all.end(), 0);
    CHECK(order == all);
}

TEST_CASE("loader: drop_last drops the short batch") {
    auto data = std::make_shared<TinyDataset>(103, Shape{1, 2, 2});
    LoaderOptions o;
    o.batch_size = 10;
    o.drop_last = true;
    o.workers = 1;
    DataLoader loader(data, o);
    CHECK(loader.batches_per_epoch() == 10);
    std::set<std::int64_t> seen;
    const std::vector<Batch> batches = epoch_batches(loader, 0);
    REQUIRE(batches.size() == 10);
    for (const Batch& b : batches) {
        CHECK(b.images.size(0) == 10);
        seen.insert(b.indices.begin(), b.indices.end());
    }
    CHECK(seen.size() == 100);

    auto empty = std::make_shared<TinyDataset>(0, Shape{1, 2, 2});
    DataLoader none(empty, o);
    CHECK(none.batches_per_epoch() == 0);
    CHECK(epoch_batches(none, 0).empty());
}

TEST_CASE("loader: batches are bitwise identical with 0, 1 and 3 workers, augmentations included") {
    auto data = std::make_shared<TinyDataset>(45, Shape{3, 6, 5}, 4);
    for (const char* batch_transform : {"", "mixup:alpha=0.4", "cutmix", "mixup; cutmix"}) {
        CAPTURE(batch_transform);
        LoaderOptions o;
        o.batch_size = 8;
        o.seed = 5;
        o.transforms = "random_crop:padding=2; flip; random_resized_crop:size=4x4,scale=0.3/1; normalize";
        o.batch_transform = batch_transform;
        std::vector<std::vector<Batch>> runs;
        for (int workers : {0, 1, 3}) {
            o.workers = workers;
            o.prefetch = workers == 3 ? 2 : 4;
            DataLoader loader(data, o);
            std::vector<Batch> both = epoch_batches(loader, 0);
            for (Batch& b : epoch_batches(loader, 1)) both.push_back(b);
            runs.push_back(both);
        }
        check_same_batches(runs[0], runs[1]);
        check_same_batches(runs[0], runs[2]);
        REQUIRE(runs[0].size() == 12);
        CHECK(runs[0][0].images.shape() == Shape{8, 3, 4, 4});
        CHECK(runs[0][0].targets.defined() == (std::string(batch_transform) != ""));
        if (runs[0][0].targets.defined()) CHECK(runs[0][0].targets.shape() == Shape{8, 4});
        CHECK_FALSE(same_bits(runs[0][0].images, runs[0][6].images));  // epochs differ
    }
}

TEST_CASE("loader: skip_batches gives the epoch without its first batches") {
    auto data = std::make_shared<TinyDataset>(50, Shape{1, 4, 4});
    LoaderOptions o;
    o.batch_size = 7;
    o.workers = 2;
    o.transforms = "random_crop:padding=1; flip";
    o.batch_transform = "mixup";
    DataLoader loader(data, o);
    const std::vector<Batch> full = epoch_batches(loader, 2);
    const std::vector<Batch> resumed = epoch_batches(loader, 2, 3);
    check_same_batches(std::vector<Batch>(full.begin() + 3, full.end()), resumed);
    CHECK(epoch_batches(loader, 2, loader.batches_per_epoch()).empty());
    CHECK_THROWS_WITH_AS(loader.start_epoch(2, 9), doctest::Contains("cannot skip 9 batches of an epoch of 8"), Error);
}

TEST_CASE("loader: start_epoch in the middle of an epoch abandons it cleanly") {
    auto data = std::make_shared<TinyDataset>(64, Shape{1, 3, 3});
    data->delay_us = 200;
    LoaderOptions o;
    o.batch_size = 4;
    o.workers = 3;
    o.transforms = "flip";
    DataLoader fresh(data, o);
    const std::vector<Batch> reference = epoch_batches(fresh, 1);
    DataLoader loader(data, o);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    check_same_batches(epoch_batches(loader, 1), reference);
    loader.start_epoch(0);  // restarted twice before the first batch
    check_same_batches(epoch_batches(loader, 1), reference);
}

TEST_CASE("loader: an exception in get() or a transform surfaces from next() as retort::Error") {
    for (int workers : {0, 2}) {
        for (int kind : {0, 1, 2}) {
            CAPTURE(workers);
            CAPTURE(kind);
            auto data = std::make_shared<TinyDataset>(30, Shape{1, 2, 2});
            data->throw_at = 17;
            data->throw_kind = kind;
            LoaderOptions o;
            o.batch_size = 4;
            o.shuffle = false;
            o.workers = workers;
            DataLoader loader(data, o);
            loader.start_epoch(0);
            Batch b;
            for (int i = 0; i < 4; ++i) REQUIRE(loader.next(b));
            CHECK_THROWS_WITH_AS(loader.next(b),
                                 doctest::Contains(kind == 2 ? "data loader: sample 17 (epoch 0, batch 4): unknown exception"
                                                             : "data loader: sample 17 (epoch 0, batch 4): the disk is on fire"),
                                 Error);
            // the epoch goes on after the failed batch
            int rest = 0;
            while (loader.next(b)) ++rest;
            CHECK(rest == 3);
        }
    }
    auto data = std::make_shared<TinyDataset>(8, Shape{2, 2, 2});
    LoaderOptions o;
    o.workers = 2;
    o.transforms = "normalize:mean=0.1/0.2/0.3";
    DataLoader loader(data, o);
    loader.start_epoch(0);
    Batch b;
    CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("normalize: mean has 3 values but the image (2, 2, 2) has 2 channels"), Error);
}

TEST_CASE("loader: destroying the loader mid-epoch neither hangs nor leaks work") {
    auto data = std::make_shared<TinyDataset>(400, Shape{1, 4, 4});
    data->delay_us = 1000;
    LoaderOptions o;
    o.batch_size = 16;
    o.workers = 3;
    o.prefetch = 3;
    const auto start = std::chrono::steady_clock::now();
    {
        DataLoader never_started(data, o);
    }
    {
        DataLoader started(data, o);
        started.start_epoch(0);
    }
    {
        DataLoader mid(data, o);
        mid.start_epoch(0);
        Batch b;
        REQUIRE(mid.next(b));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // a full epoch takes 400 ms of get() per worker; cancelling stops within a sample or two
    CHECK(seconds < 2.0);
    CHECK(data->calls.load() < 200);
}

TEST_CASE("loader: images of different shapes in one batch are a clear error") {
    auto data = std::make_shared<TinyDataset>(10, Shape{1, 5, 5});
    data->odd_shape_at = 5;
    data->odd_shape = {1, 6, 6};
    LoaderOptions o;
    o.batch_size = 8;
    o.shuffle = false;
    o.workers = 1;
    {
        DataLoader loader(data, o);
        loader.start_epoch(0);
        Batch b;
        CHECK_THROWS_WITH_AS(loader.next(b),
                             doctest::Contains("data loader: sample 5 has shape (1, 6, 6) after the transforms, but sample 0 of the same batch has (1, 5, 5)"),
                             Error);
    }
    o.transforms = "center_crop:size=4";
    DataLoader fixed(data, o);
    const std::vector<Batch> batches = epoch_batches(fixed, 0);
    REQUIRE(batches.size() == 2);
    CHECK(batches[0].images.shape() == Shape{8, 1, 4, 4});
}

TEST_CASE("loader: bad options, calls out of order, bad samples") {
    auto data = std::make_shared<TinyDataset>(10, Shape{1, 2, 2}, 3);
    auto build = [&](auto change) {
        LoaderOptions o;
        change(o);
        DataLoader loader(data, o);
    };
    CHECK_THROWS_WITH_AS(build([](LoaderOptions& o) { o.batch_size = 0; }), doctest::Contains("batch_size must be at least 1, got 0"), Error);
    CHECK_THROWS_WITH_AS(build([](LoaderOptions& o) { o.workers = -1; }), doctest::Contains("workers must be in [0, 256], got -1"), Error);
    CHECK_THROWS_WITH_AS(build([](LoaderOptions& o) { o.prefetch = 0; }), doctest::Contains("prefetch must be at least 1, got 0"), Error);
    CHECK_THROWS_WITH_AS(build([](LoaderOptions& o) { o.transforms = "blur"; }), doctest::Contains("unknown transform 'blur'"), Error);
    CHECK_THROWS_WITH_AS(build([](LoaderOptions& o) { o.batch_transform = "mixup:alpha=-1"; }), doctest::Contains("alpha"), Error);
    CHECK_THROWS_WITH_AS(DataLoader(nullptr, LoaderOptions{}), doctest::Contains("no dataset"), Error);

    for (int workers : {0, 2}) {
        auto bad = std::make_shared<TinyDataset>(10, Shape{1, 2, 2}, 3);
        bad->bad_label_at = 2;
        LoaderOptions o;
        o.workers = workers;
        o.shuffle = false;
        o.batch_size = 4;
        DataLoader loader(bad, o);
        Batch b;
        CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("call start_epoch() first"), Error);
        CHECK_THROWS_WITH_AS(loader.start_epoch(-1), doctest::Contains("epoch must be in [0, 2^32), got -1"), Error);
        loader.start_epoch(0);
        CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("sample 2 (epoch 0, batch 0): label 3 is outside [0, 3)"), Error);
    }
    auto ints = std::make_shared<TinyDataset>(4, Shape{1, 2, 2}, 3);
    ints->int_image_at = 1;
    LoaderOptions o;
    o.workers = 0;
    DataLoader loader(ints, o);
    loader.start_epoch(0);
    Batch b;
    CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("sample 1 (epoch 0, batch 0): expected a float32 image of shape (C, H, W), got int64 (1, 2, 2)"), Error);
    CHECK(DataLoader(data, LoaderOptions{}).describe() ==
          "batch 128, shuffled, 2 workers, 1 batches per epoch; transforms: none; batch transform: none");
}

TEST_CASE("loader: the throughput measurement runs across epochs") {
    auto data = std::make_shared<TinyDataset>(20, Shape{1, 8, 8});
    LoaderOptions o;
    o.batch_size = 8;
    o.workers = 1;
    o.transforms = "random_crop:padding=4; flip; normalize";
    DataLoader loader(data, o);
    CHECK(measure_loader_images_per_second(loader, 7) > 0);  // 3 batches per epoch: crosses two
    CHECK_THROWS_WITH_AS(measure_loader_images_per_second(loader, 0), doctest::Contains("at least 1 batch"), Error);
    DataLoader empty(std::make_shared<TinyDataset>(0, Shape{1, 8, 8}), o);
    CHECK_THROWS_WITH_AS(measure_loader_images_per_second(empty, 1), doctest::Contains("the loader has no batches"), Error);
}
