// data/dataset.cpp: Subset (a view of chosen samples of another dataset, used for the validation
// split) and the small helpers every reader shares.
// Shapes: images (C, H, W) float32 in [0, 1]; C channels, H height, W width.
#include "data/dataset.h"

namespace retort {

void check_sample_index(std::int64_t index, std::int64_t size, const std::string& dataset) {
    require(index >= 0 && index < size, dataset, ": sample index ", index, " is out of range [0, ",
            size, ")");
}

Tensor image_from_planar_bytes(const unsigned char* bytes, const Shape& chw) {
    Tensor image = Tensor::empty(chw, DType::f32);
    float* out = image.data<float>();
    const std::int64_t n = image.numel();
    // Multiplying by 1/255 would round differently from torchvision's division for some bytes.
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(bytes[i]) / 255.0f;
    return image;
}

Subset::Subset(std::shared_ptr<const Dataset> parent, std::vector<std::int64_t> indices,
               std::string name)
    : parent_(std::move(parent)), indices_(std::move(indices)), name_(std::move(name)) {
    internal_check(parent_ != nullptr, "Subset of a null dataset");
    const std::int64_t n = parent_->size();
    for (std::int64_t i : indices_)
        require(i >= 0 && i < n, "subset '", name_, "': index ", i, " is out of range [0, ", n,
                ") of ", parent_->describe());
}

Sample Subset::get(std::int64_t index) const {
    check_sample_index(index, size(), "subset '" + name_ + "'");
    return parent_->get(indices_[static_cast<std::size_t>(index)]);
}

std::int64_t Subset::root_index(std::int64_t index) const {
    check_sample_index(index, size(), "subset '" + name_ + "'");
    return parent_->root_index(indices_[static_cast<std::size_t>(index)]);
}

std::string Subset::describe() const {
    return cat(name_, ": ", size(), " of ", parent_->describe());
}

}  // namespace retort
