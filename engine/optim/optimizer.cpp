// engine/optim/optimizer.cpp: the parts every optimizer shares (see optimizer.h): building the
// groups, the step loop, and saving / restoring the state as named tensors.
// Matches torch.optim.Optimizer: param groups, skipping parameters without a gradient,
// per-parameter state indexed across the groups. zero_grad() is PyTorch's set_to_none=True.
#include "engine/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/autograd.h"

namespace retort {

std::vector<ParamGroupSpec> weight_decay_groups(const std::vector<Tensor>& params) {
    ParamGroupSpec decayed, not_decayed;
    not_decayed.weight_decay = 0.0;
    for (const Tensor& p : params) (p.dim() >= 2 ? decayed : not_decayed).params.push_back(p);
    return {decayed, not_decayed};
}

std::vector<ParamGroupSpec> weight_decay_groups(
    const std::vector<std::pair<std::string, Tensor>>& named_params) {
    auto ends_with = [](const std::string& name, const std::string& suffix) {
        return name.size() >= suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    ParamGroupSpec decayed, not_decayed;
    not_decayed.weight_decay = 0.0;
    for (const auto& [name, p] : named_params) {
        const bool token_or_position = ends_with(name, "pos_embed") ||
                                       ends_with(name, "cls_token") || ends_with(name, "dist_token");
        (p.dim() >= 2 && !token_or_position ? decayed : not_decayed).params.push_back(p);
    }
    return {decayed, not_decayed};
}

void Optimizer::require_non_negative(double value, const char* what) const {
    require(value >= 0, name_, ": ", what, " must be >= 0, got ", value);
}

Optimizer::Optimizer(std::string name, std::vector<ParamGroupSpec> groups, double default_lr,
                     double default_weight_decay)
    : name_(std::move(name)) {
    require_non_negative(default_lr, "lr");
    require_non_negative(default_weight_decay, "weight_decay");
    std::set<const TensorImpl*> seen;
    for (std::size_t g = 0; g < groups.size(); ++g) {
        ParamGroupSpec& spec = groups[g];
        ParamGroup group;
        group.lr = spec.lr.value_or(default_lr);
        group.weight_decay = spec.weight_decay.value_or(default_weight_decay);
        group.initial_lr = group.lr;
        std::string where = cat("group ", g, ": ");
        require(group.lr >= 0, name_, ": ", where, "lr must be >= 0, got ", group.lr);
        require(group.weight_decay >= 0, name_, ": ", where, "weight_decay must be >= 0, got ",
                group.weight_decay);
        for (const Tensor& p : spec.params) {
            const std::size_t index = state_.size();
            require(p.defined(), name_, ": parameter ", index, " is an undefined tensor");
            require(p.is_floating_point(), name_, ": parameter ", index,
                    " is not floating point (", dtype_name(p.dtype()), ")");
            if (!p.is_leaf())
                fail(name_, ": parameter ", index, " is not a leaf (it was computed by ",
                     p.grad_fn()->name, "); optimize the tensor it came from");
            require(seen.insert(p.impl_ptr().get()).second, name_, ": parameter ", index,
                    " appears more than once in the parameter groups");
            group.params.push_back(p);
            state_.emplace_back();
        }
        groups_.push_back(std::move(group));
    }
    require(!state_.empty(), name_, ": got an empty parameter list");
}

void Optimizer::step() {
    NoGradGuard no_grad;
    std::size_t index = 0;
    for (ParamGroup& group : groups_) {
        for (Tensor& p : group.params) {
            ParamState& state = state_[index++];
            Tensor grad = p.grad();
            if (!grad.defined()) continue;
            if (grad.shape() != p.shape() || grad.dtype() != p.dtype())
                fail(name_, ": the gradient of parameter ", index - 1, " is ",
                     shape_str(grad.shape()), " ", dtype_name(grad.dtype()), ", the parameter ",
                     shape_str(p.shape()), " ", dtype_name(p.dtype()));
            ++state.step;
            update(group, p, grad, state);
        }
    }
    ++step_count_;
}

void Optimizer::zero_grad() {
    for (ParamGroup& group : groups_)
        for (Tensor& p : group.params) p.zero_grad();
}

double Optimizer::lr() const { return groups_.front().lr; }

void Optimizer::set_lr(double lr) {
    require_non_negative(lr, "lr");
    for (ParamGroup& group : groups_) group.lr = lr;
}

const ParamState& Optimizer::state(std::int64_t i) const {
    require(i >= 0 && i < num_params(), name_, ": no parameter ", i, " (there are ", num_params(),
            ")");
    return state_[static_cast<std::size_t>(i)];
}

// ---- state as named tensors ----

std::map<std::string, Tensor> Optimizer::state_dict() const {
    std::map<std::string, Tensor> out;
    out["step_count"] = scalar_tensor(static_cast<double>(step_count_), DType::i64);
    for (std::size_t g = 0; g < groups_.size(); ++g)
        out[cat("group.", g, ".lr")] = scalar_tensor(groups_[g].lr, DType::f64);
    for (std::size_t i = 0; i < state_.size(); ++i) {
        const ParamState& s = state_[i];
        if (s.step == 0) continue;  // never updated: nothing to save
        out[cat("state.", i, ".step")] = scalar_tensor(static_cast<double>(s.step), DType::i64);
        for (const auto& [name, buffer] : s.buffers)
            out[cat("state.", i, ".", name)] = buffer.clone();
    }
    return out;
}

namespace {

// A saved count: a one-element tensor holding a whole number >= 0.
std::int64_t read_count(const Tensor& t, const std::string& where, const std::string& key) {
    require(t.defined() && t.numel() == 1, where, ": '", key, "' should hold one number");
    double v = t.item();
    require(v >= 0 && v == std::floor(v), where, ": '", key,
            "' should be a whole number >= 0, got ", v);
    return static_cast<std::int64_t>(v);
}

// Splits "<prefix><i>.<name>" (e.g. "state.3.exp_avg") into i and name; false when the key does
// not have that form.
bool parse_indexed_key(const std::string& key, const std::string& prefix, std::size_t& index,
                       std::string& name) {
    if (key.rfind(prefix, 0) != 0) return false;
    std::size_t dot = key.find('.', prefix.size());
    if (dot == std::string::npos || dot == prefix.size() || dot + 1 == key.size()) return false;
    std::string digits = key.substr(prefix.size(), dot - prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9)
        return false;
    index = static_cast<std::size_t>(std::stoul(digits));
    name = key.substr(dot + 1);
    return true;
}

}  // namespace

void Optimizer::load_state(const std::map<std::string, Tensor>& saved) {
    const std::string where = name_ + ": load_state";
    auto get = [&](const std::string& key) -> const Tensor& {
        auto it = saved.find(key);
        require(it != saved.end(), where, ": missing '", key, "'");
        return it->second;
    };

    // Build the new state aside; only a fully checked state replaces the current one.
    const std::int64_t new_step_count = read_count(get("step_count"), where, "step_count");
    std::vector<double> new_lrs;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        std::string key = cat("group.", g, ".lr");
        const Tensor& t = get(key);
        require(t.defined() && t.numel() == 1, where, ": '", key, "' should hold one number");
        double lr = t.item();
        require(lr >= 0, where, ": '", key, "' must be >= 0, got ", lr);
        new_lrs.push_back(lr);
    }

    std::vector<Tensor> params;
    for (const ParamGroup& group : groups_)
        for (const Tensor& p : group.params) params.push_back(p);

    std::vector<ParamState> new_state(state_.size());
    const std::vector<std::string> expected = buffer_names();
    for (const auto& [key, tensor] : saved) {
        std::size_t i = 0;
        std::string name;
        if (key == "step_count") continue;  // read above
        if (parse_indexed_key(key, "group.", i, name) && name == "lr") {
            require(i < groups_.size(), where, ": entry '", key, "' is for group ", i,
                    ", but this optimizer has ", groups_.size(), " groups");
            continue;  // read above
        }
        require(parse_indexed_key(key, "state.", i, name), where, ": unknown entry '", key, "'");
        require(i < params.size(), where, ": entry '", key, "' is for parameter ", i,
                ", but this optimizer has ", params.size(), " parameters");
        if (name == "step") {
            new_state[i].step = read_count(tensor, where, key);
            continue;
        }
        require(std::find(expected.begin(), expected.end(), name) != expected.end(), where,
                ": unknown entry '", key, "' (this ", name_, " keeps no '", name, "' buffer)");
        const Tensor& p = params[i];
        require(tensor.defined(), where, ": '", key, "' is an undefined tensor");
        if (tensor.shape() != p.shape())
            fail(where, ": '", key, "' has shape ", shape_str(tensor.shape()), ", parameter ", i,
                 " has shape ", shape_str(p.shape()));
        if (!tensor.is_floating_point())
            fail(where, ": '", key, "' is ", dtype_name(tensor.dtype()),
                 ", expected floating point");
        NoGradGuard no_grad;
        // A copy in the parameter's dtype and on its device, so the loaded map and the optimizer
        // share no memory.
        // (A load, not a step: the extra copy when a conversion already made one costs nothing.)
        new_state[i].buffers[name] = tensor.detach().to(p.dtype()).to(p.device()).clone();
    }

    // A parameter was either never updated (no entries) or has its step and every buffer.
    for (std::size_t i = 0; i < new_state.size(); ++i) {
        const ParamState& s = new_state[i];
        if (s.step == 0) {
            require(s.buffers.empty(), where, ": parameter ", i,
                    " has buffers but no 'state.", i, ".step' (or a step of 0)");
            continue;
        }
        for (const std::string& name : expected)
            require(s.buffers.count(name) == 1, where, ": missing 'state.", i, ".", name, "'");
    }

    step_count_ = new_step_count;
    for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].lr = new_lrs[g];
    state_ = std::move(new_state);
}

}  // namespace retort
