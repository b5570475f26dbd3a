// models/model.cpp: taps and the checks every model shares.
#include "models/model.h"

#include <algorithm>

#include "engine/error.h"

namespace retort {

bool Taps::wants(const std::string& name) const {
    return std::find(requested_.begin(), requested_.end(), name) != requested_.end();
}

void Taps::put(const std::string& name, const Tensor& t) {
    if (wants(name)) values_[name] = t;
}

Tensor Taps::at(const std::string& name) const {
    auto it = values_.find(name);
    require(it != values_.end(), "tap '", name, "' was not ",
            wants(name) ? "produced by the forward pass" : "requested");
    return it->second;
}

void Model::check_taps(const std::vector<std::string>& names) const {
    const std::vector<std::string> valid = tap_names();
    for (const std::string& n : names) {
        if (std::find(valid.begin(), valid.end(), n) != valid.end()) continue;
        std::string list;
        for (const std::string& v : valid) list += (list.empty() ? "" : ", ") + v;
        fail("unknown tap '", n, "' for model ", info_.name, "; valid taps: ", list);
    }
}

void Model::check_input(const Tensor& x) const {
    require(x.dtype() == DType::f32, info_.name, ": input must be float32, got ",
            dtype_name(x.dtype()));
    require(x.dim() == 4, info_.name, ": input must be (B, C, H, W), got ", shape_str(x.shape()));
    require(x.size(0) > 0, info_.name, ": input batch is empty");
    require(x.size(1) == info_.in_chans, info_.name, ": input has ", x.size(1),
            " channels, the model expects ", info_.in_chans);
}

}  // namespace retort
