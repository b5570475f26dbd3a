// distill/distill_config.h: the configuration of a distillation run (`retort distill`): everything
// a training run has, with [model] as the student, plus the teacher, the objectives and their
// hyperparameters; or, in mode = dml, the peers the student learns with instead of a teacher; or,
// in mode = self_distill and born_again, the network's own earlier selves as its teachers.
//
//   [model] [data] [optim] [schedule] [run]   as in distill/train_config.h; [model] is the student
//   [distill]  mode             distill | dml | self_distill | born_again (distill). distill: a
//                               frozen teacher and weighted objectives (the keys below). dml: deep
//                               mutual learning, students trained together without a teacher
//                               ([dml] below). self_distill: the network's best checkpoint so far
//                               teaches it ([self_distill] below). born_again: generations of the
//                               same network, each taught by the previous one ([born_again]
//                               below). In the last three, teacher, teacher_weights, objectives,
//                               pairs and teacher_cache are refused, since nothing would read them
//              teacher          model spec of the teacher (required in mode = distill)
//              teacher_weights  a weights file (best.safetensors or last.safetensors of a
//                               `retort train` run, or a PyTorch state dict), or the directory of a
//                               `retort train` run, meaning its best.safetensors (required in
//                               mode = distill)
//              objectives       name:weight, ... e.g. "ce:0.1, kd:0.9" or "ce:1, at:1000": the
//                               loss is the weighted sum; names from the table of objectives,
//                               weights finite and >= 0, at least one objective (required in
//                               mode = distill)
//              pairs            student_tap:teacher_tap, ... the feature pairs every feature
//                               objective reads unless its own section sets `pairs`; "layer2" is
//                               short for layer2:layer2. "": the default pairs (below) ("")
//              teacher_cache    off | memory | file: the teacher's logits and taps computed once
//                               per training sample and input variant and reused (see
//                               distill/teacher_cache.h) ("off")
//              teacher_cache_file  where `file` keeps them ("": RUN_DIR/teacher-cache.bin; the
//                               seeds of a --seeds run share RUN_DIR/teacher-cache.bin)
//              teacher_cache_limit_gib  the most memory or disk the cache may take (8)
//   [<objective>]  its hyperparameters (declared by the objective, e.g. [kd] T = 4), and for a
//              feature objective `pairs`, overriding [distill] pairs for that objective alone
//              (e.g. [fitnet] pairs = layer2:layer2 next to [at] with the default stage outputs)
//   [dml]      peers            the model specs of the other students, separated by ';' ("": one
//                               peer with [model]'s spec, i.e. two students); [model] is student 0
//                               (only in mode = dml) ("")
//              T                temperature of the mutual KL term, > 0 (1, the paper's)
//              alpha            weight of the mutual KL term, >= 0 (1, the paper's)
//              (the loss, the students' initialization and the run directory: mutual_learning.h)
//   [self_distill]  start       the first epoch (1-based) that distils, >= 1 (2: one epoch of plain
//                               training makes the first teacher)
//              lambda           weight of the KD term in (1 - lambda) CE + lambda T^2 KL, [0, 1] (0.5)
//              T                temperature of the KD term, > 0 (4)
//              update           best | every_k (best): the teacher is replaced by the network whenever
//                               its validation top-1 improves (needs a validation split: data.val_size
//                               > 0; checked once the data is open), or after every `every`-th epoch
//              every            the k of update = every_k, >= 1 (1)
//              (the loss and the teacher's life: self_distillation.h)
//   [born_again]  generations   born-again generations after generation 0, >= 1 (3)
//              first            "" (generation 0 is trained here from the labels) or the directory
//                               of a finished `retort train` run of [model] on the same data and
//                               seed, whose best.safetensors is generation 0 ("")
//              with_labels      true: generation k >= 1 learns from CE + T^2 KL; false: T^2 KL
//                               alone (true)
//              T                temperature of the KD term, > 0 (1: the teacher's own distribution)
//              (the generations, their seeds and the run directory: born_again.h)
//
// A key of [dml], [self_distill] or [born_again] that differs from its default is refused in the
// other modes, since nothing would read it.
//
// Default pairs, when neither [distill] pairs nor the objective's own is given:
//   CNN student and teacher (both have layer1, layer2, ...): layerK:layerK for K = 1 .. the
//     smaller number of stages;
//   ViT student and teacher (tokens.L): n = the smaller depth pairs at proportional depths,
//     tokens.(ceil(k Ds / n) - 1):tokens.(ceil(k Dt / n) - 1) for k = 1 .. n (Ds, Dt the depths);
//   anything else: an Error asking for pairs.
//
// Not supported in a distillation run (refused with an Error): data.batch_transform (mixup and
// cutmix make soft targets, but the objectives read hard labels) and, in mode = distill,
// optim.label_smoothing (set [ce] label_smoothing instead; in the other modes it smooths the
// cross-entropy against the labels).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "distill/train_config.h"
#include "engine/io/config.h"

namespace retort {

// The training schema, [distill], every objective's section, and `pairs` in the section of
// every feature objective.
Config distill_config_schema();

struct ObjectiveTerm {
    std::string name;  // in the table of objectives
    double weight = 1;
};

struct TapPair {
    std::string student, teacher;
    // The pair's name as objectives see it: the tap, or "student:teacher" when they differ.
    std::string name() const { return student == teacher ? student : student + ":" + teacher; }
};

// [dml]: the other students of a mutual-learning run and the weight of their KL term.
struct MutualLearningConfig {
    std::vector<std::string> peers;  // model specs of students 1, 2, ... (at least one)
    double T = 1;
    double alpha = 1;
};

// [self_distill]: the network's best (or latest) checkpoint as its own teacher.
struct SelfDistillConfig {
    std::int64_t start = 2;        // the first epoch (1-based) that distils
    double lambda = 0.5;           // loss = (1 - lambda) CE + lambda T^2 KL
    double T = 4;
    std::string update = "best";   // best | every_k
    std::int64_t every = 1;        // update = every_k: after epochs every, 2 every, ...
};

// [born_again]: generations of one network, each taught by the one before.
struct BornAgainConfig {
    std::int64_t generations = 3;  // N: generations 1 .. N after generation 0
    std::string first;             // "" or the run directory whose best.safetensors is generation 0
    bool with_labels = true;       // CE + T^2 KL (true) or T^2 KL alone
    double T = 1;
};

struct DistillConfig {
    TrainConfig train;
    std::string mode = "distill";  // distill | dml | self_distill | born_again
    MutualLearningConfig dml;      // mode = dml only
    SelfDistillConfig self_distill;  // mode = self_distill only
    BornAgainConfig born_again;      // mode = born_again only
    std::string teacher;          // model spec
    std::string teacher_weights;  // as written in the config (a file or a run directory)
    std::vector<ObjectiveTerm> objectives;
    std::vector<TapPair> pairs;   // [distill] pairs; empty: the defaults
    std::map<std::string, std::vector<TapPair>> objective_pairs;  // [name] pairs, where given
    std::string teacher_cache = "off";   // off | memory | file
    std::string teacher_cache_file;      // "": the default place (see above)
    double teacher_cache_limit_gib = 8;
    Config resolved;              // the whole configuration: objectives read their sections here
};

// Reads and checks the typed values (the training part with read_train_config).
DistillConfig read_distill_config(const Config& config);

// "ce:0.1, kd:0.9" -> {{ce, 0.1}, {kd, 0.9}}; an Error for a bad item, an unknown name (listing
// the valid ones), a weight that is not a finite number >= 0, a name given twice, or no item.
std::vector<ObjectiveTerm> parse_objective_list(const std::string& text);
// "layer1:layer1, layer2" -> {{layer1, layer1}, {layer2, layer2}}; "" -> {}. An Error for an
// empty tap name or more than one ':' in an item.
std::vector<TapPair> parse_pair_list(const std::string& text);
// [dml] peers: "resnet8:num_classes=10; resnet14:num_classes=10" -> the two specs, trimmed;
// "" -> {model_spec} (one peer like student 0). An Error for an empty item ("a;;b", "a;").
std::vector<std::string> parse_peer_list(const std::string& text, const std::string& model_spec);

// The weights file a teacher_weights value names: the file itself, or RUN_DIR/best.safetensors
// for a run directory. An Error when neither exists.
std::string resolve_teacher_weights(const std::string& path);

// The keys `retort distill --resume` lets --set change: those of a training run, and
// distill.teacher_weights (where the same teacher's file lives now).
const std::vector<std::string>& distill_resume_overridable_keys();

}  // namespace retort
