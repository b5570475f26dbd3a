// distill/objectives/ofd.h: "A Comprehensive Overhaul of Feature Distillation" (OFD), exposed so
// that the distillation command can fill the teacher-side margins (see ofd.cpp for the formula).
//
// Shapes: B batch, C the teacher's channels, H x W the map (equal for student and teacher).
#pragma once

#include <cstddef>

#include "distill/objective.h"

namespace retort {

class ModuleList;

// Holds one margin buffer per pair, named "0", "1", ... (so "margin.0" in a state dict), each
// (1, C, 1, 1).
class MarginBank : public Module {
public:
    MarginBank() : Module("MarginBank") {}
    void add(const Tensor& margin);
    Tensor at(std::size_t i) const { return margins_.at(i); }
    std::size_t size() const { return margins_.size(); }

private:
    std::vector<Tensor> margins_;
};

class OverhaulDistillation : public Objective {
public:
    explicit OverhaulDistillation(const ObjectiveSetup& setup);
    Tensor forward(const ObjectiveInputs& in) override;

    // The margin of each channel from the teacher's BatchNorm before the ReLU, weight and bias
    // (C): the expected value of the pre-ReLU response given that it is negative, for a Gaussian
    // N(bias, |weight|^2):
    //     m = bias - |w| phi(bias/|w|) / Phi(-bias/|w|)     when Phi(-bias/|w|) > 0.001
    //     m = -3 |w|                                         otherwise
    // (phi, Phi the standard normal density and CDF), as overhaul-distillation's
    // get_margin_from_BN. Returns (C) in the weight's dtype.
    static Tensor margins_from_batch_norm(const Tensor& weight, const Tensor& bias);
    // Copies margins (C) of pair i into its buffer "margin.<i>".
    void set_margins(std::size_t pair, const Tensor& margins);

private:
    ObjectiveSetup setup_;
    std::shared_ptr<ModuleList> connectors_;
    std::shared_ptr<MarginBank> margins_;
};

}  // namespace retort
