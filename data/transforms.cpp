// data/transforms.cpp: the per-sample transforms and the table that builds them from a spec.
//
// Shapes: image (C, H, W) float32 -> (C', H', W') float32; C channels, H rows, W columns.
// Matches torchvision.transforms (0.14) on tensors, as listed in data/transforms.h; random choices
// follow torchvision's algorithms but draw from the sample's Philox stream instead of torch's
// global generator, so the parameters (not the arithmetic) differ from a PyTorch run. Crops,
// flips and normalize give torchvision's bits; the bilinear resize agrees to within a few float
// roundings (about 1e-7 on [0, 1] images: PyTorch's vectorized kernel rounds some products in
// another order).
// Nothing here records autograd nodes: data enters the graph as leaves, after the loader.
// The loops are plain and single-threaded on purpose: the loader runs one sample per worker
// thread, so threading inside a sample would only oversubscribe the cores.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "data/transform_spec.h"
#include "engine/error.h"

namespace retort {

namespace {

void check_image(const Tensor& image, const char* op) {
    require(image.defined(), op, ": the image is undefined");
    require(image.device().is_cpu(), op, ": images must be on the CPU, got ", image.device().str());
    require(image.dim() == 3 && image.dtype() == DType::f32, op,
            ": expected a float32 image of shape (C, H, W), got ", dtype_name(image.dtype()), " ",
            shape_str(image.shape()));
}

// Python's round() for the non-negative halves torchvision rounds: ties go to the even integer.
std::int64_t round_half_even(double x) { return static_cast<std::int64_t>(std::nearbyint(x)); }

std::string size_text(std::int64_t h, std::int64_t w) { return cat(h, "x", w); }

// Per output index along one axis: the two source indices and weights of bilinear sampling with
// align_corners=False, computed in the order and precision PyTorch uses for float32 (the scale in
// float, the source coordinate in double, then rounded to float). Same rule as
// engine/ops/interpolate.cpp, kept here so a sample never enters the threaded op machinery.
struct AxisWeights {
    std::vector<std::int64_t> i0, i1;
    std::vector<float> w0, w1;
};

AxisWeights bilinear_axis(std::int64_t in, std::int64_t out) {
    AxisWeights a;
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (std::int64_t dst = 0; dst < out; ++dst) {
        if (in == out) {
            a.i0.push_back(dst), a.i1.push_back(dst), a.w0.push_back(1.0f), a.w1.push_back(0.0f);
            continue;
        }
        float src = static_cast<float>(static_cast<double>(scale) * (static_cast<double>(dst) + 0.5) - 0.5);
        src = std::max(src, 0.0f);  // the first outputs would look left of pixel 0
        const std::int64_t i0 = static_cast<std::int64_t>(src);
        const float frac = std::clamp(src - static_cast<float>(i0), 0.0f, 1.0f);
        a.i0.push_back(i0);
        a.i1.push_back(i0 < in - 1 ? i0 + 1 : i0);
        a.w0.push_back(1.0f - frac);
        a.w1.push_back(frac);
    }
    return a;
}

}  // namespace

// ---- building blocks ----

Tensor crop_image(const Tensor& image, std::int64_t top, std::int64_t left, std::int64_t height,
                  std::int64_t width) {
    check_image(image, "crop");
    require(height >= 1 && width >= 1, "crop: the crop size must be positive, got ",
            size_text(height, width));
    const std::int64_t C = image.size(0), H = image.size(1), W = image.size(2);
    Tensor out = Tensor::empty({C, height, width});  // not zeros(): it may start OpenMP threads
    std::fill_n(out.data<float>(), out.numel(), 0.0f);
    // the rows and columns of the window that fall inside the image
    const std::int64_t r0 = std::max<std::int64_t>(0, -top), r1 = std::min(height, H - top);
    const std::int64_t c0 = std::max<std::int64_t>(0, -left), c1 = std::min(width, W - left);
    if (r0 >= r1 || c0 >= c1) return out;
    const float* src = image.data<float>();
    float* dst = out.data<float>();
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t r = r0; r < r1; ++r)
            std::memcpy(dst + (c * height + r) * width + c0,
                        src + (c * H + top + r) * W + left + c0,
                        static_cast<std::size_t>(c1 - c0) * sizeof(float));
    return out;
}

Tensor resize_image(const Tensor& image, std::int64_t height, std::int64_t width) {
    check_image(image, "resize");
    require(height >= 1 && width >= 1, "resize: the output size must be positive, got ",
            size_text(height, width));
    const std::int64_t C = image.size(0), H = image.size(1), W = image.size(2);
    require(H >= 1 && W >= 1, "resize: cannot resize an empty image ", shape_str(image.shape()));
    const AxisWeights rows = bilinear_axis(H, height), cols = bilinear_axis(W, width);
    Tensor out = Tensor::empty({C, height, width});
    const float* x = image.data<float>();
    float* y = out.data<float>();
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t oh = 0; oh < height; ++oh) {
            const float* top = x + (c * H + rows.i0[oh]) * W;
            const float* bottom = x + (c * H + rows.i1[oh]) * W;
            float* dst = y + (c * height + oh) * width;
            for (std::int64_t ow = 0; ow < width; ++ow) {
                // within each row first, then between the rows: PyTorch's order of the sums
                const std::int64_t j0 = cols.i0[ow], j1 = cols.i1[ow];
                const float t0 = top[j0] * cols.w0[ow] + top[j1] * cols.w1[ow];
                const float t1 = bottom[j0] * cols.w0[ow] + bottom[j1] * cols.w1[ow];
                dst[ow] = t0 * rows.w0[oh] + t1 * rows.w1[oh];
            }
        }
    return out;
}

Tensor flip_image(const Tensor& image) {
    check_image(image, "flip");
    const std::int64_t rows = image.size(0) * image.size(1), W = image.size(2);
    Tensor out = Tensor::empty(image.shape());
    const float* x = image.data<float>();
    float* y = out.data<float>();
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t w = 0; w < W; ++w) y[r * W + w] = x[r * W + W - 1 - w];
    return out;
}

Tensor normalize_image(const Tensor& image, const std::vector<double>& mean,
                       const std::vector<double>& std) {
    check_image(image, "normalize");
    const std::int64_t C = image.size(0), plane = image.size(1) * image.size(2);
    auto per_channel = [&](const std::vector<double>& v, const char* what) {
        require(v.size() == 1 || static_cast<std::int64_t>(v.size()) == C, "normalize: ", what,
                " has ", v.size(), " values but the image ", shape_str(image.shape()), " has ", C,
                " channels (give 1 value or ", C, ")");
        // torchvision holds mean and std as float32 tensors: round them once, like it does
        std::vector<float> out(static_cast<std::size_t>(C));
        for (std::int64_t c = 0; c < C; ++c) out[c] = static_cast<float>(v.size() == 1 ? v[0] : v[c]);
        return out;
    };
    const std::vector<float> m = per_channel(mean, "mean"), s = per_channel(std, "std");
    for (float value : s) require(value != 0.0f, "normalize: std must not be 0");
    Tensor out = Tensor::empty(image.shape());
    const float* x = image.data<float>();
    float* y = out.data<float>();
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < plane; ++i) y[c * plane + i] = (x[c * plane + i] - m[c]) / s[c];
    return out;
}

Tensor repeat_channels(const Tensor& image, std::int64_t channels) {
    check_image(image, "repeat_channels");
    const std::int64_t C = image.size(0);
    if (C == channels) return image;
    require(C == 1, "repeat_channels: can only repeat a 1-channel image to ", channels,
            " channels, got an image of shape ", shape_str(image.shape()));
    const std::int64_t plane = image.size(1) * image.size(2);
    Tensor out = Tensor::empty({channels, image.size(1), image.size(2)});
    for (std::int64_t c = 0; c < channels; ++c)
        std::memcpy(out.data<float>() + c * plane, image.data<float>(),
                    static_cast<std::size_t>(plane) * sizeof(float));
    return out;
}

CropBox center_crop_box(std::int64_t image_height, std::int64_t image_width, std::int64_t height,
                        std::int64_t width) {
    // a crop larger than the image: torchvision pads (size - image) / 2 zeros before, the rest after
    auto offset = [](std::int64_t image, std::int64_t crop) {
        return crop > image ? -((crop - image) / 2) : round_half_even((image - crop) / 2.0);
    };
    return {offset(image_height, height), offset(image_width, width), height, width};
}

CropBox random_resized_crop_box(std::int64_t image_height, std::int64_t image_width,
                                std::array<double, 2> scale, std::array<double, 2> ratio,
                                SampleRng& rng) {
    const double area = static_cast<double>(image_height) * static_cast<double>(image_width);
    const double log_low = std::log(ratio[0]), log_high = std::log(ratio[1]);
    for (int attempt = 0; attempt < 10; ++attempt) {
        const double target_area = area * rng.uniform(scale[0], scale[1]);
        const double aspect = std::exp(rng.uniform(log_low, log_high));
        const std::int64_t w = round_half_even(std::sqrt(target_area * aspect));
        const std::int64_t h = round_half_even(std::sqrt(target_area / aspect));
        if (w > 0 && w <= image_width && h > 0 && h <= image_height) {
            const std::int64_t top = rng.integer(0, image_height - h + 1);
            const std::int64_t left = rng.integer(0, image_width - w + 1);
            return {top, left, h, w};
        }
    }
    // no try fitted: the whole image, cut to the nearest allowed aspect ratio, centered
    const double in_ratio = static_cast<double>(image_width) / static_cast<double>(image_height);
    std::int64_t w = image_width, h = image_height;
    if (in_ratio < ratio[0])
        h = round_half_even(static_cast<double>(w) / ratio[0]);
    else if (in_ratio > ratio[1])
        w = round_half_even(static_cast<double>(h) * ratio[1]);
    return {(image_height - h) / 2, (image_width - w) / 2, h, w};
}

// ---- the transforms ----

namespace {

// A size key that may be absent: then the transform keeps the input's size.
struct OptionalSize {
    bool given = false;
    SizeValue size;
    std::string text() const { return given ? size_text(size.height, size.width) : "input"; }
};

OptionalSize optional_size(const SpecKeys& keys) {
    OptionalSize s;
    if (keys.has("size")) s.given = true, s.size = keys.size("size");
    return s;
}

std::string list_text(const std::vector<double>& v) {
    std::vector<std::string> words;
    for (double x : v) words.push_back(cat(x));
    return join_words(words, "/");
}

class Normalize : public Transform {
public:
    explicit Normalize(const SpecKeys& keys)
        : mean_(keys.numbers("mean", {0.5}, -1e30, 1e30)),
          std_(keys.numbers("std", {0.5}, 0, 1e30)) {
        for (double s : std_)
            require(s > 0, "transform 'normalize': key 'std' must be positive, got ", list_text(std_));
    }
    Tensor apply(const Tensor& image, SampleRng&) const override {
        return normalize_image(image, mean_, std_);
    }
    std::string describe() const override {
        return cat("normalize:mean=", list_text(mean_), ",std=", list_text(std_));
    }
    std::int64_t variants() const override { return 1; }

private:
    std::vector<double> mean_, std_;
};

class RandomCrop : public Transform {
public:
    explicit RandomCrop(const SpecKeys& keys)
        : size_(optional_size(keys)), padding_(keys.integer("padding", 0, 0, 1 << 20)) {}
    Tensor apply(const Tensor& image, SampleRng& rng) const override {
        check_image(image, "random_crop");
        const std::int64_t H = image.size(1), W = image.size(2);
        const std::int64_t h = size_.given ? size_.size.height : H;
        const std::int64_t w = size_.given ? size_.size.width : W;
        const std::int64_t padded_h = H + 2 * padding_, padded_w = W + 2 * padding_;
        require(h <= padded_h && w <= padded_w, "random_crop: the crop ", size_text(h, w),
                " is larger than the padded image ", size_text(padded_h, padded_w), " (image ",
                shape_str(image.shape()), ", padding ", padding_, ")");
        std::int64_t top = 0, left = 0;
        if (h != padded_h || w != padded_w) {  // torchvision draws nothing for a full-size crop
            top = rng.integer(0, padded_h - h + 1);
            left = rng.integer(0, padded_w - w + 1);
        }
        return crop_image(image, top - padding_, left - padding_, h, w);
    }
    std::string describe() const override {
        return cat("random_crop:size=", size_.text(), ",padding=", padding_);
    }

private:
    OptionalSize size_;
    std::int64_t padding_;
};

class Flip : public Transform {
public:
    explicit Flip(const SpecKeys& keys) : p_(keys.number("p", 0.5, 0, 1)) {}
    Tensor apply(const Tensor& image, SampleRng& rng) const override {
        // one draw whether or not it flips, so later steps see the same stream position
        return rng.bernoulli(p_) ? flip_image(image) : image;
    }
    std::string describe() const override { return cat("flip:p=", p_); }
    // p = 0 or 1 always makes the same image.
    std::int64_t variants() const override { return p_ == 0 || p_ == 1 ? 1 : 2; }
    Tensor apply_variant(const Tensor& image, SampleRng& rng, std::int64_t& variant) const override {
        const bool flipped = rng.bernoulli(p_);
        variant = variants() == 2 && flipped ? 1 : 0;
        return flipped ? flip_image(image) : image;
    }
    Tensor make_variant(const Tensor& image, std::int64_t variant) const override {
        internal_check(variant >= 0 && variant < variants(), "flip: variant out of range");
        const bool flipped = variants() == 2 ? variant == 1 : p_ == 1;
        return flipped ? flip_image(image) : image;
    }

private:
    double p_;
};

class Resize : public Transform {
public:
    explicit Resize(const SpecKeys& keys) {
        require(keys.has("size"), "transform 'resize' needs key 'size' (N or HxW)");
        size_ = keys.size("size");
    }
    Tensor apply(const Tensor& image, SampleRng&) const override {
        check_image(image, "resize");
        if (!size_.single) return resize_image(image, size_.height, size_.width);
        // the shorter side becomes N; the longer one keeps the ratio, truncated as Python's int()
        const std::int64_t H = image.size(1), W = image.size(2);
        const std::int64_t shorter = std::min(H, W), longer = std::max(H, W);
        require(shorter >= 1, "resize: cannot resize an empty image ", shape_str(image.shape()));
        const std::int64_t n = size_.height;
        const auto new_longer = static_cast<std::int64_t>(static_cast<double>(n * longer) /
                                                          static_cast<double>(shorter));
        return W <= H ? resize_image(image, new_longer, n) : resize_image(image, n, new_longer);
    }
    std::string describe() const override {
        return cat("resize:size=", size_.single ? cat(size_.height) : size_text(size_.height, size_.width));
    }
    std::int64_t variants() const override { return 1; }

private:
    SizeValue size_;
};

class RandomResizedCrop : public Transform {
public:
    explicit RandomResizedCrop(const SpecKeys& keys)
        : size_(optional_size(keys)),
          scale_(keys.range("scale", {0.08, 1.0}, 0, 1e6)),
          ratio_(keys.range("ratio", {3.0 / 4.0, 4.0 / 3.0}, 0, 1e6)) {
        require(scale_[1] > 0, "transform 'random_resized_crop': key 'scale' needs a positive upper end");
        require(ratio_[0] > 0, "transform 'random_resized_crop': key 'ratio' must be positive");
    }
    Tensor apply(const Tensor& image, SampleRng& rng) const override {
        check_image(image, "random_resized_crop");
        const std::int64_t H = image.size(1), W = image.size(2);
        require(H >= 1 && W >= 1, "random_resized_crop: empty image ", shape_str(image.shape()));
        const CropBox box = random_resized_crop_box(H, W, scale_, ratio_, rng);
        const Tensor cropped = crop_image(image, box.top, box.left, box.height, box.width);
        return resize_image(cropped, size_.given ? size_.size.height : H,
                            size_.given ? size_.size.width : W);
    }
    std::string describe() const override {
        return cat("random_resized_crop:size=", size_.text(), ",scale=", scale_[0], "/", scale_[1],
                   ",ratio=", ratio_[0], "/", ratio_[1]);
    }

private:
    OptionalSize size_;
    std::array<double, 2> scale_, ratio_;
};

class CenterCrop : public Transform {
public:
    explicit CenterCrop(const SpecKeys& keys) {
        require(keys.has("size"), "transform 'center_crop' needs key 'size' (N or HxW)");
        size_ = keys.size("size");
    }
    Tensor apply(const Tensor& image, SampleRng&) const override {
        check_image(image, "center_crop");
        const CropBox box = center_crop_box(image.size(1), image.size(2), size_.height, size_.width);
        return crop_image(image, box.top, box.left, box.height, box.width);
    }
    std::string describe() const override {
        return cat("center_crop:size=", size_text(size_.height, size_.width));
    }
    std::int64_t variants() const override { return 1; }

private:
    SizeValue size_;
};

class RepeatChannels : public Transform {
public:
    explicit RepeatChannels(const SpecKeys& keys) : to_(keys.integer("to", 3, 1, 4096)) {}
    Tensor apply(const Tensor& image, SampleRng&) const override { return repeat_channels(image, to_); }
    std::string describe() const override { return cat("repeat_channels:to=", to_); }
    std::int64_t variants() const override { return 1; }

private:
    std::int64_t to_;
};

struct TransformEntry {
    std::string name;
    std::vector<std::string> keys;
    std::function<std::shared_ptr<const Transform>(const SpecKeys&)> make;
};

template <class T>
std::shared_ptr<const Transform> make(const SpecKeys& keys) {
    return std::make_shared<const T>(keys);
}

const std::vector<TransformEntry>& transform_table() {
    static const std::vector<TransformEntry> table = {
        {"normalize", {"mean", "std"}, make<Normalize>},
        {"random_crop", {"size", "padding"}, make<RandomCrop>},
        {"flip", {"p"}, make<Flip>},
        {"resize", {"size"}, make<Resize>},
        {"random_resized_crop", {"size", "scale", "ratio"}, make<RandomResizedCrop>},
        {"center_crop", {"size"}, make<CenterCrop>},
        {"repeat_channels", {"to"}, make<RepeatChannels>},
    };
    return table;
}

}  // namespace

const std::vector<std::string>& transform_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (const TransformEntry& e : transform_table()) out.push_back(e.name);
        return out;
    }();
    return names;
}

TransformPipeline::TransformPipeline(const std::string& spec) {
    for (const SpecItem& item : parse_spec_list(spec, "transforms")) {
        const TransformEntry* entry = nullptr;
        for (const TransformEntry& e : transform_table())
            if (e.name == item.name) entry = &e;
        if (!entry) {
            fail("unknown transform '", item.name, "' in '", spec, "'; valid transforms: ",
                 join_words(transform_names(), ", "));
        }
        steps_.push_back(entry->make(SpecKeys(item, entry->keys)));
    }
}

Tensor TransformPipeline::apply(const Tensor& image, SampleRng& rng) const {
    Tensor out = image;
    for (const auto& step : steps_) out = step->apply(out, rng);
    return out;
}

Tensor Transform::make_variant(const Tensor& image, std::int64_t variant) const {
    require(variants() == 1 && variant == 0, "transform '", describe(),
            "' cannot make a chosen variant of an image");
    SampleRng unused = SampleRng::for_sample(0, 0, 0);  // a deterministic step draws nothing
    return apply(image, unused);
}

Tensor TransformPipeline::make_variant(const Tensor& image, std::int64_t variant) const {
    const std::int64_t count = variants();
    require(count > 0 && variant >= 0 && variant < count, "transforms '", describe(),
            "': no variant ", variant, " (they make ", count, ")");
    // the digits of `variant`, the last step's the least significant (see apply_variant)
    std::vector<std::int64_t> digits(steps_.size());
    for (std::size_t k = steps_.size(); k-- > 0;) {
        digits[k] = variant % steps_[k]->variants();
        variant /= steps_[k]->variants();
    }
    Tensor out = image;
    for (std::size_t k = 0; k < steps_.size(); ++k) out = steps_[k]->make_variant(out, digits[k]);
    return out;
}

std::int64_t TransformPipeline::variants() const {
    std::int64_t count = 1;
    for (const auto& step : steps_) {
        const std::int64_t v = step->variants();
        if (v == 0) return 0;
        // more than 2^40 variants is as good as "too many to list" (and cannot overflow)
        if (count > (std::int64_t{1} << 40) / v) return 0;
        count *= v;
    }
    return count;
}

Tensor TransformPipeline::apply_variant(const Tensor& image, SampleRng& rng,
                                        std::int64_t& variant) const {
    require(variants() > 0, "transforms '", describe(),
            "' make too many different images to number them (a random crop?)");
    Tensor out = image;
    variant = 0;
    for (const auto& step : steps_) {
        std::int64_t digit = 0;
        out = step->apply_variant(out, rng, digit);
        variant = variant * step->variants() + digit;
    }
    return out;
}

std::string TransformPipeline::describe() const {
    std::vector<std::string> words;
    for (const auto& step : steps_) words.push_back(step->describe());
    return join_words(words, "; ");
}

}  // namespace retort
