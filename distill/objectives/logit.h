// distill/objectives/logit.h: the logit objectives (kd, dkd, dist, logit_std, ce) and the input
// checks they share. Each objective's formula, paper and reference code are at the top of its own
// file; logit_table.cpp lists them in the table of objectives.
//
// Shapes: B batch, K classes. Logits are (B, K) float; labels (B) int64.
#pragma once

#include <memory>

#include "distill/objective.h"

namespace retort {

// Each objective declares the keys of its config section (the papers' CIFAR-100 defaults) and
// builds itself from the resolved config.
void declare_kd(Config& config);
std::shared_ptr<Objective> create_kd(const Config& config, const ObjectiveSetup& setup);
void declare_dkd(Config& config);
std::shared_ptr<Objective> create_dkd(const Config& config, const ObjectiveSetup& setup);
void declare_dist(Config& config);
std::shared_ptr<Objective> create_dist(const Config& config, const ObjectiveSetup& setup);
void declare_logit_std(Config& config);
std::shared_ptr<Objective> create_logit_std(const Config& config, const ObjectiveSetup& setup);
void declare_ce(Config& config);
std::shared_ptr<Objective> create_ce(const Config& config, const ObjectiveSetup& setup);

// Hinton's distillation term, shared by kd and logit_std:
//   T^2 / B * sum_b KL(softmax(t_b / T) || softmax(s_b / T))
// s carries the student's graph; t is used as a constant.
Tensor softened_kl(const Tensor& student, const Tensor& teacher, double T);

// Input checks, each an Error that names the objective and the shapes.
// The student's logits: defined, float, (B, K) with B >= 1 and K >= min_classes.
void check_student_logits(const ObjectiveInputs& in, const char* objective,
                          std::int64_t min_classes = 1);
// The student's and the teacher's logits: both as above, with one shape and one dtype.
void check_logit_pair(const ObjectiveInputs& in, const char* objective,
                      std::int64_t min_classes = 1);
// The labels: int64, one per student row, each in [0, K). Call after the logit checks.
void check_labels(const ObjectiveInputs& in, const char* objective);

// (B, K) in dtype: 1 at (b, labels[b]), 0 elsewhere. A constant (no graph).
Tensor label_mask(const Tensor& labels, std::int64_t classes, DType dtype);

}  // namespace retort
