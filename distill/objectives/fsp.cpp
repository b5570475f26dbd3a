// distill/objectives/fsp.cpp: FSP ("flow of solution procedure") matrices.
//
// For consecutive tapped layers of one network, a bottom map F1 (B, C1, H, W) and a top map
// F2 (B, C2, H, W), the FSP matrix is their channel-by-channel Gram matrix over positions:
//     G (B, C2, C1):  G[b, j, i] = mean over (h, w) of F2[b, j, h, w] F1[b, i, h, w]
//     loss = sum over consecutive (i, i+1) of  mean over (B, C2, C1) of (G_s - G_t)^2
// so the student learns how the teacher's features flow from one layer to the next.
//
// Paper: Yim et al., "A Gift from Knowledge Distillation: Fast Optimization, Network
// Minimization and Transfer Learning", CVPR 2017.
// Reference followed: RepDistiller distiller_zoo/FSP.py (compute_fsp, compute_loss: a mean per
// matrix, summed) and train_student.py (--distill fsp): the FSP loss trains the student's feature
// layers in an initialization stage of init_epochs = 30 epochs, and the main stage uses no FSP term
// (loss_kd = 0), as the paper's two stages.
//
// Stages here: init_epochs > 0 (default 30): pre_stage_loss() is the FSP loss and forward() gives
// a zero that keeps the student's graph; init_epochs = 0: forward() is the FSP loss.
//
// Shapes: B batch; pair i holds the student's and the teacher's i-th map, which must have the
// same channels (the matrices are compared entry by entry; RepDistiller raises the same error).
// Within one network, when the bottom and top maps differ in size, the larger is
// adaptive-average-pooled to the smaller's size (RepDistiller pools to a square of the smaller
// height; here the smaller H x W). Pairs need not share sizes between student and teacher.
// Backward: through the batched matmul and the pooling (ops record their own nodes).
#include "distill/objectives/feature_map_common.h"
#include "engine/ops.h"

namespace retort {
namespace {

class FlowOfSolution : public Objective {
public:
    FlowOfSolution(const ObjectiveSetup& setup, std::int64_t init_epochs)
        : Objective("FlowOfSolution"), setup_(setup), init_epochs_(init_epochs) {
        for (const auto& pair : setup.pairs) {
            require_map(pair.student_shape, "fsp", "student feature '" + pair.name + "'");
            require_map(pair.teacher_shape, "fsp", "teacher feature '" + pair.name + "'");
            require(pair.student_shape[1] == pair.teacher_shape[1], "fsp: pair '", pair.name,
                    "': the student has ", pair.student_shape[1], " channels and the teacher ",
                    pair.teacher_shape[1], "; FSP matrices need equal channel counts");
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check(in);
        return init_epochs_ > 0 ? graph_zero(in) : fsp_loss(in);
    }
    std::int64_t pre_stage_epochs() const override { return init_epochs_; }
    Tensor pre_stage_loss(const ObjectiveInputs& in) override {
        check(in);
        return fsp_loss(in);
    }

private:
    void check(const ObjectiveInputs& in) const {
        check_feature_pairs(in, setup_.pairs.size(), "fsp");
        for (std::size_t i = 0; i < in.features.size(); ++i) {
            const FeaturePair& p = in.features[i];
            require_map(p.student.shape(), "fsp", "student feature '" + p.name + "'");
            require_map(p.teacher.shape(), "fsp", "teacher feature '" + p.name + "'");
            require(p.student.size(1) == setup_.pairs[i].student_shape[1] &&
                        p.teacher.size(1) == setup_.pairs[i].teacher_shape[1],
                    "fsp: pair '", p.name, "' has ", p.student.size(1), " and ", p.teacher.size(1),
                    " channels, but the objective was built for ", setup_.pairs[i].student_shape[1],
                    " and ", setup_.pairs[i].teacher_shape[1]);
        }
    }

    Tensor fsp_loss(const ObjectiveInputs& in) const {
        Tensor total;
        for (std::size_t i = 0; i + 1 < in.features.size(); ++i) {
            const std::string what = "pairs '" + in.features[i].name + "' and '" + in.features[i + 1].name + "'";
            Tensor student_g = fsp_matrix(in.features[i].student, in.features[i + 1].student, "student " + what);
            Tensor teacher_g = fsp_matrix(in.features[i].teacher, in.features[i + 1].teacher, "teacher " + what);
            Tensor loss = mean(square(student_g - teacher_g));
            total = total.defined() ? total + loss : loss;
        }
        return total;
    }

    // bottom (B, C1, H, W), top (B, C2, H', W') -> (B, C2, C1)
    static Tensor fsp_matrix(const Tensor& bottom, const Tensor& top, const std::string& what) {
        auto [b, t] = pool_to_common_size(bottom, top, "fsp", what);
        const std::int64_t B = b.size(0), positions = b.size(2) * b.size(3);
        Tensor b_flat = b.reshape({B, b.size(1), positions});
        Tensor t_flat = t.reshape({B, t.size(1), positions});
        return matmul(t_flat, transpose(b_flat, 1, 2)) / static_cast<double>(positions);
    }

    ObjectiveSetup setup_;
    std::int64_t init_epochs_;
};

}  // namespace

ObjectiveEntry fsp_entry() {
    ObjectiveEntry e;
    e.name = "fsp";
    e.paper = "Yim et al. 2017, A Gift from Knowledge Distillation: Fast Optimization, Network "
              "Minimization and Transfer Learning";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/FSP.py";
    e.taps = "two or more feature-map pairs, equal channels within each pair (RepDistiller: stem, "
             "layer1, layer2, layer3)";
    e.defaults = "init_epochs=30";
    e.min_pairs = 2;
    e.max_pairs = -1;
    e.declare = [](Config& c) {
        c.declare_int("fsp", "init_epochs", 30, 0, 100000,
                      ">0: the FSP loss trains the student this many epochs first and is zero "
                      "afterwards (RepDistiller, the paper's two stages); 0: used throughout");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<FlowOfSolution>(setup, c.get_int("fsp.init_epochs"));
    };
    return e;
}

}  // namespace retort
