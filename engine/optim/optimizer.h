// engine/optim/optimizer.h: what every optimizer shares: parameter groups, step(), zero_grad(),
// the learning rate, and its state as named tensors for checkpoints.
//
// Parameters are split into groups; each group has its own learning rate and weight decay, so
// "no weight decay on biases and norm weights" is two groups (see weight_decay_groups()). The
// parameters are numbered 0, 1, 2, ... across the groups in order, as in PyTorch; that index names
// the parameter's state.
//
// step() walks the parameters in that order, skips those whose gradient is undefined (PyTorch does
// the same: a frozen or unused parameter is left alone and its state does not advance), and hands
// each of the others to the optimizer's update(), which writes the new values into the parameter's
// own storage. Parameters keep their identity, so a model that holds them sees the new values.
//
// The state of parameter i is its step count and the optimizer's buffers (a momentum buffer, Adam's
// moments). state_dict() returns copies of them under the names
//     state.<i>.step                  int64 scalar: how many updates parameter i has received
//     state.<i>.<buffer>              e.g. state.3.exp_avg, same shape as parameter i
//     group.<g>.lr                    float64 scalar: the current lr of group g
//     step_count                      int64 scalar: how many times step() was called
// and load_state() restores them exactly, so training resumed from a checkpoint continues as if
// it had never stopped. The hyperparameters (momentum, betas, weight decay) are configuration,
// not state: they come from the constructor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace retort {

// A group of parameters as the caller describes it; an option left empty takes the optimizer's.
struct ParamGroupSpec {
    std::vector<Tensor> params;
    std::optional<double> lr;
    std::optional<double> weight_decay;
};

// A group inside the optimizer, with every option resolved.
struct ParamGroup {
    std::vector<Tensor> params;
    double lr = 0;            // the current learning rate; a schedule changes it
    double weight_decay = 0;
    double initial_lr = 0;    // the lr given at construction: what a schedule scales from
};

// The usual split: weight matrices and conv kernels (dim >= 2) are decayed; biases and norm
// scales (dim <= 1) are not. Returns two groups, always in this order: {decayed, not decayed};
// the second has weight_decay = 0, the first takes the optimizer's weight decay.
std::vector<ParamGroupSpec> weight_decay_groups(const std::vector<Tensor>& params);
// The same split by name: also leaves undecayed the tensors timm's ViT/DeiT exclude from weight
// decay (names ending in pos_embed, cls_token or dist_token), whatever their rank.
std::vector<ParamGroupSpec> weight_decay_groups(
    const std::vector<std::pair<std::string, Tensor>>& named_params);

// What an optimizer keeps for one parameter.
struct ParamState {
    std::int64_t step = 0;                   // updates received so far
    std::map<std::string, Tensor> buffers;   // by name, e.g. "exp_avg"; absent until first update
};

class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    // One update of every parameter that has a gradient. Runs without recording a graph.
    void step();
    // Drops every parameter's gradient (sets it to undefined, as PyTorch's set_to_none=True), so
    // the next backward() writes fresh gradients instead of adding to old ones.
    void zero_grad();

    // The learning rate of the first group, and setting it for every group.
    double lr() const;
    void set_lr(double lr);

    std::vector<ParamGroup>& param_groups() { return groups_; }
    const std::vector<ParamGroup>& param_groups() const { return groups_; }
    std::int64_t step_count() const { return step_count_; }
    std::int64_t num_params() const { return static_cast<std::int64_t>(state_.size()); }
    // The state of parameter i (numbered across the groups).
    const ParamState& state(std::int64_t i) const;

    // Copies of the state, named as described at the top of this file.
    std::map<std::string, Tensor> state_dict() const;
    // Replaces the state with a state_dict() of an optimizer of the same kind, configuration and
    // parameters. Everything is checked before anything changes: on error the state is untouched.
    void load_state(const std::map<std::string, Tensor>& saved);

    const std::string& name() const { return name_; }

protected:
    // `name` prefixes every error message ("sgd", "adamw").
    Optimizer(std::string name, std::vector<ParamGroupSpec> groups, double default_lr,
              double default_weight_decay);

    // Updates one parameter in place from its gradient. `state.step` has already been counted up,
    // so it is 1 on the first update. Called with gradient recording off.
    virtual void update(const ParamGroup& group, Tensor& param, const Tensor& grad,
                        ParamState& state) = 0;
    // The buffers a parameter has once it was updated (for checking a loaded state).
    virtual std::vector<std::string> buffer_names() const = 0;

    // Checks one hyperparameter: value >= 0 (NaN fails too).
    void require_non_negative(double value, const char* what) const;

private:
    std::string name_;
    std::vector<ParamGroup> groups_;
    std::vector<ParamState> state_;  // one per parameter, numbered across the groups
    std::int64_t step_count_ = 0;
};

}  // namespace retort
