// distill/objectives/relation.h: the relation group of objectives (RKD, PKT, CRD, VID, CC,
// ReviewKD, OFA, KDSVD): their table rows and the few pieces they share.
//
// Each objective lives in its own file (distill/objectives/<name>.cpp), which opens with the
// formula, the paper and the reference code followed, and ends with its table row
// (<name>_entry()); relation_table.cpp lists the rows in order.
//
// Shapes: B batch, C channels, H x W a feature map, D a flattened per-sample feature.
#pragma once

#include <cstddef>
#include <string>

#include "distill/objective.h"
#include "layers/linear.h"

namespace retort {

ObjectiveEntry rkd_entry();
ObjectiveEntry pkt_entry();
ObjectiveEntry crd_entry();
ObjectiveEntry vid_entry();
ObjectiveEntry cc_entry();
ObjectiveEntry reviewkd_entry();
ObjectiveEntry ofa_entry();
ObjectiveEntry kdsvd_entry();

namespace relation {

// The batch brings as many feature pairs as the objective was built for, each with a student and
// a teacher tensor of one batch size (at least min_batch samples); errors name the objective.
void check_pairs(const ObjectiveInputs& in, std::size_t expected, const std::string& objective,
                 std::int64_t min_batch = 1);

// A pair's per-sample shapes (everything after the batch dim) are those the objective's
// connectors were sized for in the setup.
void check_pair_shapes(const FeaturePair& pair, const ObjectiveSetup::Pair& expected,
                       const std::string& objective);

// Logits (B, K) from student and teacher with the pairs' batch size, and (when wanted) labels
// (B) of integer class indices in [0, K).
void check_logits(const ObjectiveInputs& in, bool need_labels, const std::string& objective);

// (B, ...) -> (B, D): one flat feature vector per sample.
Tensor flatten_samples(const Tensor& x);

// Elements per sample of a setup shape (B, ...): the D of flatten_samples.
std::int64_t per_sample_numel(const Shape& shape);

// x / ||x||_2 along dim 1, without an epsilon, as RepDistiller's Normalize layer.
Tensor l2_normalize_rows(const Tensor& x);

// A linear embedding of flattened samples, optionally followed by l2 normalization of each row:
// RepDistiller's LinearEmbed (cc) and Embed (crd). One child named "linear", so state-dict keys
// read "embed_s.linear.weight" as in the reference.
class EmbedHead : public UnaryModule {
public:
    EmbedHead(std::int64_t dim_in, std::int64_t dim_out, bool l2_normalize);
    Tensor forward(const Tensor& x) override;

    std::shared_ptr<Linear> linear;
    bool l2_normalize;
};

}  // namespace relation
}  // namespace retort
