// distill/objectives/nst.cpp: neuron selectivity transfer.
//
// Each channel's map, flattened over H W and L2-normalized, is one sample of a distribution; NST
// matches the student's and teacher's distributions with the squared maximum mean discrepancy
// under the polynomial kernel k(x, y) = (x . y)^2:
//     F_s (B, sC, HW), F_t (B, tC, HW): rows normalized
//     loss = sum over pairs of  mean k(F_t, F_t) + mean k(F_s, F_s) - 2 mean k(F_s, F_t)
// where mean k(A, B) averages (A_b B_b^T)^2 over the batch and every (channel, channel) entry.
//
// Paper: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer",
// 2017 (polynomial kernel, d = 2, c = 0).
// Reference followed: RepDistiller distiller_zoo/NST.py (NSTLoss, full_loss = True), pairs summed
// in train_student.py (its CIFAR runs use layer1..layer3 with weight beta = 50).
//
// Shapes: B batch, sC / tC channels (may differ), H x W the map; when the maps differ the larger
// is adaptive-average-pooled to the smaller's size, as RepDistiller (which pools to a square).
// The teacher term k(F_t, F_t) carries no gradient (the reference detaches it; the teacher's
// tensors have no graph here anyway).
// Backward: through normalize, the batched matmuls and the pooling (ops record their own nodes).
#include "distill/objectives/feature_map_common.h"
#include "engine/ops.h"

namespace retort {
namespace {

class NeuronSelectivityTransfer : public Objective {
public:
    explicit NeuronSelectivityTransfer(const ObjectiveSetup& setup)
        : Objective("NeuronSelectivityTransfer"), pairs_(setup.pairs.size()) {
        for (const auto& pair : setup.pairs) {
            require_map(pair.student_shape, "nst", "student feature '" + pair.name + "'");
            require_map(pair.teacher_shape, "nst", "teacher feature '" + pair.name + "'");
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check_feature_pairs(in, pairs_, "nst");
        Tensor total;
        for (const FeaturePair& pair : in.features) {
            require_map(pair.student.shape(), "nst", "student feature '" + pair.name + "'");
            require_map(pair.teacher.shape(), "nst", "teacher feature '" + pair.name + "'");
            auto [s, t] = pool_to_common_size(pair.student, pair.teacher, "nst", "pair '" + pair.name + "'");
            Tensor fs = rows(s), ft = rows(t);
            Tensor loss = mean_kernel(ft, ft) + mean_kernel(fs, fs) - 2.0 * mean_kernel(fs, ft);
            total = total.defined() ? total + loss : loss;
        }
        return total;
    }

private:
    // (B, C, H, W) -> (B, C, HW), each channel's row of unit length.
    static Tensor rows(const Tensor& f) {
        return normalize(f.reshape({f.size(0), f.size(1), -1}), 2.0, 2);
    }
    static Tensor mean_kernel(const Tensor& a, const Tensor& b) {
        return mean(square(matmul(a, transpose(b, 1, 2))));
    }

    std::size_t pairs_;
};

}  // namespace

ObjectiveEntry nst_entry() {
    ObjectiveEntry e;
    e.name = "nst";
    e.paper = "Huang & Wang 2017, Like What You Like: Knowledge Distill via Neuron Selectivity Transfer";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/NST.py";
    e.taps = "one or more feature-map pairs (RepDistiller: layer1, layer2, layer3)";
    e.defaults = "polynomial kernel (x.y)^2";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config&) {};
    e.create = [](const Config&, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<NeuronSelectivityTransfer>(setup);
    };
    return e;
}

}  // namespace retort
