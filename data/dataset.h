// data/dataset.h: what a dataset is to the rest of retort.
//
// A Dataset is an indexable collection of (image, label) samples. get(i) must be thread-safe:
// the loader's worker threads call it concurrently. Images come out as float32 (C, H, W) with
// values in [0, 1]; formats that hold bytes (IDX, CIFAR, PNG) keep bytes in memory and convert
// per sample. Images of an image folder may differ in size; the transforms make batches uniform.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace retort {

struct Sample {
    Tensor image;         // float32 (C, H, W) in [0, 1]
    std::int64_t label;   // in [0, num_classes)
};

class Dataset {
public:
    virtual ~Dataset() = default;
    virtual std::int64_t size() const = 0;
    virtual Sample get(std::int64_t index) const = 0;  // thread-safe; index in [0, size())
    virtual std::int64_t num_classes() const = 0;
    // (C, H, W) of every sample, or (C, 0, 0) when sizes vary (image folders).
    virtual Shape image_shape() const = 0;
    // One line for logs: format, where it came from, how many samples.
    virtual std::string describe() const = 0;
    // The dataset this one is a view of (itself unless it is a Subset), and where sample `index`
    // is there. Caches keyed by the underlying sample stay valid across different splits.
    virtual const Dataset& root() const { return *this; }
    virtual std::int64_t root_index(std::int64_t index) const { return index; }
};

// Helpers the readers share.
// Throws an Error naming the dataset unless 0 <= index < size.
void check_sample_index(std::int64_t index, std::int64_t size, const std::string& dataset);
// A float32 image of the given (C, H, W) shape from channel-planar bytes (C planes of H*W bytes,
// as IDX and CIFAR store them), each byte divided by 255.
Tensor image_from_planar_bytes(const unsigned char* bytes, const Shape& chw);

// A view of some samples of another dataset (used for the validation split).
class Subset : public Dataset {
public:
    Subset(std::shared_ptr<const Dataset> parent, std::vector<std::int64_t> indices, std::string name);
    std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
    Sample get(std::int64_t index) const override;
    std::int64_t num_classes() const override { return parent_->num_classes(); }
    Shape image_shape() const override { return parent_->image_shape(); }
    std::string describe() const override;
    const Dataset& root() const override { return parent_->root(); }
    std::int64_t root_index(std::int64_t index) const override;

private:
    std::shared_ptr<const Dataset> parent_;
    std::vector<std::int64_t> indices_;
    std::string name_;
};

// The three splits a run uses. `val` is held out from the training files (seeded), so the best
// epoch is chosen without looking at `test`, which is only reported.
struct DatasetSplits {
    std::shared_ptr<const Dataset> train, val, test;
};

struct DataOptions {
    std::string path;              // a directory (see load_dataset)
    std::string format = "auto";   // auto | idx | cifar10 | cifar100 | folder | synthetic
    std::int64_t val_size = -1;    // -1: the format's default (5,000 for MNIST-like and CIFAR)
    std::uint64_t seed = 0;        // for the validation split and the synthetic data
};

// Splits the training files' samples into (train, val): val holds `val_size` samples chosen by a
// seeded Philox permutation, train the rest; both list their samples in the parent's order.
// 0 <= val_size < full->size(); with val_size 0, train is `full` itself and val is empty.
std::pair<std::shared_ptr<const Dataset>, std::shared_ptr<const Dataset>> split_off_validation(
    std::shared_ptr<const Dataset> full, std::int64_t val_size, std::uint64_t seed);

// Opens the dataset in `options.path`, detecting its format unless one is given, and splits off
// the validation set. Every problem (missing or corrupt file, label out of range, empty class
// folder, val_size too large) is an Error naming the file.
DatasetSplits load_dataset(const DataOptions& options);

}  // namespace retort
