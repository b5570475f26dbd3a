// distill/objectives/vid.cpp: variational information distillation (VID).
//
// Ahn, Hu, Damianou, Lawrence, Dai, "Variational Information Distillation for Knowledge
// Transfer", CVPR 2019. Reference code followed: RepDistiller distiller_zoo/VID.py (VIDLoss, from
// the authors' code) as train_student.py builds it: VIDLoss(C_s, C_t, C_t) per pair; mdistiller's
// vid_loss is the same computation.
//
// Shapes: one or more pairs of maps, student (B, Cs, Hs, Ws) and teacher (B, Ct, Ht, Wt).
// Per pair, the larger map is first average-pooled (adaptive) to the smaller one's size; then
//
//   mu = regressor(s)   1x1 conv Cs->Ct, ReLU, 1x1 conv Ct->Ct, ReLU, 1x1 conv Ct->Ct (no biases)
//   var_c = softplus(log_scale_c) + eps                              one learned variance per channel
//   loss_pair = mean over (B, Ct, H, W) of  0.5 * ((mu - t)^2 / var_c + log(var_c))
//   loss = sum over pairs (the reference sums its per-pair losses)
//
// log_scale starts at log(exp(init_pred_var - eps) - 1), so var starts at init_pred_var (5.0).
// The reference pools square maps to (t_H, t_H) comparing heights only; retort pools to the
// other map's (H, W), the same for the square maps the reference meets. The convs have PyTorch's
// default initialization. State-dict names, as the reference's ModuleList of VIDLoss:
// "<pair>.regressor.{0,2,4}.weight" and "<pair>.log_scale".
#include <cmath>

#include "distill/objectives/relation.h"
#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/sequential.h"

namespace retort {
namespace {

std::shared_ptr<Conv2d> conv1x1(std::int64_t in, std::int64_t out) {
    return std::make_shared<Conv2d>(Conv2dSpec{.in_channels = in, .out_channels = out,
                                               .kernel = 1, .bias = false});
}

// One pair's regressor and per-channel variance (the reference's VIDLoss module).
class VidHead : public Module {
public:
    VidHead(std::int64_t student_channels, std::int64_t teacher_channels, double init_pred_var,
            double eps)
        : Module("VIDLoss"), eps_(eps) {
        regressor_ = register_module("regressor", std::make_shared<Sequential>());
        regressor_->push_back(conv1x1(student_channels, teacher_channels));
        regressor_->push_back(std::make_shared<Activation>("relu"));
        regressor_->push_back(conv1x1(teacher_channels, teacher_channels));
        regressor_->push_back(std::make_shared<Activation>("relu"));
        regressor_->push_back(conv1x1(teacher_channels, teacher_channels));
        // the inverse of softplus, so that softplus(log_scale) + eps = init_pred_var
        log_scale_ = register_parameter(
            "log_scale", full({teacher_channels}, std::log(std::exp(init_pred_var - eps) - 1.0)));
    }

    Tensor loss(Tensor student, Tensor teacher) const {
        const std::array<std::int64_t, 2> student_size{student.size(2), student.size(3)};
        const std::array<std::int64_t, 2> teacher_size{teacher.size(2), teacher.size(3)};
        if (student_size[0] > teacher_size[0]) student = adaptive_avg_pool2d(student, teacher_size);
        else if (student_size[0] < teacher_size[0]) teacher = adaptive_avg_pool2d(teacher, student_size);
        Tensor predicted_mean = regressor_->forward(student);
        // softplus written as log(1 + exp(x)), as the reference writes it
        Tensor variance = (log(1.0 + exp(log_scale_)) + eps_).reshape({1, -1, 1, 1});
        Tensor error = predicted_mean - teacher;
        return mean(0.5 * (error * error / variance + log(variance)));
    }

private:
    std::shared_ptr<Sequential> regressor_;
    Tensor log_scale_;
    double eps_;
};

class Vid : public Objective {
public:
    Vid(const ObjectiveSetup& setup, double init_pred_var, double eps)
        : Objective("VID"), pairs_(setup.pairs) {
        for (std::size_t i = 0; i < pairs_.size(); ++i) {
            const ObjectiveSetup::Pair& p = pairs_[i];
            require(p.student_shape.size() == 4 && p.teacher_shape.size() == 4, "vid: pair '",
                    p.name, "' needs (B, C, H, W) maps on both sides, got student ",
                    shape_str(p.student_shape), " and teacher ", shape_str(p.teacher_shape));
            heads_.push_back(register_module(std::to_string(i),
                std::make_shared<VidHead>(p.student_shape[1], p.teacher_shape[1], init_pred_var, eps)));
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, pairs_.size(), "vid");
        Tensor total;
        for (std::size_t i = 0; i < pairs_.size(); ++i) {
            const FeaturePair& pair = in.features[i];
            relation::check_pair_shapes(pair, pairs_[i], "vid");
            Tensor loss = heads_[i]->loss(pair.student, pair.teacher.detach());
            total = total.defined() ? total + loss : loss;
        }
        return total;
    }

private:
    std::vector<ObjectiveSetup::Pair> pairs_;
    std::vector<std::shared_ptr<VidHead>> heads_;
};

}  // namespace

ObjectiveEntry vid_entry() {
    ObjectiveEntry e;
    e.name = "vid";
    e.paper = "Ahn et al. 2019, Variational Information Distillation for Knowledge Transfer (CVPR)";
    e.reference = "RepDistiller distiller_zoo/VID.py (VIDLoss)";
    e.taps = "one or more (B, C, H, W) feature pairs (RepDistiller: every stage output)";
    e.defaults = "init_pred_var=5, eps=1e-05";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& config) {
        config.declare_double("vid", "init_pred_var", 5.0, 0.0, 1e6,
                              "initial per-channel variance of the Gaussian on the teacher's "
                              "features", true);
        config.declare_double("vid", "eps", 1e-5, 0.0, 1.0,
                              "floor added to the softplus variance", true);
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        const double init_pred_var = config.get_double("vid.init_pred_var");
        const double eps = config.get_double("vid.eps");
        require(init_pred_var > eps, "vid: init_pred_var (", init_pred_var,
                ") must exceed eps (", eps, ")");
        return std::make_shared<Vid>(setup, init_pred_var, eps);
    };
    return e;
}

}  // namespace retort
