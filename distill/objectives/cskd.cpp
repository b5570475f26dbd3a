// distill/objectives/cskd.cpp: cumulative spatial knowledge distillation with cumulative knowledge
// fusion (CKF), `cskd`: a CNN teacher's per-position predictions teach a DeiT student's patches.
//
//   P    (B, K, h, w)  the teacher's classifier at every position of its last map (dense_logits)
//   P_g  (B, K)        their spatial mean, the teacher's global prediction
//   S    (B, K, h, w)  the student's distillation head on every patch token after the final norm
//                      (dense_dist_logits, (B, N, K)), laid on the patch grid and average-pooled
//                      to h x w
//   alpha = 1 - x (linear), (1 - x)^2 (quadratic) or cos(pi x / 2) (cosine), x = e / E with e the
//           0-based epoch and E the run's epochs; x = 0 (alpha = 1) when E = 0; or a fixed alpha
//   y_bhw  = argmax_k (alpha P_bkhw + (1 - alpha) P_g,bk)    CKF: local targets early, global late
//   L_cskd = mean over (b, h, w) of CE(S_b,:,h,w, y_bhw)
//   loss   = L_cskd + dist_weight * CE(D, argmax_k P_g)
//            with D (B, K) the distillation head's logits, from the optional second pair
//
// Paper: Zhao, Song, Liang, "Cumulative Spatial Knowledge Distillation for Vision Transformers",
// ICCV 2023.
// Reference followed: github.com/Zzzzz1/CSKD: cskd/cskd.py CSKDLoss (get_decay_ratio: 'linear',
// 'x2' = quadratic, 'cos' = cosine; get_loss_cskd and get_loss_deit with loss type "hard";
// align_stu_logits), cskd/models/vision_transformer.py (head_dist on the patch tokens; at
// inference (cls + dist + mean dense) / 3, which retort's DeiT gives with eval_head = cskd),
// configs/cskd_*.py (deit_alpha 0.5, cksd_loss_weight 1, cskd_decay_func linear).
//
// Shapes: B batch, N = n x n patch tokens, K classes, h x w the teacher's grid.
//
// How the reference's total splits: the reference trains with
//     0.5 CE(class head, labels) + 0.5 CE(distillation head, argmax P_g) + 1.0 L_cskd.
// Here the class head's CE is the `ce` objective and the other two terms are this one, so the
// reference is `objectives = ce:0.5, cskd:1` with dist_weight = 0.5 (the default). The outer
// weight scales both terms of cskd; dist_weight sets their ratio.
//
// Choices where the reference is specific to its setting:
// - Grids: the reference hard-codes a 14x14 student pooled with kernel 2 to the RegNetY-16GF's
//   7x7. Here the student's grid is adaptive-average-pooled to the teacher's (the same numbers
//   when it is twice the teacher's); a student grid coarser than the teacher's pools the teacher's
//   dense logits instead (feature_map_common.h's rule).
// - P_g is the spatial mean of the dense logits, as in the reference, for both targets; the
//   second pair's teacher tensor (the teacher's logits) is only shape-checked. For a linear
//   classifier after global average pooling (the ResNets) the two are the same numbers.
// - The reference's "soft" variants (KL at a temperature instead of argmax targets) are not
//   offered: its released configs all use "hard".
//
// Backward: through cross_entropy (softmax minus the one-hot target); the targets are constants.
// No parameters.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>

#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/spatial.h"
#include "distill/objectives/token_grid.h"
#include "engine/ops.h"

namespace retort {
namespace {

enum class Schedule { linear, quadratic, cosine };

Schedule schedule_named(const std::string& name) {
    if (name == "quadratic") return Schedule::quadratic;
    if (name == "cosine") return Schedule::cosine;
    return Schedule::linear;
}

// "schedule" -> nullopt; a number in [0, 1] -> that number; anything else -> an Error.
std::optional<double> parse_alpha(const std::string& text) {
    if (text == "schedule") return std::nullopt;
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    require(!text.empty() && *end == '\0' && value >= 0.0 && value <= 1.0,
            "cskd: alpha must be 'schedule' or a number in [0, 1], got '", text, "'");
    return value;
}

std::string pair_shapes(const Shape& student, const Shape& teacher) {
    return cat("student ", shape_str(student), ", teacher ", shape_str(teacher));
}

// The first pair: the student's dense logits (B, N, K) and the teacher's (B, K, h, w).
void check_dense_shapes(const Shape& s, const Shape& t, const std::string& pair) {
    require(s.size() == 3, "cskd: pair '", pair, "': the student's dense logits must be (B, N, K) ",
            "(a DeiT's dense_dist_logits tap), got ", shape_str(s));
    require(t.size() == 4, "cskd: pair '", pair, "': the teacher's dense logits must be ",
            "(B, K, h, w) (a CNN's dense_logits tap), got ", shape_str(t));
    require(s[0] == t[0], "cskd: pair '", pair, "': student batch ", s[0], " but teacher batch ",
            t[0], " (", pair_shapes(s, t), ")");
    require(s[2] == t[1], "cskd: pair '", pair, "': the student's dense logits have ", s[2],
            " classes but the teacher's have ", t[1], " (", pair_shapes(s, t), ")");
}

// The second pair: the distillation head's logits (B, K) and the teacher's logits (B, K).
void check_dist_shapes(const Shape& s, const Shape& t, const Shape& dense_teacher,
                       const std::string& pair) {
    require(s.size() == 2 && t.size() == 2, "cskd: pair '", pair, "': the distillation head's ",
            "logits and the teacher's logits must be (B, K) (dist_logits:logits), got ",
            pair_shapes(s, t));
    require(s[0] == dense_teacher[0] && t[0] == dense_teacher[0], "cskd: pair '", pair,
            "' has batch ", s[0], " (student) and ", t[0], " (teacher) but the dense pair has ",
            dense_teacher[0]);
    require(s[1] == dense_teacher[1] && t[1] == dense_teacher[1], "cskd: pair '", pair, "' has ",
            s[1], " (student) and ", t[1], " (teacher) classes but the dense logits have ",
            dense_teacher[1]);
}

class CumulativeSpatialKD : public Objective {
public:
    CumulativeSpatialKD(const ObjectiveSetup& setup, std::optional<double> alpha, Schedule schedule,
                        double dist_weight)
        : Objective("CSKD"), pairs_(setup.pairs.size()), alpha_(alpha), schedule_(schedule),
          dist_weight_(dist_weight) {
        const auto& dense = setup.pairs.at(0);
        check_dense_shapes(dense.student_shape, dense.teacher_shape, dense.name);
        if (pairs_ == 2) {
            const auto& dist = setup.pairs[1];
            check_dist_shapes(dist.student_shape, dist.teacher_shape, dense.teacher_shape,
                              dist.name);
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        require(in.features.size() == pairs_, "cskd: built for ", pairs_, " feature pair(s), got ",
                in.features.size());
        for (const FeaturePair& pair : in.features)
            require(pair.student.defined() && pair.teacher.defined() &&
                        pair.student.is_floating_point() && pair.teacher.is_floating_point(),
                    "cskd: pair '", pair.name, "' must hold a float student and teacher tensor");
        const FeaturePair& dense = in.features[0];
        check_dense_shapes(dense.student.shape(), dense.teacher.shape(), dense.name);

        const Tensor teacher_dense = dense.teacher.detach();
        const std::int64_t B = teacher_dense.size(0), K = teacher_dense.size(1);
        const Tensor teacher_global = mean(teacher_dense, {2, 3});  // (B, K)
        const Tensor student_map =
            tokens_to_map(dense.student, -1, "cskd: the student's dense logits");
        auto [student, teacher] = pool_to_common_size(student_map, teacher_dense, "cskd",
                                                      "the student's and teacher's dense logits");
        const double a = fusion_alpha(in);
        const Tensor fused = teacher * a + teacher_global.reshape({B, K, 1, 1}) * (1.0 - a);
        Tensor loss = cross_entropy(student, argmax(fused, 1));
        if (pairs_ == 1) return loss;

        const FeaturePair& dist = in.features[1];
        check_dist_shapes(dist.student.shape(), dist.teacher.shape(), teacher_dense.shape(),
                          dist.name);
        return loss + dist_weight_ * cross_entropy(dist.student, argmax(teacher_global, 1));
    }

private:
    double fusion_alpha(const ObjectiveInputs& in) const {
        if (alpha_) return *alpha_;
        const double x = in.epochs > 0 ? std::clamp(static_cast<double>(in.epoch) /
                                                        static_cast<double>(in.epochs), 0.0, 1.0)
                                       : 0.0;
        switch (schedule_) {
            case Schedule::quadratic: return (1.0 - x) * (1.0 - x);
            case Schedule::cosine: return std::cos(std::numbers::pi / 2.0 * x);
            case Schedule::linear: break;
        }
        return 1.0 - x;
    }

    std::size_t pairs_;
    std::optional<double> alpha_;
    Schedule schedule_;
    double dist_weight_;
};

}  // namespace

ObjectiveEntry cskd_entry() {
    ObjectiveEntry e;
    e.name = "cskd";
    e.paper = "Zhao, Song, Liang 2023, Cumulative Spatial Knowledge Distillation for Vision "
              "Transformers";
    e.reference = "Zzzzz1/CSKD: cskd/cskd.py CSKDLoss, cskd/models/vision_transformer.py";
    e.taps = "dense_dist_logits:dense_logits (DeiT student (B, N, K), CNN teacher (B, K, h, w)), "
             "then optionally dist_logits:logits (the distillation head's CE)";
    e.defaults = "alpha=schedule, schedule=linear, dist_weight=0.5";
    e.default_taps = "dense_dist_logits:dense_logits, dist_logits:logits";
    e.min_pairs = 1;
    e.max_pairs = 2;
    e.declare = [](Config& c) {
        ConfigKey alpha;
        alpha.section = "cskd";
        alpha.key = "alpha";
        alpha.default_value = "schedule";
        alpha.help = "CKF weight of the local (per-position) teacher prediction against the global "
                     "one: 'schedule' (from `schedule` and the epoch) or a fixed number in [0, 1]";
        alpha.validate = [](const std::string& text) -> std::string {
            try {
                parse_alpha(text);
                return "";
            } catch (const Error&) {
                return "must be 'schedule' or a number in [0, 1], got '" + text + "'";
            }
        };
        c.declare(std::move(alpha));
        c.declare_string("cskd", "schedule", "linear",
                         "how alpha falls from 1 to 0 over the run, x = epoch / epochs: linear "
                         "1 - x, quadratic (1 - x)^2, cosine cos(pi x / 2)",
                         {"linear", "quadratic", "cosine"});
        c.declare_double("cskd", "dist_weight", 0.5, 0.0, 1000.0,
                         "weight of CE(distillation head, argmax of the teacher's global "
                         "prediction), the second pair (the reference's deit_alpha)");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<CumulativeSpatialKD>(setup, parse_alpha(c.get_string("cskd.alpha")),
                                                     schedule_named(c.get_string("cskd.schedule")),
                                                     c.get_double("cskd.dist_weight"));
    };
    return e;
}

}  // namespace retort
