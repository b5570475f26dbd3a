// distill/objectives/ab.cpp: activation-boundary distillation.
//
// The student learns where the teacher's neurons switch on, not their values: with the student's
// pre-activation map passed through a connector, s = r_i(f_s), the teacher's pre-activation f_t and
// a margin mu, for each pair i of n:
//     d_i  = sum over (B, C, H, W) of  (s + mu)^2 [s > -mu and f_t <= 0]
//                                    + (s - mu)^2 [s <= mu and f_t > 0]
//     loss = sum over i of 2^(i - n + 1) d_i / B * 3 / 1000
// (the last pair weighs 1, each earlier one half the next).
//
// Paper: Heo et al., "Knowledge Transfer via Distillation of Activation Boundaries Formed by
// Hidden Neurons", AAAI 2019 (margin 1).
// Reference followed: RepDistiller distiller_zoo/AB.py (ABLoss: the pair weights, the division by
// B and the factor 3/1000 are its own), models/util.py (Connector) and train_student.py
// (--distill abound): the AB loss trains the student's feature layers and the connectors in an
// initialization stage of init_epochs = 30 epochs; the main stage then uses no AB term
// (loss_kd = 0) and the connectors are no longer used.
//
// Stages here: init_epochs > 0 (default 30): pre_stage_loss() is the AB loss and forward() gives a
// zero that keeps the student's graph (exact zero gradients), as RepDistiller's main stage.
// init_epochs = 0: no pre-stage, and forward() is the AB loss (the loss used throughout).
//
// Shapes: B batch, sC / tC channels, H x W the map.
// Connectors, as RepDistiller's Connector: none (identity) when student and teacher have the same
// channels and height, else ConvReg without ReLU (a conv chosen from the shapes + BatchNorm):
// "connectors.<i>.conv.*", "connectors.<i>.bn.*", PyTorch's default initialization.
// Backward: the indicator masks are constants (comparisons carry no gradient); the loss is
// continuously differentiable in s (each square vanishes where its mask switches).
#include <cmath>

#include "distill/objectives/feature_map_common.h"
#include "engine/ops.h"

namespace retort {
namespace {

class ActivationBoundaries : public Objective {
public:
    ActivationBoundaries(const ObjectiveSetup& setup, double margin, std::int64_t init_epochs)
        : Objective("ActivationBoundaries"), setup_(setup), margin_(margin), init_epochs_(init_epochs) {
        connectors_ = register_module("connectors", std::make_shared<ModuleList>());
        for (const auto& pair : setup.pairs) {
            const Shape& s = pair.student_shape;
            const Shape& t = pair.teacher_shape;
            require_map(s, "ab", "the student feature of pair '" + pair.name + "'");
            require_map(t, "ab", "the teacher feature of pair '" + pair.name + "'");
            if (s[1] == t[1] && s[2] == t[2]) {
                require(s[3] == t[3], "ab: pair '", pair.name, "': maps ", shape_str(s), " and ",
                        shape_str(t), " differ in width only");
                connectors_->push_back(nullptr);
            } else {
                connectors_->push_back(std::make_shared<ConvReg>(s, t, false, "ab"));
            }
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check(in);
        return init_epochs_ > 0 ? graph_zero(in) : boundary_loss(in);
    }
    std::int64_t pre_stage_epochs() const override { return init_epochs_; }
    Tensor pre_stage_loss(const ObjectiveInputs& in) override {
        check(in);
        return boundary_loss(in);
    }

private:
    void check(const ObjectiveInputs& in) const {
        check_feature_pairs(in, setup_.pairs.size(), "ab");
        for (std::size_t i = 0; i < in.features.size(); ++i) {
            const std::string where = "pair '" + in.features[i].name + "'";
            require_setup_shape(in.features[i].student, setup_.pairs[i].student_shape, "ab",
                                "the student feature of " + where);
            require_setup_shape(in.features[i].teacher, setup_.pairs[i].teacher_shape, "ab",
                                "the teacher feature of " + where);
        }
    }

    Tensor boundary_loss(const ObjectiveInputs& in) {
        const std::size_t n = in.features.size();
        const double batch = static_cast<double>(in.features[0].student.size(0));
        Tensor total;
        for (std::size_t i = 0; i < n; ++i) {
            const FeaturePair& pair = in.features[i];
            Tensor s = connectors_->apply(i, pair.student);
            Tensor zero = zeros({}, s.dtype()), mu = scalar_tensor(margin_, s.dtype());
            Tensor teacher_on = gt(pair.teacher, zero);
            Tensor teacher_off = le(pair.teacher, zero);
            Tensor push_down = mul(gt(s, -mu), teacher_off);  // student on where the teacher is off
            Tensor push_up = mul(le(s, mu), teacher_on);       // student off where the teacher is on
            Tensor d = sum(square(s + margin_) * push_down + square(s - margin_) * push_up);
            const double weight = std::ldexp(1.0, static_cast<int>(i) - static_cast<int>(n) + 1);
            Tensor term = d * (weight / batch * 3.0 / 1000.0);
            total = total.defined() ? total + term : term;
        }
        return total;
    }

    ObjectiveSetup setup_;
    double margin_;
    std::int64_t init_epochs_;
    std::shared_ptr<ModuleList> connectors_;
};

}  // namespace

ObjectiveEntry ab_entry() {
    ObjectiveEntry e;
    e.name = "ab";
    e.default_taps = "stages.pre";
    e.paper = "Heo et al. 2019, Knowledge Transfer via Distillation of Activation Boundaries Formed by "
              "Hidden Neurons";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/AB.py, models/util.py Connector";
    e.taps = "one or more pre-activation feature-map pairs (layer1.pre, layer2.pre, layer3.pre)";
    e.defaults = "margin=1, init_epochs=30";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& c) {
        c.declare_double("ab", "margin", 1.0, 0.0, 1e6,
                         "margin mu of the activation-boundary loss", /*min_exclusive=*/true);
        c.declare_int("ab", "init_epochs", 30, 0, 100000,
                      ">0: the AB loss trains the student and connectors this many epochs first and "
                      "is zero afterwards (RepDistiller); 0: the AB loss is used throughout");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<ActivationBoundaries>(setup, c.get_double("ab.margin"),
                                                      c.get_int("ab.init_epochs"));
    };
    return e;
}

}  // namespace retort
