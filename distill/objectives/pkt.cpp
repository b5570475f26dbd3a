// distill/objectives/pkt.cpp: probabilistic knowledge transfer (PKT).
//
// Passalis, Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer",
// ECCV 2018. Reference code followed: RepDistiller distiller_zoo/PKT.py (cosine_similarity_loss,
// from the authors' code), which mdistiller repeats.
//
// Shapes: one feature pair, student (B, ...) and teacher (B, ...), flattened per sample to
// s (B, Ds), t (B, Dt) (the reference receives pooled (B, C) features; Ds and Dt may differ).
//
//   u_i = x_i / (||x_i|| + eps)                       each sample scaled to unit length
//   K_ij = (<u_i, u_j> + 1) / 2                       cosine kernel mapped to [0, 1]
//   P_ij = K_ij / sum_k K_ik                          conditional probabilities, row by row
//   loss = mean_ij  P^t_ij * log((P^t_ij + eps) / (P^s_ij + eps)),   eps = 1e-7
//
// The mean runs over all B x B entries (the reference's torch.mean), so the value is a KL
// divergence per row divided by B. The reference also replaces NaN entries of u by 0; with
// eps in the denominator u is finite for any finite input, so that guard is not repeated here.
// The norm is sqrt(sum x^2) as in the reference: an all-zero student row has an infinite
// derivative there, in both.
#include "distill/objectives/relation.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace retort {
namespace {

constexpr double kEps = 1e-7;

// (B, D) -> (B, B) row-stochastic matrix of cosine-kernel probabilities.
Tensor cosine_probabilities(const Tensor& x) {
    Tensor unit = x / (sqrt(sum(x * x, {1}, true)) + kEps);
    Tensor kernel = (matmul(unit, transpose(unit, 0, 1)) + 1.0) / 2.0;
    return kernel / sum(kernel, {1}, true);
}

class Pkt : public Objective {
public:
    Pkt() : Objective("PKT") {}

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, 1, "pkt");
        Tensor teacher_probs;
        {
            NoGradGuard no_grad;
            teacher_probs = cosine_probabilities(relation::flatten_samples(in.features[0].teacher));
        }
        Tensor student_probs = cosine_probabilities(relation::flatten_samples(in.features[0].student));
        return mean(teacher_probs * log((teacher_probs + kEps) / (student_probs + kEps)));
    }
};

}  // namespace

ObjectiveEntry pkt_entry() {
    ObjectiveEntry e;
    e.name = "pkt";
    e.default_taps = "pre_logits";
    e.paper = "Passalis & Tefas 2018, Learning Deep Representations with Probabilistic Knowledge "
              "Transfer (ECCV)";
    e.reference = "RepDistiller distiller_zoo/PKT.py";
    e.taps = "one feature pair, flattened per sample (usually pre_logits)";
    e.defaults = "";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config&) {};  // the method has no hyperparameters besides its outer weight
    e.create = [](const Config&, const ObjectiveSetup&) -> std::shared_ptr<Objective> {
        return std::make_shared<Pkt>();
    };
    return e;
}

}  // namespace retort
