// distill/objectives/kd.cpp: knowledge distillation with a temperature, `kd`.
//
//   loss = T^2 / B * sum_b KL( softmax(t_b / T) || softmax(s_b / T) )
//        = T^2 / B * sum_b sum_k p_bk (log p_bk - log q_bk),   p = softmax(t/T), q = softmax(s/T)
//
// Paper: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015.
// Reference: RepDistiller, distiller_zoo/KD.py (DistillKL): kl_div(log_softmax(s/T),
// softmax(t/T), summed) * T^2 / B. mdistiller's kd_loss (sum over classes, mean over the batch)
// is the same number, so the two references agree.
// Shapes: s, t (B, K) logits of the student and the teacher.
//
// Why T^2: the soft targets' gradient w.r.t. the logits is (q - p) / T, and q - p itself shrinks
// as 1/T for large T, so without the factor a higher temperature would silently lower the loss's
// weight against the hard-label term it is mixed with.
// Gradient: d loss / d s = T / B * (q - p).
#include "distill/objectives/logit.h"

#include "engine/ops.h"

namespace retort {

Tensor softened_kl(const Tensor& student, const Tensor& teacher, double T) {
    Tensor log_q = log_softmax(student / T, 1);
    Tensor p = softmax(teacher.detach() / T, 1);
    return kl_div(log_q, p, "batchmean") * (T * T);
}

namespace {

class KD : public Objective {
public:
    explicit KD(double T) : Objective("KD"), T_(T) {}

    Tensor forward(const ObjectiveInputs& in) override {
        check_logit_pair(in, "kd");
        return softened_kl(in.student_logits, in.teacher_logits, T_);
    }

private:
    double T_;
};

}  // namespace

void declare_kd(Config& config) {
    config.declare_double("kd", "T", 4.0, 0.0, 100.0,
                          "temperature that softens both distributions (RepDistiller's CIFAR-100 "
                          "setting: 4)",
                          /*min_exclusive=*/true);
}

std::shared_ptr<Objective> create_kd(const Config& config, const ObjectiveSetup&) {
    return std::make_shared<KD>(config.get_double("kd.T"));
}

}  // namespace retort
