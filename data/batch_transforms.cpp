// data/batch_transforms.cpp: mixup and cutmix on an assembled batch.
//
// Shapes: images (B, C, H, W) float32, labels (B) int64 -> images of the same shape and targets
// (B, K) float32, K classes. Matches timm.data.Mixup in mode "batch" (one lambda per batch, the
// partner of sample i is sample B-1-i), with the lambda and the box drawn from the batch's Philox
// stream rather than numpy's global generator. Samples i and B-1-i are updated together, so the
// batch is mixed in place without a copy of it: both read the other's original pixels.
#include "data/batch_transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/transform_spec.h"
#include "engine/error.h"

namespace retort {

namespace {

void check_batch(const Batch& batch, std::int64_t num_classes, const char* op) {
    require(batch.images.defined() && batch.images.dim() == 4 && batch.images.dtype() == DType::f32,
            op, ": expected float32 images of shape (B, C, H, W)");
    require(batch.labels.defined() && batch.labels.dtype() == DType::i64 &&
                batch.labels.shape() == Shape{batch.images.size(0)},
            op, ": expected int64 labels of shape (B) for images ", shape_str(batch.images.shape()));
    require(num_classes >= 1, op, ": the dataset must have at least one class");
    for (std::int64_t y : batch.labels.to_vector<std::int64_t>())
        require(y >= 0 && y < num_classes, op, ": label ", y, " is outside [0, ", num_classes, ")");
}

// targets[i] = lam * onehot(y_i) + (1 - lam) * onehot(y_{B-1-i})
Tensor mixed_targets(const Tensor& labels, double lam, std::int64_t num_classes) {
    const std::int64_t B = labels.size(0);
    const std::int64_t* y = labels.data<std::int64_t>();
    std::vector<double> t(static_cast<std::size_t>(B * num_classes), 0.0);
    for (std::int64_t i = 0; i < B; ++i) {
        t[i * num_classes + y[i]] += lam;
        t[i * num_classes + y[B - 1 - i]] += 1.0 - lam;
    }
    return from_vector(std::vector<float>(t.begin(), t.end()), {B, num_classes});
}

class Mixup : public BatchTransform {
public:
    explicit Mixup(const SpecKeys& keys) : alpha_(keys.number("alpha", 1.0, 1e-6, 1e6)) {}
    void apply(Batch& batch, std::int64_t num_classes, SampleRng& rng) const override {
        mixup_batch(batch, rng.beta(alpha_, alpha_), num_classes);
    }
    std::string describe() const override { return cat("mixup:alpha=", alpha_); }

private:
    double alpha_;
};

class Cutmix : public BatchTransform {
public:
    explicit Cutmix(const SpecKeys& keys) : alpha_(keys.number("alpha", 1.0, 1e-6, 1e6)) {}
    void apply(Batch& batch, std::int64_t num_classes, SampleRng& rng) const override {
        const double lam = rng.beta(alpha_, alpha_);
        const CutBox box = cutmix_box(batch.images.size(2), batch.images.size(3), lam, rng);
        cutmix_batch(batch, box, num_classes);
    }
    std::string describe() const override { return cat("cutmix:alpha=", alpha_); }

private:
    double alpha_;
};

// Several batch transforms: each batch uses one, chosen uniformly.
class OneOf : public BatchTransform {
public:
    explicit OneOf(std::vector<std::unique_ptr<const BatchTransform>> choices)
        : choices_(std::move(choices)) {}
    void apply(Batch& batch, std::int64_t num_classes, SampleRng& rng) const override {
        const auto pick = rng.integer(0, static_cast<std::int64_t>(choices_.size()));
        choices_[static_cast<std::size_t>(pick)]->apply(batch, num_classes, rng);
    }
    std::string describe() const override {
        std::vector<std::string> words;
        for (const auto& c : choices_) words.push_back(c->describe());
        return join_words(words, "; ");
    }

private:
    std::vector<std::unique_ptr<const BatchTransform>> choices_;
};

}  // namespace

void mixup_batch(Batch& batch, double lam, std::int64_t num_classes) {
    check_batch(batch, num_classes, "mixup");
    const std::int64_t B = batch.images.size(0), n = batch.images.numel() / std::max<std::int64_t>(B, 1);
    const float keep = static_cast<float>(lam), take = static_cast<float>(1.0 - lam);
    float* x = batch.images.data<float>();
    for (std::int64_t i = 0; 2 * i < B; ++i) {
        float* a = x + i * n;
        float* b = x + (B - 1 - i) * n;
        for (std::int64_t k = 0; k < n; ++k) {
            const float ak = a[k], bk = b[k];
            a[k] = ak * keep + bk * take;
            b[k] = bk * keep + ak * take;  // for the middle sample of an odd batch, a == b: same value
        }
    }
    batch.targets = mixed_targets(batch.labels, lam, num_classes);
}

CutBox cutmix_box(std::int64_t height, std::int64_t width, double lam, SampleRng& rng) {
    const double ratio = std::sqrt(std::max(0.0, 1.0 - lam));
    const auto cut_h = static_cast<std::int64_t>(static_cast<double>(height) * ratio);
    const auto cut_w = static_cast<std::int64_t>(static_cast<double>(width) * ratio);
    const std::int64_t cy = rng.integer(0, height), cx = rng.integer(0, width);
    CutBox box;
    box.top = std::clamp<std::int64_t>(cy - cut_h / 2, 0, height);
    box.bottom = std::clamp<std::int64_t>(cy + cut_h / 2, 0, height);
    box.left = std::clamp<std::int64_t>(cx - cut_w / 2, 0, width);
    box.right = std::clamp<std::int64_t>(cx + cut_w / 2, 0, width);
    return box;
}

double cutmix_batch(Batch& batch, const CutBox& box, std::int64_t num_classes) {
    check_batch(batch, num_classes, "cutmix");
    const std::int64_t B = batch.images.size(0), C = batch.images.size(1);
    const std::int64_t H = batch.images.size(2), W = batch.images.size(3);
    require(0 <= box.top && box.top <= box.bottom && box.bottom <= H && 0 <= box.left &&
                box.left <= box.right && box.right <= W,
            "cutmix: box rows [", box.top, ", ", box.bottom, ") columns [", box.left, ", ",
            box.right, ") does not fit images ", shape_str(batch.images.shape()));
    float* x = batch.images.data<float>();
    // the box of sample i comes from sample B-1-i: swapping the boxes of each pair does both
    for (std::int64_t i = 0; i < B / 2; ++i)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t r = box.top; r < box.bottom; ++r) {
                float* a = x + ((i * C + c) * H + r) * W;
                float* b = x + (((B - 1 - i) * C + c) * H + r) * W;
                std::swap_ranges(a + box.left, a + box.right, b + box.left);
            }
    const double area = static_cast<double>((box.bottom - box.top) * (box.right - box.left));
    const double lam = 1.0 - area / static_cast<double>(H * W);
    batch.targets = mixed_targets(batch.labels, lam, num_classes);
    return lam;
}

std::unique_ptr<const BatchTransform> make_batch_transform(const std::string& spec) {
    std::vector<std::unique_ptr<const BatchTransform>> choices;
    for (const SpecItem& item : parse_spec_list(spec, "batch transform")) {
        if (item.name == "mixup")
            choices.push_back(std::make_unique<const Mixup>(SpecKeys(item, {"alpha"})));
        else if (item.name == "cutmix")
            choices.push_back(std::make_unique<const Cutmix>(SpecKeys(item, {"alpha"})));
        else
            fail("unknown batch transform '", item.name, "' in '", spec,
                 "'; valid batch transforms: mixup, cutmix");
    }
    if (choices.empty()) return nullptr;
    if (choices.size() == 1) return std::move(choices[0]);
    return std::make_unique<const OneOf>(std::move(choices));
}

}  // namespace retort
