// distill/objectives/ofd.cpp: OFD, the overhaul of feature distillation.
//
// For each pair i of n, with the student's pre-ReLU map passed through a connector r_i and the
// teacher's pre-ReLU map f_t:
//     target = max(f_t, m)                            m: per-channel margin (1, C, 1, 1)
//     d_i    = sum over (B, C, H, W) of (r_i(f_s) - target)^2 * [r_i(f_s) > target or target > 0]
//     loss   = sum over i of d_i / 2^(n - 1 - i)  /  B
// The "partial L2": where the teacher's response is negative (target <= 0) a student below the
// target is not penalized, since the ReLU would zero both.
//
// Paper: Heo et al., "A Comprehensive Overhaul of Feature Distillation", ICCV 2019.
// Reference followed: clovaai/overhaul-distillation CIFAR-100/distiller.py (distillation_loss,
// build_feature_connector, get_margin_from_BN, the 2^-(n-1-i) pair weights) and
// train_with_distillation.py, which divides the summed loss by the batch size and by 1000.
// Here the division by B is part of the objective (a per-sample value, independent of the batch
// size); the 1/1000 is left to the outer weight: `objectives = ce:1, ofd:0.001` is the paper's
// CIFAR-100 recipe.
//
// Shapes: B batch, sC / tC channels, H x W the map, equal for student and teacher (the 1x1
// connector keeps the size; the reference pairs maps of equal size).
//
// Connectors: "connectors.<i>.0.weight" conv 1x1 sC -> tC without bias, initialized
// N(0, sqrt(2 / tC)), and "connectors.<i>.1.*" BatchNorm2d(tC) with weight 1, bias 0, as the
// reference's build_feature_connector.
//
// Margins: buffers "margin.<i>" (1, tC, 1, 1), computed from the teacher's BatchNorm before each
// tapped ReLU (margins_from_batch_norm). The objective sees only tensors, so the caller fills them
// with set_margins() (or they load from a state dict, `param.margin.<i>`); until then they are the
// margins of a BatchNorm at its initialization (weight 1, bias 0): -sqrt(2 / pi).
// Backward: the mask is a constant (comparisons carry no gradient); the loss is continuously
// differentiable in the student (where the mask switches on, s = target, the square is zero).
#include "distill/objectives/ofd.h"

#include <cmath>
#include <numbers>

#include "distill/objectives/feature_map_common.h"
#include "engine/ops.h"
#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/sequential.h"

namespace retort {

void MarginBank::add(const Tensor& margin) {
    margins_.push_back(register_buffer(std::to_string(margins_.size()), margin));
}

Tensor OverhaulDistillation::margins_from_batch_norm(const Tensor& weight, const Tensor& bias) {
    require(weight.defined() && bias.defined() && weight.dim() == 1 && weight.shape() == bias.shape(),
            "ofd: margins need BatchNorm weight and bias of one shape (C), got ",
            weight.defined() ? shape_str(weight.shape()) : "none", " and ",
            bias.defined() ? shape_str(bias.shape()) : "none");
    const std::vector<double> w = weight.to_vector<double>(), b = bias.to_vector<double>();
    std::vector<double> margin(w.size());
    for (std::size_t c = 0; c < w.size(); ++c) {
        const double s = std::abs(w[c]), m = b[c];
        if (s == 0) {  // a constant response m: its negative part is m itself, or nothing
            margin[c] = std::min(m, 0.0);
            continue;
        }
        const double z = m / s;
        const double cdf_neg = 0.5 * std::erfc(z / std::numbers::sqrt2);  // Phi(-z)
        const double density = std::exp(-z * z / 2) / std::sqrt(2 * std::numbers::pi);
        margin[c] = cdf_neg > 0.001 ? m - s * density / cdf_neg : -3 * s;
    }
    return from_vector(margin).to(weight.dtype());
}

OverhaulDistillation::OverhaulDistillation(const ObjectiveSetup& setup)
    : Objective("OverhaulDistillation"), setup_(setup) {
    connectors_ = register_module("connectors", std::make_shared<ModuleList>());
    margins_ = register_module("margin", std::make_shared<MarginBank>());
    for (const auto& pair : setup.pairs) {
        const std::string where = "pair '" + pair.name + "'";
        require_map(pair.student_shape, "ofd", "the student feature of " + where);
        require_map(pair.teacher_shape, "ofd", "the teacher feature of " + where);
        const std::int64_t sC = pair.student_shape[1], tC = pair.teacher_shape[1];
        require(pair.student_shape[2] == pair.teacher_shape[2] &&
                    pair.student_shape[3] == pair.teacher_shape[3],
                "ofd: ", where, ": student map ", shape_str(pair.student_shape), " and teacher map ",
                shape_str(pair.teacher_shape), " differ in size; OFD compares them position by position");
        auto connector = std::make_shared<Sequential>();
        auto conv = connector->push_back(std::make_shared<Conv2d>(Conv2dSpec{sC, tC, 1, 1, 0, 1, 1, false}));
        init::normal(conv->weight, 0.0, std::sqrt(2.0 / static_cast<double>(tC)));
        connector->push_back(std::make_shared<BatchNorm2d>(tC));
        connectors_->push_back(connector);
        Tensor untrained = margins_from_batch_norm(ones({tC}), zeros({tC}));
        margins_->add(untrained.reshape({1, tC, 1, 1}));
    }
}

void OverhaulDistillation::set_margins(std::size_t pair, const Tensor& margins) {
    require(pair < margins_->size(), "ofd: set_margins: pair ", pair, " of ", margins_->size());
    Tensor buffer = margins_->at(pair);
    require(margins.defined() && margins.numel() == buffer.numel(), "ofd: set_margins: pair ", pair,
            " has ", buffer.numel(), " teacher channels, got margins of shape ",
            margins.defined() ? shape_str(margins.shape()) : "none");
    Tensor values = margins.detach().to(buffer.dtype());
    visit_floating(buffer.dtype(), "ofd: set_margins", [&]<class T>(Type<T>) {
        std::copy_n(values.data<T>(), buffer.numel(), buffer.data<T>());
    });
}

Tensor OverhaulDistillation::forward(const ObjectiveInputs& in) {
    check_feature_pairs(in, setup_.pairs.size(), "ofd");
    const std::size_t n = in.features.size();
    Tensor total;
    for (std::size_t i = 0; i < n; ++i) {
        const FeaturePair& pair = in.features[i];
        require_setup_shape(pair.student, setup_.pairs[i].student_shape, "ofd",
                            "the student feature of pair '" + pair.name + "'");
        require_setup_shape(pair.teacher, setup_.pairs[i].teacher_shape, "ofd",
                            "the teacher feature of pair '" + pair.name + "'");
        Tensor s = connectors_->apply(i, pair.student);
        Tensor target = maximum(pair.teacher, margins_->at(i).to(pair.teacher.dtype()));
        Tensor counted = maximum(gt(s, target), gt(target, zeros({}, target.dtype())));
        Tensor d = sum(square(s - target) * counted);
        const double weight = std::ldexp(1.0, -static_cast<int>(n - 1 - i));  // 2^-(n-1-i)
        Tensor term = d * weight;
        total = total.defined() ? total + term : term;
    }
    return total / static_cast<double>(in.features[0].student.size(0));
}

ObjectiveEntry ofd_entry() {
    ObjectiveEntry e;
    e.name = "ofd";
    e.default_taps = "stages.pre";
    e.paper = "Heo et al. 2019, A Comprehensive Overhaul of Feature Distillation";
    e.reference = "clovaai/overhaul-distillation: CIFAR-100/distiller.py";
    e.taps = "one or more pre-ReLU feature-map pairs of equal size (layer1.pre, layer2.pre, layer3.pre)";
    e.defaults = "margins from the teacher's BatchNorm; the paper's weight is 0.001";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config&) {};
    e.create = [](const Config&, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<OverhaulDistillation>(setup);
    };
    return e;
}

}  // namespace retort
