// distill/objectives/sp.cpp: similarity-preserving distillation.
//
//     Q = f flattened to (B, D);  G = normalize_rows(Q Q^T)   (B, B), each row L2-normalized
//     loss = sum over pairs of  sum over (B, B) of (G_t - G_s)^2 / B^2
//
// Paper: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019.
// Reference followed: RepDistiller distiller_zoo/SP.py (Similarity, "verified by original author"):
// the same B^2 normalization per pair, pairs summed in train_student.py (its CIFAR runs use one
// pair, the last stage's output, with weight beta = 3000).
//
// Shapes: B batch; each tensor any (B, ...) shape: the student's and teacher's D may differ, only
// the batch must agree (the B x B similarity matrices are what is compared).
// Backward: through the two matmuls and normalize (ops record their own nodes).
#include "distill/objectives/feature_map_common.h"
#include "engine/ops.h"

namespace retort {
namespace {

class SimilarityPreserving : public Objective {
public:
    explicit SimilarityPreserving(const ObjectiveSetup& setup)
        : Objective("SimilarityPreserving"), pairs_(setup.pairs.size()) {}

    Tensor forward(const ObjectiveInputs& in) override {
        check_feature_pairs(in, pairs_, "sp");
        Tensor total;
        for (const FeaturePair& pair : in.features) {
            const double b = static_cast<double>(pair.student.size(0));
            Tensor diff = similarity(pair.teacher) - similarity(pair.student);
            Tensor loss = sum(square(diff)) / (b * b);
            total = total.defined() ? total + loss : loss;
        }
        return total;
    }

private:
    static Tensor similarity(const Tensor& f) {
        Tensor q = f.reshape({f.size(0), -1});
        return normalize(matmul(q, transpose(q, 0, 1)), 2.0, 1);
    }

    std::size_t pairs_;
};

}  // namespace

ObjectiveEntry sp_entry() {
    ObjectiveEntry e;
    e.name = "sp";
    e.default_taps = "feature_map";
    e.paper = "Tung & Mori 2019, Similarity-Preserving Knowledge Distillation";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/SP.py";
    e.taps = "one or more pairs of any shape (RepDistiller: feature_map, the last stage)";
    e.defaults = "none";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config&) {};
    e.create = [](const Config&, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<SimilarityPreserving>(setup);
    };
    return e;
}

}  // namespace retort
