// data/synthetic.h: a generated dataset for tests, demos and smoke runs: no files, any size.
//
// Each class has a prototype: a coarse 4x4 grid of random intensities per channel, stretched over
// the image. A sample is its class's prototype plus Gaussian noise:
//     x[c, y, x] = clamp(0.2 + 0.6 * prototype[label, c, 4y/H, 4x/W] + 0.15 * noise, 0, 1)
// Classes differ across most pixels while the noise is small, so even a linear model separates
// them within a few steps; the loss falls at once, which is what an end-to-end test needs.
//
// Everything is a function of the seed: prototypes, labels and noise come from Philox streams
// keyed by (seed, purpose), and sample i of a split is computed from (seed, split, i) alone, in
// get(). Nothing is stored, get() is thread-safe, and the same seed gives the same bits anywhere.
//
// Spec: "synthetic" or "synthetic:key=value,...", keys (defaults): num_classes (10), size (5000
// training samples), test_size (1000), channels (3), height (32), width (32).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace retort {

struct SyntheticOptions {
    std::int64_t num_classes = 10;
    std::int64_t size = 5000;       // samples in the training split (before the validation split)
    std::int64_t test_size = 1000;  // samples in the test split
    std::int64_t channels = 3;
    std::int64_t height = 32;
    std::int64_t width = 32;
};

// Whether `text` is a synthetic spec: "synthetic" or "synthetic:...".
bool is_synthetic_spec(const std::string& text);
// Parses a synthetic spec; unknown keys, bad values and duplicates are Errors listing the keys.
SyntheticOptions parse_synthetic_spec(const std::string& spec);

class SyntheticDataset : public Dataset {
public:
    // `split` is "train" or "test": the two draw different samples from the same classes.
    SyntheticDataset(const SyntheticOptions& options, std::uint64_t seed, const std::string& split);

    std::int64_t size() const override { return size_; }
    Sample get(std::int64_t index) const override;
    std::int64_t num_classes() const override { return options_.num_classes; }
    Shape image_shape() const override {
        return {options_.channels, options_.height, options_.width};
    }
    std::string describe() const override { return description_; }

private:
    std::vector<float> prototype(std::int64_t label) const;  // (C, 4, 4) cell intensities

    SyntheticOptions options_;
    std::int64_t size_;
    std::uint64_t prototype_key_, label_key_, noise_key_;
    std::string description_;
};

}  // namespace retort
