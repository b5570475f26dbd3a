// distill/objectives/cc.cpp: correlation congruence (CC).
//
// Peng, Jin, Liu, Li, Wu, Liu, Zhou, Zhang, "Correlation Congruence for Knowledge Distillation",
// ICCV 2019. Reference code followed: RepDistiller distiller_zoo/CC.py (Correlation, "code emailed
// by the original author") with the LinearEmbed heads train_student.py puts in front of it.
//
// Shapes: one feature pair (RepDistiller: the pooled features, feat[-1]), student (B, ...) and
// teacher (B, ...), flattened per sample; F = feat_dim.
//
//   e_s = W_s x_s + b_s,  e_t = W_t x_t + b_t       linear embeddings (B, F), both trained
//   delta = |e_s - e_t|                              (B, F)
//   loss = mean over i = 0 .. B-2 of  sum_f delta[i][f] * delta[i+1][f]
//
// This is what RepDistiller trains as "CC": the correlation between consecutive samples of the
// batch of the embedding differences, not the paper's Taylor-expanded Gaussian-kernel correlation
// matrices (OFA-KD's correlation.py follows the paper instead). Both heads are nn.Linear with
// PyTorch's default initialization; the teacher's head is trained too (its input has no graph,
// its weights do). A batch of one sample has no consecutive pair: it is refused.
// State-dict names: embed_s.linear.{weight,bias}, embed_t.linear.{weight,bias}.
#include "distill/objectives/relation.h"
#include "engine/ops.h"

namespace retort {
namespace {

class Cc : public Objective {
public:
    Cc(const ObjectiveSetup& setup, std::int64_t feat_dim)
        : Objective("CC"), setup_pair_(setup.pairs.at(0)) {
        embed_s_ = register_module("embed_s", std::make_shared<relation::EmbedHead>(
            relation::per_sample_numel(setup_pair_.student_shape), feat_dim, false));
        embed_t_ = register_module("embed_t", std::make_shared<relation::EmbedHead>(
            relation::per_sample_numel(setup_pair_.teacher_shape), feat_dim, false));
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, 1, "cc", 2);
        relation::check_pair_shapes(in.features[0], setup_pair_, "cc");
        Tensor delta = abs(embed_s_->forward(in.features[0].student) -
                           embed_t_->forward(in.features[0].teacher.detach()));
        const std::int64_t batch = delta.size(0);
        Tensor consecutive = narrow(delta, 0, 0, batch - 1) * narrow(delta, 0, 1, batch - 1);
        return mean(sum(consecutive, {1}));
    }

private:
    ObjectiveSetup::Pair setup_pair_;
    std::shared_ptr<relation::EmbedHead> embed_s_, embed_t_;
};

}  // namespace

ObjectiveEntry cc_entry() {
    ObjectiveEntry e;
    e.name = "cc";
    e.default_taps = "pre_logits";
    e.paper = "Peng et al. 2019, Correlation Congruence for Knowledge Distillation (ICCV)";
    e.reference = "RepDistiller distiller_zoo/CC.py (Correlation) + models/util.py LinearEmbed";
    e.taps = "one feature pair, flattened per sample (usually pre_logits)";
    e.defaults = "feat_dim=128";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config& config) {
        config.declare_int("cc", "feat_dim", 128, 1, 1 << 16,
                           "width of the linear embeddings of student and teacher features");
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<Cc>(setup, config.get_int("cc.feat_dim"));
    };
    return e;
}

}  // namespace retort
