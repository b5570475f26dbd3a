// distill/objectives/rkd.cpp: relational knowledge distillation (RKD), distance and angle terms.
//
// Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019. Reference code followed:
// RepDistiller distiller_zoo/RKD.py (RKDLoss), identical to mdistiller's rkd_loss.
//
// Shapes: one feature pair, student (B, ...) and teacher (B, ...), each flattened to one vector
// per sample: s (B, Ds), t (B, Dt). Ds and Dt may differ: only relations between samples are
// compared.
//
//   distance  d_ij = ||s_i - s_j|| / mean_{k != l} ||s_k - s_l||   (likewise for t)
//   angle     a_ijk = < (s_j - s_i) / ||s_j - s_i||, (s_k - s_i) / ||s_k - s_i|| >
//   loss = distance_weight * smooth_l1(d_s, d_t) + angle_weight * smooth_l1(a_s, a_t)
//
// smooth_l1 has beta = 1 and averages over every entry: the B x B distance matrix (its zero
// diagonal included) and the B x B x B angle tensor, as F.smooth_l1_loss(..., reduction="mean")
// does in the reference. Distances come from ||a||^2 + ||b||^2 - 2<a, b>, clamped at 1e-12 before
// the square root, with the diagonal set to 0 (the reference's pdist); the mean distance is taken
// over the positive entries, which are exactly the off-diagonal ones. The teacher's relations are
// constants (the teacher has no graph). Defaults 25 and 50 are the paper's and both references'.
// A batch of one sample has no pairs: it is refused.
#include <cmath>

#include "distill/objectives/relation.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace retort {
namespace {

// (B, D) -> (B, B) Euclidean distances with a zero diagonal.
Tensor pairwise_distances(const Tensor& e) {
    const std::int64_t batch = e.size(0);
    Tensor squared_norms = sum(e * e, {1});
    Tensor squared = squared_norms.unsqueeze(1) + squared_norms.unsqueeze(0) -
                     2.0 * matmul(e, transpose(e, 0, 1));
    Tensor distances = sqrt(clamp(squared, 1e-12, std::nullopt));
    // Zeroing the diagonal by a mask also stops its gradient, as the reference's assignment does.
    Tensor index = arange(batch).to(e.device());
    Tensor off_diagonal = ne(index.unsqueeze(1), index.unsqueeze(0)).to(e.dtype());
    return distances * off_diagonal;
}

// Divides distances by their mean over the positive entries.
Tensor normalize_by_mean(const Tensor& distances) {
    const double positives = sum(gt(distances.detach(), zeros_like(distances))).item();
    return distances / (sum(distances) / positives);
}

// (B, D) -> (B * B * B) cosines of the angles at each sample i between the directions to j and k.
Tensor angles(const Tensor& e) {
    Tensor directions = normalize(e.unsqueeze(0) - e.unsqueeze(1), 2.0, 2);  // [i][j] = e_j - e_i
    return matmul(directions, transpose(directions, 1, 2)).reshape({-1});
}

class Rkd : public Objective {
public:
    Rkd(double distance_weight, double angle_weight)
        : Objective("RKD"), distance_weight_(distance_weight), angle_weight_(angle_weight) {}

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, 1, "rkd", 2);
        Tensor student = relation::flatten_samples(in.features[0].student);
        Tensor teacher_distances, teacher_angles;
        {
            NoGradGuard no_grad;
            Tensor teacher = relation::flatten_samples(in.features[0].teacher.detach());
            teacher_distances = normalize_by_mean(pairwise_distances(teacher));
            teacher_angles = angles(teacher);
        }
        Tensor distance_loss =
            smooth_l1_loss(normalize_by_mean(pairwise_distances(student)), teacher_distances);
        Tensor angle_loss = smooth_l1_loss(angles(student), teacher_angles);
        return distance_weight_ * distance_loss + angle_weight_ * angle_loss;
    }

private:
    double distance_weight_, angle_weight_;
};

}  // namespace

ObjectiveEntry rkd_entry() {
    ObjectiveEntry e;
    e.name = "rkd";
    e.default_taps = "pre_logits";
    e.paper = "Park et al. 2019, Relational Knowledge Distillation (CVPR)";
    e.reference = "RepDistiller distiller_zoo/RKD.py (= mdistiller rkd_loss)";
    e.taps = "one feature pair, flattened per sample (usually pre_logits)";
    e.defaults = "distance_weight=25, angle_weight=50";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config& config) {
        config.declare_double("rkd", "distance_weight", 25.0, 0.0, 1e6,
                              "weight of the distance term (smooth L1 between normalized distances)");
        config.declare_double("rkd", "angle_weight", 50.0, 0.0, 1e6,
                              "weight of the angle term (smooth L1 between triplet angle cosines)");
    };
    e.create = [](const Config& config, const ObjectiveSetup&) -> std::shared_ptr<Objective> {
        return std::make_shared<Rkd>(config.get_double("rkd.distance_weight"),
                                     config.get_double("rkd.angle_weight"));
    };
    return e;
}

}  // namespace retort
