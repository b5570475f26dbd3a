// distill/objectives/logit_inputs.cpp: what the logit objectives check before they compute, and
// the label mask DKD builds its target / non-target split from.
//
// Shapes: B batch, K classes. Logits (B, K) float32 or float64; labels (B) int64.
// The checks run first so a wrong input is a message naming the objective and the shapes, not a
// failure deep inside softmax or a silent broadcast of a (1, K) teacher over a (B, K) student.
#include "distill/objectives/logit.h"

#include "engine/ops.h"

namespace retort {

namespace {

void check_logits(const Tensor& logits, const char* objective, const char* whose,
                  std::int64_t min_classes) {
    require(logits.defined(), objective, ": the ", whose, " logits are missing");
    require(logits.is_floating_point(), objective, ": the ", whose,
            " logits must be float32 or float64, got ", dtype_name(logits.dtype()));
    require(logits.dim() == 2, objective, ": the ", whose, " logits must be (B, K), got shape ",
            shape_str(logits.shape()));
    require(logits.size(0) >= 1, objective, ": the batch is empty (", whose, " logits ",
            shape_str(logits.shape()), ")");
    require(logits.size(1) >= min_classes, objective, " needs at least ", min_classes,
            " classes, the ", whose, " logits are ", shape_str(logits.shape()));
}

}  // namespace

void check_student_logits(const ObjectiveInputs& in, const char* objective,
                          std::int64_t min_classes) {
    check_logits(in.student_logits, objective, "student", min_classes);
}

void check_logit_pair(const ObjectiveInputs& in, const char* objective, std::int64_t min_classes) {
    check_logits(in.student_logits, objective, "student", min_classes);
    check_logits(in.teacher_logits, objective, "teacher", min_classes);
    const Shape& s = in.student_logits.shape();
    const Shape& t = in.teacher_logits.shape();
    require(s == t, objective, ": student logits ", shape_str(s), " and teacher logits ",
            shape_str(t), " differ in ", s[0] != t[0] ? "batch size" : "number of classes");
    require(in.student_logits.dtype() == in.teacher_logits.dtype(), objective,
            ": student logits are ", dtype_name(in.student_logits.dtype()), " but teacher logits are ",
            dtype_name(in.teacher_logits.dtype()));
}

void check_labels(const ObjectiveInputs& in, const char* objective) {
    const Tensor& labels = in.labels;
    require(labels.defined(), objective, ": the labels are missing (", objective,
            " needs each sample's class)");
    require(labels.dtype() == DType::i64, objective, ": labels must be int64, got ",
            dtype_name(labels.dtype()));
    const std::int64_t batch = in.student_logits.size(0), classes = in.student_logits.size(1);
    require(labels.shape() == Shape{batch}, objective, ": labels must be (B) with B = ", batch,
            ", one per row of the logits, got shape ", shape_str(labels.shape()));
    const std::int64_t* y = labels.data<std::int64_t>();
    for (std::int64_t b = 0; b < batch; ++b)
        require(y[b] >= 0 && y[b] < classes, objective, ": label ", y[b], " of sample ", b,
                " is outside [0, ", classes, ")");
}

Tensor label_mask(const Tensor& labels, std::int64_t classes, DType dtype) {
    // (B, 1) == (K) broadcasts to (B, K): 1 where the class index equals the label
    return eq(labels.detach().unsqueeze(1), arange(classes).to(labels.device())).to(dtype);
}

}  // namespace retort
