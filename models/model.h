// models/model.h: what every model is: a Module that maps images to logits and can hand back
// named intermediate tensors ("taps") for distillation.
//
// Taps are requested by name before the forward pass; the model stores each requested tensor as
// it computes it. Objectives therefore never need model-specific code: they ask for "layer3" or
// "tokens.5" and read the result. A tap that costs extra work (dense_logits, dense_dist_logits)
// is computed only when asked for (Taps::wants).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "layers/module.h"

namespace retort {

class Taps {
public:
    Taps() = default;
    explicit Taps(std::vector<std::string> names) : requested_(std::move(names)) {}

    bool wants(const std::string& name) const;
    // Stores t under name if it was requested (otherwise does nothing).
    void put(const std::string& name, const Tensor& t);
    // The captured tensor; an Error if it was not requested or not produced.
    Tensor at(const std::string& name) const;
    const std::vector<std::string>& requested() const { return requested_; }
    const std::map<std::string, Tensor>& values() const { return values_; }
    void clear() { values_.clear(); }

private:
    std::vector<std::string> requested_;
    std::map<std::string, Tensor> values_;
};

// The facts about a model that tools need without running it.
struct ModelInfo {
    std::string name;           // registry name, e.g. "resnet18"
    std::int64_t num_classes = 0;
    std::int64_t in_chans = 3;
    std::int64_t img_size = 224;  // the size it was built for (ViTs need exactly this size)
};

class Model : public Module {
public:
    Model(std::string type_name, ModelInfo info) : Module(std::move(type_name)), info_(std::move(info)) {}

    // x (B, in_chans, H, W) float32 -> logits (B, num_classes). Fills `taps` if given.
    virtual Tensor forward(const Tensor& x, Taps* taps = nullptr) = 0;
    Tensor operator()(const Tensor& x, Taps* taps = nullptr) { return forward(x, taps); }

    // Every tap name this model can produce (indexed taps such as tokens.L listed for each L).
    virtual std::vector<std::string> tap_names() const = 0;
    // Throws an Error naming the bad tap and listing the valid ones.
    void check_taps(const std::vector<std::string>& names) const;
    // Checks an input batch: float, rank 4, in_chans channels, non-empty.
    void check_input(const Tensor& x) const;

    const ModelInfo& info() const { return info_; }

private:
    ModelInfo info_;
};

}  // namespace retort
