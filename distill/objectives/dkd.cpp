// distill/objectives/dkd.cpp: Decoupled Knowledge Distillation, `dkd`.
//
// KD's KL divergence, split at the target class. With p = softmax(t/T), q = softmax(s/T) and
// y_b the label of sample b:
//   binary distributions  b^p = (p_y, 1 - p_y), b^q = (q_y, 1 - q_y)      (target vs the rest)
//   non-target ones       p~_k = p_k / (1 - p_y),  q~_k = q_k / (1 - q_y)  for k != y
//   TCKD = T^2 / B * sum_b KL(b^p || b^q)
//   NCKD = T^2 / B * sum_b KL(p~ || q~)
//   loss = w(epoch) * (alpha * TCKD + beta * NCKD),   w = min((epoch + 1) / warmup, 1)
//
// Paper: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022.
// Reference: mdistiller, mdistiller/distillers/DKD.py (dkd_loss and DKD.forward_train); CIFAR-100
// defaults from its configs: alpha 1, beta 8 (ResNet32x4 -> ResNet8x4), T 4, warmup 20.
// Shapes: s, t (B, K) logits; labels (B) int64, each in [0, K). K >= 2.
//
// Followed from the reference, on purpose:
//  - b^p and b^q are formed by summing the softmax over the target / non-target masks (not as
//    1 - p_y), and log(b^q) is taken of those sums, as mdistiller's cat_mask does.
//  - The non-target distributions are softmaxes of t/T and s/T with 1000 subtracted at the target
//    class (mdistiller's `- 1000.0 * gt_mask`). exp(-1000) is 0 in float32 and float64, so this
//    IS the exact renormalized non-target distribution, and KL's 0 * log 0 term at the target
//    class is 0 (kl_div treats a zero target as torch.xlogy does). It stays exact as long as the
//    target logit does not exceed the others by more than ~900 T (float32), far beyond real logits.
//  - Warm-up: mdistiller passes its 1-based epoch, so its first epoch is weighted 1/warmup. Our
//    epoch is 0-based, hence epoch + 1. With no schedule (epochs == 0) or warmup == 0, w = 1.
#include <algorithm>

#include "distill/objectives/logit.h"
#include "engine/ops.h"

namespace retort {

namespace {

// Why 1000: mdistiller's constant; see the note above.
constexpr double kMaskOffset = 1000.0;

// (B, K) probabilities -> (B, 2): the mass on the target class and on all the others.
Tensor target_vs_rest(const Tensor& probs, const Tensor& target_mask) {
    Tensor on_target = sum(probs * target_mask, {1}, /*keepdim=*/true);
    Tensor on_others = sum(probs * (1.0 - target_mask), {1}, /*keepdim=*/true);
    return concat({on_target, on_others}, 1);
}

class DKD : public Objective {
public:
    DKD(double alpha, double beta, double T, std::int64_t warmup)
        : Objective("DKD"), alpha_(alpha), beta_(beta), T_(T), warmup_(warmup) {}

    Tensor forward(const ObjectiveInputs& in) override {
        check_logit_pair(in, "dkd", /*min_classes=*/2);
        check_labels(in, "dkd");
        const Tensor& s = in.student_logits;
        const Tensor t = in.teacher_logits.detach();
        const auto batch = static_cast<double>(s.size(0));
        const Tensor target = label_mask(in.labels, s.size(1), s.dtype());

        Tensor bin_t = target_vs_rest(softmax(t / T_, 1), target);
        Tensor bin_s = target_vs_rest(softmax(s / T_, 1), target);
        Tensor tckd = kl_div(log(bin_s), bin_t, "sum") * (T_ * T_ / batch);

        Tensor rest_t = softmax(t / T_ - target * kMaskOffset, 1);
        Tensor log_rest_s = log_softmax(s / T_ - target * kMaskOffset, 1);
        Tensor nckd = kl_div(log_rest_s, rest_t, "sum") * (T_ * T_ / batch);

        return (alpha_ * tckd + beta_ * nckd) * warmup_factor(in);
    }

private:
    double warmup_factor(const ObjectiveInputs& in) const {
        if (in.epochs == 0 || warmup_ == 0) return 1.0;
        return std::min(static_cast<double>(in.epoch + 1) / static_cast<double>(warmup_), 1.0);
    }

    double alpha_, beta_, T_;
    std::int64_t warmup_;
};

}  // namespace

void declare_dkd(Config& config) {
    config.declare_double("dkd", "alpha", 1.0, 0.0, 1e4,
                          "weight of TCKD, the target-class (binary) term");
    config.declare_double("dkd", "beta", 8.0, 0.0, 1e4,
                          "weight of NCKD, the non-target-class term (mdistiller: 8 for "
                          "ResNet32x4 -> ResNet8x4 on CIFAR-100)");
    config.declare_double("dkd", "T", 4.0, 0.0, 100.0, "temperature", /*min_exclusive=*/true);
    config.declare_int("dkd", "warmup", 20, 0, 1'000'000,
                       "epochs over which the loss weight rises linearly to 1: epoch e (from 0) is "
                       "weighted min((e + 1) / warmup, 1); 0 = no warm-up");
}

std::shared_ptr<Objective> create_dkd(const Config& config, const ObjectiveSetup&) {
    return std::make_shared<DKD>(config.get_double("dkd.alpha"), config.get_double("dkd.beta"),
                                 config.get_double("dkd.T"), config.get_int("dkd.warmup"));
}

}  // namespace retort
