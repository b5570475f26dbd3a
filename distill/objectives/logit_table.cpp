// distill/objectives/logit_table.cpp: the logit objectives' rows of the objective table.
// They read the student's and the teacher's logits (and, some, the labels), never feature pairs.
// Formulas, references and the choices made where references differ: each objective's own file.
#include "distill/objectives/logit.h"

namespace retort {

void add_logit_objectives(std::vector<ObjectiveEntry>& table) {
    table.push_back({.name = "kd",
                     .paper = "Hinton et al. 2015, Distilling the Knowledge in a Neural Network",
                     .reference = "RepDistiller distiller_zoo/KD.py (DistillKL)",
                     .taps = "logits",
                     .defaults = "T=4",
                     .uses_teacher_logits = true,
                     .uses_labels = false,
                     .default_taps = "",
                     .min_pairs = 0,
                     .max_pairs = 0,
                     .declare = declare_kd,
                     .create = create_kd});
    table.push_back({.name = "dkd",
                     .paper = "Zhao et al. CVPR 2022, Decoupled Knowledge Distillation",
                     .reference = "mdistiller mdistiller/distillers/DKD.py",
                     .taps = "logits, labels",
                     .defaults = "alpha=1, beta=8, T=4, warmup=20",
                     .uses_teacher_logits = true,
                     .uses_labels = true,
                     .default_taps = "",
                     .min_pairs = 0,
                     .max_pairs = 0,
                     .declare = declare_dkd,
                     .create = create_dkd});
    table.push_back({.name = "dist",
                     .paper = "Huang et al. NeurIPS 2022, Knowledge Distillation from A Stronger "
                              "Teacher (DIST)",
                     .reference = "DIST_KD (hunto), the DIST loss",
                     .taps = "logits",
                     .defaults = "beta=1, gamma=1, tau=1",
                     .uses_teacher_logits = true,
                     .uses_labels = false,
                     .default_taps = "",
                     .min_pairs = 0,
                     .max_pairs = 0,
                     .declare = declare_dist,
                     .create = create_dist});
    table.push_back({.name = "logit_std",
                     .paper = "Sun et al. CVPR 2024, Logit Standardization in Knowledge Distillation",
                     .reference = "logit-standardization-KD mdistiller/distillers/KD.py (logit_stand)",
                     .taps = "logits",
                     .defaults = "T=2",
                     .uses_teacher_logits = true,
                     .uses_labels = false,
                     .default_taps = "",
                     .min_pairs = 0,
                     .max_pairs = 0,
                     .declare = declare_logit_std,
                     .create = create_logit_std});
    table.push_back({.name = "ce",
                     .paper = "cross-entropy with hard labels; label smoothing: Szegedy et al. CVPR 2016",
                     .reference = "torch.nn.functional.cross_entropy",
                     .taps = "logits, labels",
                     .defaults = "label_smoothing=0",
                     .uses_teacher_logits = false,
                     .uses_labels = true,
                     .default_taps = "",
                     .min_pairs = 0,
                     .max_pairs = 0,
                     .declare = declare_ce,
                     .create = create_ce});
}

}  // namespace retort
