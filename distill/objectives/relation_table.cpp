// distill/objectives/relation_table.cpp: the relation objectives' rows of the objective table,
// and the input checks and embedding head those objectives share (relation.h).
#include "distill/objectives/relation.h"

#include <algorithm>

#include "engine/ops.h"

namespace retort {

void add_relation_objectives(std::vector<ObjectiveEntry>& table) {
    table.push_back(rkd_entry());
    table.push_back(pkt_entry());
    table.push_back(crd_entry());
    table.push_back(vid_entry());
    table.push_back(cc_entry());
    table.push_back(reviewkd_entry());
    table.push_back(ofa_entry());
    table.push_back(kdsvd_entry());
}

namespace relation {

void check_pairs(const ObjectiveInputs& in, std::size_t expected, const std::string& objective,
                 std::int64_t min_batch) {
    require(in.features.size() == expected, objective, ": built for ", expected,
            " feature pair(s), got ", in.features.size());
    std::int64_t batch = -1;
    for (const FeaturePair& pair : in.features) {
        require(pair.student.defined() && pair.teacher.defined(), objective, ": pair '",
                pair.name, "' is missing its student or teacher tensor");
        require(pair.student.dim() >= 1 && pair.teacher.dim() >= 1, objective, ": pair '",
                pair.name, "' needs a batch dim, got student ", shape_str(pair.student.shape()),
                " and teacher ", shape_str(pair.teacher.shape()));
        require(pair.student.is_floating_point() && pair.teacher.is_floating_point(), objective,
                ": pair '", pair.name, "' must hold float tensors");
        require(pair.student.dtype() == pair.teacher.dtype(), objective, ": pair '", pair.name,
                "' has a ", dtype_name(pair.student.dtype()), " student but a ",
                dtype_name(pair.teacher.dtype()), " teacher");
        const std::int64_t b = pair.student.size(0);
        require(pair.teacher.size(0) == b, objective, ": pair '", pair.name, "' has batch ", b,
                " on the student side but ", pair.teacher.size(0), " on the teacher side (student ",
                shape_str(pair.student.shape()), ", teacher ", shape_str(pair.teacher.shape()), ")");
        require(batch < 0 || b == batch, objective, ": pair '", pair.name, "' has batch ", b,
                " but the first pair has ", batch);
        batch = b;
        require(b >= min_batch, objective, ": needs a batch of at least ", min_batch,
                " samples, got ", b);
    }
}

void check_pair_shapes(const FeaturePair& pair, const ObjectiveSetup::Pair& expected,
                       const std::string& objective) {
    auto same_sample_shape = [](const Shape& got, const Shape& want) {
        return got.size() == want.size() && std::equal(got.begin() + 1, got.end(), want.begin() + 1);
    };
    require(same_sample_shape(pair.student.shape(), expected.student_shape), objective, ": pair '",
            pair.name, "': student feature ", shape_str(pair.student.shape()),
            " does not match the shape it was built for, ", shape_str(expected.student_shape),
            " (any batch size)");
    require(same_sample_shape(pair.teacher.shape(), expected.teacher_shape), objective, ": pair '",
            pair.name, "': teacher feature ", shape_str(pair.teacher.shape()),
            " does not match the shape it was built for, ", shape_str(expected.teacher_shape),
            " (any batch size)");
}

void check_logits(const ObjectiveInputs& in, bool need_labels, const std::string& objective) {
    const Tensor& s = in.student_logits;
    const Tensor& t = in.teacher_logits;
    require(s.defined() && t.defined(), objective, ": needs student and teacher logits");
    require(s.dim() == 2 && t.shape() == s.shape(), objective,
            ": student and teacher logits must both be (B, K), got ", shape_str(s.shape()), " and ",
            shape_str(t.shape()));
    require(s.is_floating_point() && s.dtype() == t.dtype(), objective,
            ": logits must be float tensors of one dtype");
    for (const FeaturePair& pair : in.features)
        require(pair.student.size(0) == s.size(0), objective, ": logits have batch ", s.size(0),
                " but pair '", pair.name, "' has ", pair.student.size(0));
    if (!need_labels) return;
    const Tensor& y = in.labels;
    require(y.defined() && y.dim() == 1 && y.size(0) == s.size(0), objective,
            ": needs labels (B) = (", s.size(0), "), got ",
            y.defined() ? shape_str(y.shape()) : std::string("none"));
    require(y.dtype() == DType::i64 || y.dtype() == DType::i32, objective,
            ": labels must be int32 or int64 class indices, got ", dtype_name(y.dtype()));
    for (std::int64_t label : y.to_vector<std::int64_t>())
        require(label >= 0 && label < s.size(1), objective, ": label ", label,
                " is outside [0, ", s.size(1), ")");
}

Tensor flatten_samples(const Tensor& x) { return x.reshape({x.size(0), -1}); }

std::int64_t per_sample_numel(const Shape& shape) {
    std::int64_t n = 1;
    for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
}

Tensor l2_normalize_rows(const Tensor& x) { return x / sqrt(sum(x * x, {1}, true)); }

EmbedHead::EmbedHead(std::int64_t dim_in, std::int64_t dim_out, bool l2_normalize)
    : UnaryModule(l2_normalize ? "Embed" : "LinearEmbed"), l2_normalize(l2_normalize) {
    linear = register_module("linear", std::make_shared<Linear>(dim_in, dim_out));
}

Tensor EmbedHead::forward(const Tensor& x) {
    Tensor y = linear->forward(flatten_samples(x));
    return l2_normalize ? l2_normalize_rows(y) : y;
}

}  // namespace relation
}  // namespace retort
