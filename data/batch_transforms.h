// data/batch_transforms.h: transforms that mix the samples of a batch (mixup, cutmix).
//
// Both pair sample i with sample B-1-i (the batch reversed, as timm's Mixup does in its default
// "batch" mode), draw one lambda ~ Beta(alpha, alpha) per batch from the batch's Philox stream
// (seed, epoch, batch index), and write Batch::targets (B, K): lam * onehot(y_i) +
// (1 - lam) * onehot(y_{B-1-i}). Batch::labels keep the original labels. Spec:
//   mixup:alpha=1     images lam * x_i + (1 - lam) * x_{B-1-i}   (Zhang et al., 2018)
//   cutmix:alpha=1    a box of area about (1 - lam) * H * W is pasted from x_{B-1-i}; lam is
//                     then corrected to the box's true area (Yun et al., 2019; timm's rand_bbox
//                     with correct_lam=True)
//   "mixup:alpha=0.8; cutmix:alpha=1"   each batch uses one of the items, chosen uniformly
//                     (timm's switch_prob = 0.5 when there are two)
// alpha defaults to 1, timm's default. Label smoothing is the loss's business, not done here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/loader.h"
#include "data/sample_rng.h"

namespace retort {

class BatchTransform {
public:
    virtual ~BatchTransform() = default;
    virtual void apply(Batch& batch, std::int64_t num_classes, SampleRng& rng) const = 0;
    virtual std::string describe() const = 0;
};

// nullptr for "" (no batch transform).
std::unique_ptr<const BatchTransform> make_batch_transform(const std::string& spec);

// ---- building blocks (public for tests) ----

// Mixes images and sets targets with the given lambda.
void mixup_batch(Batch& batch, double lam, std::int64_t num_classes);

// Rows [top, bottom) and columns [left, right) of the pasted box.
struct CutBox {
    std::int64_t top = 0, bottom = 0, left = 0, right = 0;
};
// timm's rand_bbox: a box of sides int(H * sqrt(1 - lam)) x int(W * sqrt(1 - lam)) centered at a
// uniform random pixel, clipped to the image.
CutBox cutmix_box(std::int64_t height, std::int64_t width, double lam, SampleRng& rng);
// Pastes the box and sets targets; returns the lambda corrected to the box area.
double cutmix_batch(Batch& batch, const CutBox& box, std::int64_t num_classes);

}  // namespace retort
