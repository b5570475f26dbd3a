// distill/objectives/ce.cpp: cross-entropy with the hard labels, `ce`.
//
//   loss = 1/B * sum_b [ -(1 - eps) log q_b,y_b - eps/K sum_k log q_bk ],   q = softmax(s)
//
// The student's supervised term, written as an objective so a distillation config mixes it with
// the others by weight (`objectives = ce:0.1, kd:0.9`). eps is label smoothing (Szegedy et al.,
// "Rethinking the Inception Architecture for Computer Vision", CVPR 2016); 0 is plain CE.
// Reference: torch.nn.functional.cross_entropy(s, y, label_smoothing=eps), which the engine's
// cross_entropy op matches. Neither the teacher nor feature pairs are read.
// Shapes: s (B, K) logits; labels (B) int64, each in [0, K).
#include "distill/objectives/logit.h"
#include "engine/ops.h"

namespace retort {

namespace {

class CrossEntropy : public Objective {
public:
    explicit CrossEntropy(double label_smoothing)
        : Objective("CrossEntropy"), label_smoothing_(label_smoothing) {}

    Tensor forward(const ObjectiveInputs& in) override {
        check_student_logits(in, "ce");
        check_labels(in, "ce");
        return cross_entropy(in.student_logits, in.labels, "mean", label_smoothing_);
    }

private:
    double label_smoothing_;
};

}  // namespace

void declare_ce(Config& config) {
    config.declare_double("ce", "label_smoothing", 0.0, 0.0, 1.0,
                          "mass moved from the true class to a uniform distribution (0 = none)");
}

std::shared_ptr<Objective> create_ce(const Config& config, const ObjectiveSetup&) {
    return std::make_shared<CrossEntropy>(config.get_double("ce.label_smoothing"));
}

}  // namespace retort
