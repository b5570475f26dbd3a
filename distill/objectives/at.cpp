// distill/objectives/at.cpp: attention transfer.
//
//     a(f)   = normalize( mean over C of |f|^p , flattened to (B, H W) )     (L2, per sample)
//     loss   = sum over pairs of  mean over (B, H W) of (a(f_s) - a(f_t))^2
//
// Paper: Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017.
// Reference followed: RepDistiller distiller_zoo/AT.py (Attention, p = 2; train_student.py sums the
// per-pair losses; its CIFAR runs use layer1..layer3 and weight beta = 1000). The authors' code
// (szagoruyko/attention-transfer) has the same per-pair mean and adds beta/2 outside.
//
// Shapes: B batch, C channels (student and teacher may differ), H x W a map.
//
// Choices where the references differ or are silent:
//  - Sizes: when the two maps differ, the larger is adaptive-average-pooled to the smaller's size,
//    as RepDistiller (which pools to a square of the smaller height; here the smaller H x W).
//  - A ViT's tokens (B, N, C) are read as the map of their patch grid (token_grid.h: prefix
//    tokens dropped, (B, C, h, w)), so a ViT teacher or student pairs with a CNN's map; the
//    attention map is then the grid's. (The references have CNNs on both sides.)
//  - |f|^p, as the paper's definition, where RepDistiller writes f.pow(p): the same for any even p
//    (p = 2, the default) and for non-negative (post-ReLU) features.
// Backward: through pow, mean, normalize and the pooling (ops record their own nodes).
#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/token_grid.h"
#include "engine/ops.h"

namespace retort {
namespace {

class AttentionTransfer : public Objective {
public:
    AttentionTransfer(const ObjectiveSetup& setup, double p)
        : Objective("AttentionTransfer"), pairs_(setup.pairs.size()), p_(p) {
        for (const auto& pair : setup.pairs) {
            feature_map_shape(pair.student_shape, -1, "at: student feature '" + pair.name + "'");
            feature_map_shape(pair.teacher_shape, -1, "at: teacher feature '" + pair.name + "'");
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check_feature_pairs(in, pairs_, "at");
        Tensor total;
        for (const FeaturePair& pair : in.features) {
            const Tensor student = as_feature_map(pair.student, -1, "at: student feature '" + pair.name + "'");
            const Tensor teacher = as_feature_map(pair.teacher, -1, "at: teacher feature '" + pair.name + "'");
            auto [s, t] = pool_to_common_size(student, teacher, "at", "pair '" + pair.name + "'");
            Tensor loss = mean(square(attention(s) - attention(t)));
            total = total.defined() ? total + loss : loss;
        }
        return total;
    }

private:
    Tensor attention(const Tensor& f) const {
        Tensor energy = mean(pow(abs(f), p_), {1});  // (B, H, W)
        return normalize(energy.reshape({f.size(0), -1}), 2.0, 1);
    }

    std::size_t pairs_;
    double p_;
};

}  // namespace

ObjectiveEntry at_entry() {
    ObjectiveEntry e;
    e.name = "at";
    e.paper = "Zagoruyko & Komodakis 2017, Paying More Attention to Attention";
    e.reference = "RepDistiller (HobbitLong): distiller_zoo/AT.py";
    e.taps = "one or more feature-map pairs (RepDistiller: layer1, layer2, layer3); ViT tokens as their patch grid";
    e.defaults = "p=2";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& c) {
        c.declare_double("at", "p", 2.0, 1.0, 16.0,
                         "exponent of the attention map: mean over channels of |f|^p");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<AttentionTransfer>(setup, c.get_double("at.p"));
    };
    return e;
}

}  // namespace retort
