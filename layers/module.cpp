// layers/module.cpp: the bookkeeping of Module: registration, traversal, state dicts.
#include "layers/module.h"

#include <cstring>
#include <set>

#include "engine/autograd.h"
#include "engine/cuda/runtime.h"
#include "engine/error.h"

namespace retort {

void Module::check_new_name(const std::string& name) const {
    require(!name.empty() && name.find('.') == std::string::npos, type_name_,
            ": invalid member name '", name, "' (non-empty, no dots)");
    auto taken = [&](const auto& list) {
        for (const auto& [n, _] : list)
            if (n == name) return true;
        return false;
    };
    internal_check(!taken(params_) && !taken(buffers_) && !taken(children_),
                   "a module registered the same member name twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
    check_new_name(name);
    if (!value.requires_grad()) value.set_requires_grad(true);
    params_.emplace_back(name, value);
    return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
    check_new_name(name);
    buffers_.emplace_back(name, value);
    return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
    check_new_name(name);
    internal_check(child != nullptr, "register_module with a null module");
    children_.emplace_back(name, std::move(child));
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
    for (const auto& [name, t] : parameters ? params_ : buffers_)
        if (t.defined()) out.emplace_back(prefix + name, t);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, out);
}

NamedTensors Module::named_parameters() const {
    NamedTensors out;
    collect("", true, out);
    return out;
}

NamedTensors Module::named_buffers() const {
    NamedTensors out;
    collect("", false, out);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [_, t] : named_parameters()) out.push_back(t);
    return out;
}

std::int64_t Module::num_parameters() const {
    std::int64_t n = 0;
    for (auto& [_, t] : named_parameters()) n += t.numel();
    return n;
}

void Module::to(Device device) {
    NamedTensors all = named_parameters();
    for (auto& named : named_buffers()) all.push_back(named);
    for (auto& [name, t] : all) {
        if (t.device() == device) continue;
        Tensor moved = t.detach().to(device);
        t.set_data(moved);  // every handle to the parameter (the layer's own member too) follows
    }
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [_, child] : children_) child->train(on);
}

NamedTensors Module::state_dict() const {
    NamedTensors out = named_parameters();
    for (auto& entry : named_buffers()) out.push_back(entry);
    return out;
}

namespace {
bool is_ignored_extra(const std::string& name) {
    const std::string suffix = "num_batches_tracked";
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
    NamedTensors own = state_dict();
    // 1. check everything first, so a bad file changes nothing
    std::set<std::string> known;
    std::vector<std::string> missing;
    for (const auto& [name, t] : own) {
        known.insert(name);
        auto it = state.find(name);
        if (it == state.end()) {
            missing.push_back(name);
            continue;
        }
        require(it->second.shape() == t.shape(), "load_state_dict: '", name, "' has shape ",
                shape_str(it->second.shape()), " in the file but ", shape_str(t.shape()),
                " in the model (", type_name_, ")");
        require(is_floating(it->second.dtype()) == is_floating(t.dtype()), "load_state_dict: '",
                name, "' is ", dtype_name(it->second.dtype()), " in the file but ",
                dtype_name(t.dtype()), " in the model");
    }
    if (strict) {
        if (!missing.empty()) {
            std::string list;
            for (std::size_t i = 0; i < missing.size() && i < 10; ++i) list += " '" + missing[i] + "'";
            if (missing.size() > 10) list += cat(" and ", missing.size() - 10, " more");
            fail("load_state_dict: missing ", missing.size(), " tensor(s):", list);
        }
        for (const auto& [name, _] : state)
            require(known.count(name) || is_ignored_extra(name), "load_state_dict: unexpected tensor '",
                    name, "' (no such parameter or buffer in ", type_name_, ")");
    }
    // 2. copy values into the existing storage
    NoGradGuard no_grad;
    for (auto& [name, t] : own) {
        auto it = state.find(name);
        if (it == state.end()) continue;
        // converted on the source's device, then copied to wherever the module lives
        Tensor src = it->second.to(t.dtype());
        Tensor dst = t;
        if (src.raw_device_data() == dst.raw_device_data()) continue;  // the module's own state
        cuda::copy_bytes(dst.raw_device_data(), dst.device(), src.raw_device_data(), src.device(),
                         static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
    }
}

}  // namespace retort
