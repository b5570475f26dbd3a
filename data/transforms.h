// data/transforms.h: per-sample image transforms, built from a spec string.
//
// An image is a float32 (C, H, W) tensor. A TransformPipeline applies its steps in order; random
// steps draw from the sample's own stream (data/sample_rng.h), so an augmentation depends only on
// (seed, epoch, sample index). Spec syntax: data/transform_spec.h. The transforms, their keys and
// the torchvision transform each one matches:
//
//   normalize          mean=M, std=S       (x - mean) / std per channel; M and S are one number
//                                          or one per channel, "0.49/0.48/0.45". Default 0.5 and
//                                          0.5, which maps [0, 1] to [-1, 1]. T.Normalize.
//   random_crop        size, padding=0     zero-pad by `padding` on each side, then crop `size`
//                                          (default: the input size) at a uniform random offset.
//                                          T.RandomCrop(size, padding).
//   flip               p=0.5               mirror left-right with probability p.
//                                          T.RandomHorizontalFlip(p).
//   resize             size                bilinear, no antialiasing: torch.nn.functional.
//                                          interpolate(mode="bilinear", align_corners=False), which
//                                          is T.Resize on tensors with antialias off (the default
//                                          of torchvision <= 0.16). size "HxW", or "N" to scale
//                                          the shorter side to N keeping the aspect ratio (the
//                                          longer side is truncated, as torchvision does).
//   random_resized_crop size, scale=0.08/1, ratio=0.75/1.3333333333333333
//                                          torchvision's algorithm: up to 10 tries of an area
//                                          fraction in `scale` and a log-uniform aspect ratio in
//                                          `ratio`; if none fits, a center crop clamped to
//                                          `ratio`. Then a bilinear resize to size (default: the
//                                          input size). T.RandomResizedCrop(antialias=False).
//   center_crop        size                the central crop; zero-padded first where the image
//                                          is smaller, offsets rounded half to even as Python's
//                                          round(). T.CenterCrop.
//   repeat_channels    to=3                a 1-channel image repeated to `to` channels (grayscale
//                                          data for a 3-channel model); `to` channels pass.
//
// A size written as one number N means N x N everywhere except resize (shorter side).
// The building blocks below are public so evaluation code and tests can use them directly.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/sample_rng.h"
#include "engine/tensor.h"

namespace retort {

class Transform {
public:
    virtual ~Transform() = default;
    // A new image; the input is never modified (it may be the dataset's own memory).
    virtual Tensor apply(const Tensor& image, SampleRng& rng) const = 0;
    virtual std::string describe() const = 0;  // the canonical spec, e.g. "flip:p=0.5"

    // How many different images this step can make of one input: 1 for a deterministic step, 2
    // for a flip, 0 for "too many to list" (a random crop's offsets, a random resized crop). A
    // teacher-output cache (distill/teacher_cache.h) can hold one entry per variant only when
    // every step has a small count. The default, 0, keeps a new random step out of caches until
    // it says otherwise.
    virtual std::int64_t variants() const { return 0; }
    // apply(), also saying which of the variants() images it made (0 <= variant < variants()).
    // Must draw exactly what apply() draws, so both give the same image.
    virtual Tensor apply_variant(const Tensor& image, SampleRng& rng, std::int64_t& variant) const {
        variant = 0;
        return apply(image, rng);
    }
    // The image of a given variant, drawing nothing (for a step with variants() >= 1; the
    // default serves the deterministic ones).
    virtual Tensor make_variant(const Tensor& image, std::int64_t variant) const;
};

class TransformPipeline {
public:
    TransformPipeline() = default;
    explicit TransformPipeline(const std::string& spec);  // "" is the empty pipeline
    Tensor apply(const Tensor& image, SampleRng& rng) const;
    // The product of the steps' variants() (1 for the empty pipeline; 0 if any step has 0), and
    // apply() that also returns which of them it made: the steps' variants in mixed radix, the
    // first step's as the most significant digit. Only for a pipeline with variants() > 0.
    std::int64_t variants() const;
    Tensor apply_variant(const Tensor& image, SampleRng& rng, std::int64_t& variant) const;
    // The image apply_variant makes when it says `variant`, without drawing anything.
    Tensor make_variant(const Tensor& image, std::int64_t variant) const;
    bool empty() const { return steps_.empty(); }
    std::size_t size() const { return steps_.size(); }
    std::string describe() const;  // "random_crop:size=input,padding=4; flip:p=0.5"

private:
    std::vector<std::shared_ptr<const Transform>> steps_;
};

// The names parse accepts, in the order of the table above.
const std::vector<std::string>& transform_names();

// ---- building blocks on (C, H, W) float32 images ----

// Rows [top, top + height) and columns [left, left + width); positions outside the image are 0,
// so a negative top or a crop larger than the image pads with zeros.
Tensor crop_image(const Tensor& image, std::int64_t top, std::int64_t left, std::int64_t height,
                  std::int64_t width);
// Bilinear resize to (height, width), align_corners=False, no antialiasing.
Tensor resize_image(const Tensor& image, std::int64_t height, std::int64_t width);
Tensor flip_image(const Tensor& image);  // left-right
// mean and std hold 1 value or one per channel.
Tensor normalize_image(const Tensor& image, const std::vector<double>& mean,
                       const std::vector<double>& std);
Tensor repeat_channels(const Tensor& image, std::int64_t channels);

// A crop window.
struct CropBox {
    std::int64_t top = 0, left = 0, height = 0, width = 0;
};
// T.CenterCrop's window for an image of height x width (may reach outside: see crop_image).
CropBox center_crop_box(std::int64_t image_height, std::int64_t image_width, std::int64_t height,
                        std::int64_t width);
// T.RandomResizedCrop.get_params; scale and ratio are (low, high).
CropBox random_resized_crop_box(std::int64_t image_height, std::int64_t image_width,
                                std::array<double, 2> scale, std::array<double, 2> ratio,
                                SampleRng& rng);

}  // namespace retort
