// distill/objectives/logit_std.cpp: KD on standardized logits, `logit_std`.
//
//   Z(z)_bk = (z_bk - mean_k z_b) / (1e-7 + std_k z_b)      (std with Bessel's correction, K - 1)
//   loss    = T^2 / B * sum_b KL( softmax(Z(t)_b / T) || softmax(Z(s)_b / T) )
//
// Each sample's logits, the student's and the teacher's separately, are z-scored before Hinton's
// KD, so the student matches the teacher's ranking and relative gaps and is free to choose its own
// logit range (the paper's argument against one shared temperature).
//
// Paper: Sun, Ren, Li, Wang, Cao, "Logit Standardization in Knowledge Distillation", CVPR 2024.
// Reference: logit-standardization-KD (sunshangquan), mdistiller/distillers/KD.py (normalize and
// kd_loss with logit_stand): torch's .std(dim=-1) is the unbiased estimator (divides by K - 1),
// and 1e-7 is added to it (not to the variance); the KL is summed over classes, averaged over
// the batch and multiplied by T^2.
// Defaults: their CIFAR-100 "KD + ours" runs use a base temperature of 2 (tools/train.py
// --base-temp 2) with the KD weight raised to 9 next to a cross-entropy weight of 0.1: in retort
// `objectives = ce:0.1, logit_std:9` with [logit_std] T = 2.
// Shapes: s, t (B, K) logits, K >= 2 (a standard deviation needs two classes).
#include "distill/objectives/logit.h"
#include "engine/ops.h"

namespace retort {

namespace {

constexpr double kStdEps = 1e-7;

Tensor standardize(const Tensor& logits) {
    Tensor centred = logits - mean(logits, {1}, /*keepdim=*/true);
    return centred / (retort::std(logits, {1}, /*correction=*/1, /*keepdim=*/true) + kStdEps);
}

class LogitStandardization : public Objective {
public:
    explicit LogitStandardization(double T) : Objective("LogitStandardization"), T_(T) {}

    Tensor forward(const ObjectiveInputs& in) override {
        check_logit_pair(in, "logit_std", /*min_classes=*/2);
        return softened_kl(standardize(in.student_logits), standardize(in.teacher_logits.detach()),
                           T_);
    }

private:
    double T_;
};

}  // namespace

void declare_logit_std(Config& config) {
    config.declare_double("logit_std", "T", 2.0, 0.0, 100.0,
                          "base temperature applied to the z-scored logits (the paper's CIFAR-100 "
                          "setting: 2)",
                          /*min_exclusive=*/true);
}

std::shared_ptr<Objective> create_logit_std(const Config& config, const ObjectiveSetup&) {
    return std::make_shared<LogitStandardization>(config.get_double("logit_std.T"));
}

}  // namespace retort
