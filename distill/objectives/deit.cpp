// distill/objectives/deit.cpp: DeiT's distillation through the distillation token, `deit_hard`
// and `deit_soft`.
//
//   deit_hard  loss = CE(z_d, argmax_k t)             = -1/B sum_b log softmax(z_d)_b[y_t(b)]
//   deit_soft  loss = tau^2 / (B K) * sum_b KL( softmax(t_b / tau) || softmax(z_d,b / tau) )
//
// z_d is the student's distillation head (a DeiT student's dist_logits tap), t the teacher's
// logits (any teacher: CNN or ViT), y_t(b) the teacher's top class for sample b (the first on
// ties, as torch.argmax).
//
// Paper: Touvron, Cord, Douze, Massa, Sablayrolles, Jegou, "Training data-efficient image
// transformers & distillation through attention", ICML 2021. Reference code followed:
// facebookresearch/deit losses.py (DistillationLoss), default alpha 0.5 and tau 1 (main.py).
// Shapes: z_d, t (B, K); one feature pair, normally "dist_logits:logits": the student's
// distillation head against the teacher's output.
//
// How DeiT's loss maps onto retort: DeiT returns (1 - alpha) * CE(z_cls, y) + alpha * distill.
// Here deit_hard / deit_soft return only the distillation term; the class head's CE is the `ce`
// objective (a DeiT student's forward() in train mode returns its class head, which is what
// `ce` reads), and alpha becomes the weights of `objectives =`:
//     objectives = ce:0.5, deit_hard:0.5        (DeiT's hard distillation, alpha = 0.5)
// so there is no alpha key, and the two heads' terms show up in their own metrics columns.
//
// Where references differ: DeiT divides the soft term's sum by the number of logits B K (its
// "legacy PyTorch" reduction, deit issue 61), not by B as KD and ManifoldKD's copy of the loss
// do; deit_soft follows DeiT, so on the same logits and temperature it is `kd`'s value divided
// by K. DeiT's paper runs soft distillation with tau = 3 and alpha = 0.1; tau = 1 here is its
// code's default.
// Backward: through log_softmax / cross_entropy of the student's head; the teacher is a constant.
#include "distill/objectives/relation.h"
#include "distill/objectives/vit.h"
#include "engine/ops.h"

namespace retort {
namespace {

// Both sides of the pair are logits of one shape (B, K).
void require_logit_pair(const Shape& student, const Shape& teacher, const std::string& objective,
                        const std::string& pair) {
    require(student.size() == 2 && student == teacher, objective, ": pair '", pair,
            "' must hold logits (B, K) of one shape on both sides (the student's distillation "
            "head and the teacher's logits), got student ", shape_str(student), " and teacher ",
            shape_str(teacher), "; the usual pair is [", objective, "] pairs = dist_logits:logits");
}

class DeitDistillation : public Objective {
public:
    enum class Kind { hard, soft };

    DeitDistillation(Kind kind, double tau, const ObjectiveSetup& setup)
        : Objective(kind == Kind::hard ? "DeitHardDistillation" : "DeitSoftDistillation"),
          kind_(kind), tau_(tau) {
        for (const ObjectiveSetup::Pair& pair : setup.pairs)
            require_logit_pair(pair.student_shape, pair.teacher_shape, objective_name(), pair.name);
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, 1, objective_name());
        const FeaturePair& pair = in.features[0];
        require_logit_pair(pair.student.shape(), pair.teacher.shape(), objective_name(), pair.name);
        const Tensor& student = pair.student;
        const Tensor teacher = pair.teacher.detach();
        if (kind_ == Kind::hard) return cross_entropy(student, argmax(teacher, 1));
        Tensor log_q = log_softmax(student / tau_, 1);
        Tensor log_p = log_softmax(teacher / tau_, 1);
        const auto logits = static_cast<double>(student.numel());
        return kl_div(log_q, log_p, "sum", /*log_target=*/true) * (tau_ * tau_ / logits);
    }

private:
    std::string objective_name() const { return kind_ == Kind::hard ? "deit_hard" : "deit_soft"; }

    Kind kind_;
    double tau_;
};

// The fields both rows share.
ObjectiveEntry deit_entry(const std::string& name) {
    ObjectiveEntry e;
    e.name = name;
    e.paper = "Touvron et al. ICML 2021, Training data-efficient image transformers & "
              "distillation through attention (DeiT)";
    e.reference = "facebookresearch/deit losses.py (DistillationLoss)";
    e.taps = "one pair: the student's distillation head and the teacher's logits "
             "(dist_logits:logits); any teacher";
    e.default_taps = "dist_logits:logits";
    // The teacher's logits come as the pair's teacher tensor, so neither flag is needed.
    e.uses_teacher_logits = false;
    e.uses_labels = false;
    e.min_pairs = e.max_pairs = 1;
    return e;
}

}  // namespace

ObjectiveEntry deit_hard_entry() {
    ObjectiveEntry e = deit_entry("deit_hard");
    e.defaults = "(none; DeiT's alpha = 0.5 is objectives = ce:0.5, deit_hard:0.5)";
    e.declare = [](Config&) {};  // no hyperparameters: the teacher's top class is the target
    e.create = [](const Config&, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<DeitDistillation>(DeitDistillation::Kind::hard, 1.0, setup);
    };
    return e;
}

ObjectiveEntry deit_soft_entry() {
    ObjectiveEntry e = deit_entry("deit_soft");
    e.defaults = "tau=1 (DeiT's alpha = 0.5 is objectives = ce:0.5, deit_soft:0.5)";
    e.declare = [](Config& config) {
        config.declare_double("deit_soft", "tau", 1.0, 0.0, 100.0,
                              "temperature of both softmaxes (DeiT's code default 1; its paper's "
                              "soft-distillation runs use 3)",
                              /*min_exclusive=*/true);
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<DeitDistillation>(DeitDistillation::Kind::soft,
                                                  config.get_double("deit_soft.tau"), setup);
    };
    return e;
}

}  // namespace retort
