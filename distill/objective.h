// distill/objective.h: what a distillation objective is, and the table of them by name.
//
// An objective is a Module: it may own learnable connectors (a FitNet regressor, CRD's embedding
// heads, ReviewKD's fusion blocks), which are trained with the student and saved in its
// checkpoint. It reads one batch's student and teacher outputs and returns a scalar loss: the
// objective's own value, BEFORE the outer weight that `objectives = kd:0.9, ...` gives it.
//
// Shapes: B batch, K classes, C channels, H x W a feature map, N tokens.
//
// The student's tensors carry its autograd graph; the teacher's do not (the teacher is frozen
// and runs under NoGradGuard), so a loss's gradient flows into the student and the connectors
// only.
//
// Hyperparameters live in a config section named after the objective (`[kd] T = 4`); every
// objective declares its keys in declare() with the papers' CIFAR-100 defaults, so the same
// names work in a distillation config and in `retort objective --set T=4`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/config.h"
#include "engine/shape.h"
#include "layers/module.h"

namespace retort {

// One pair of intermediate tensors compared by a feature objective: the student's and the
// teacher's at matching depth, NCHW maps (B, C, H, W) or token sequences (B, N, C). The name is
// the pair's key (the X of `student.feat.X`).
struct FeaturePair {
    std::string name;
    Tensor student;  // carries the student's graph
    Tensor teacher;  // no graph
};

// One batch, as the objective sees it.
struct ObjectiveInputs {
    Tensor student_logits;  // (B, K) float
    Tensor teacher_logits;  // (B, K) float, no graph
    Tensor labels;          // (B) int64
    std::vector<FeaturePair> features;  // in the order of ObjectiveSetup::pairs
    Tensor sample_indices;  // (B) int64, each sample's index in the training set (memory banks);
                            // undefined when the caller has none
    std::int64_t epoch = 0;   // 0-based epoch being trained
    std::int64_t epochs = 0;  // the run's epochs; 0 means "no schedule": warm-up factors are 1
    bool training = true;     // false when only the value is wanted (no memory-bank update)
    // Anything else a method may take from the caller instead of drawing it itself, by name
    // (`extra.X` in `retort objective`'s input file), e.g. CRD's negative sample indices, so a
    // fixture computed elsewhere can be reproduced exactly.
    std::map<std::string, Tensor> extras;
};

// What an objective is built from, known before the first step: connectors are sized from the
// feature shapes (batch dimension included, as one trial batch produced them).
struct ObjectiveSetup {
    struct Pair {
        std::string name;
        Shape student_shape, teacher_shape;
    };
    std::vector<Pair> pairs;
    std::int64_t num_classes = 0;
    std::int64_t num_samples = 0;  // training-set size (CRD's memory bank holds one row per sample)
    std::uint64_t seed = 0;        // connectors are initialized from this seed
};

class Objective : public Module {
public:
    using Module::Module;

    // The loss for one batch: a scalar tensor (shape {}), differentiable w.r.t. the student's
    // inputs and the objective's parameters.
    virtual Tensor forward(const ObjectiveInputs& in) = 0;

    // Some methods train their connectors before the main training (FitNet's stage 1, FT's
    // paraphraser, AB's initialization). `retort distill` runs pre_stage_epochs() epochs of
    // pre_stage_loss() first, optimizing the student and these connectors, then the main stage.
    virtual std::int64_t pre_stage_epochs() const { return 0; }
    virtual Tensor pre_stage_loss(const ObjectiveInputs& in);
};

// One row of the table: how to describe, configure and build an objective.
struct ObjectiveEntry {
    std::string name;       // registry name, also the config section: "kd"
    std::string paper;      // "Hinton et al. 2015, Distilling the Knowledge in a Neural Network"
    std::string reference;  // the reference code followed: "RepDistiller (HobbitLong)"
    std::string taps;       // what it reads: "logits", "one or more feature pairs", ...
    std::string defaults;   // "T=4" (the defaults declare() sets, for the README table)
    // Whether forward() reads in.teacher_logits. `retort distill` runs the teacher only when an
    // objective does or a pair names a teacher tap, so an objective that reads the logits must
    // say so here, or it is handed an undefined tensor.
    bool uses_teacher_logits = false;
    bool uses_labels = false;
    // The pairs `retort distill` gives it when the config names none: "" = the model family's
    // default (the stage outputs layer1..N of two CNNs, ViT tokens at proportional depths),
    // "stages.pre" = those stages' pre-activation taps (layerN.pre), or one tap read on both
    // models ("layer2", "feature_map", "pre_logits"), or pairs ("dist_logits:logits"; "logits"
    // is a model's output).
    std::string default_taps;
    int min_pairs = 0;      // feature pairs it needs (0 for logit objectives)
    int max_pairs = 0;      // -1: any number
    // Declares the keys of section [name] (defaults, ranges, help) in the config schema.
    std::function<void(Config& config)> declare;
    // Builds the objective from the resolved config and the setup.
    std::function<std::shared_ptr<Objective>(const Config& config, const ObjectiveSetup& setup)>
        create;
};

// Every registered objective, in a fixed order (logit objectives first, then any added by
// register_objective in the order they were added).
const std::vector<ObjectiveEntry>& objective_table();
// Adds an objective written outside retort (tools/examples/new_objective.cpp shows one): from then
// on configs, `retort distill` and create_objective know it by name, and its section's keys are
// declared in new config schemas. An Error for a name that is taken or not a valid section name
// (lowercase letters, digits, '_'), a missing create function or a bad pair range. Register at
// start-up, before any config is read (references into the table may move).
void register_objective(ObjectiveEntry entry);
// The entry for name; an Error listing the valid names otherwise.
const ObjectiveEntry& find_objective(const std::string& name);
// Declares every objective's section and keys in config.
void declare_objective_keys(Config& config);
// find_objective(name), checks the pair count against the entry, then entry.create() with the
// default generator seeded from setup.seed (and restored afterwards).
std::shared_ptr<Objective> create_objective(const std::string& name, const Config& config,
                                            const ObjectiveSetup& setup);

// The groups of the table, each defined next to its objectives (distill/objectives/).
void add_logit_objectives(std::vector<ObjectiveEntry>& table);
void add_feature_map_objectives(std::vector<ObjectiveEntry>& table);
void add_relation_objectives(std::vector<ObjectiveEntry>& table);
// Between a ViT and a CNN: fourier, cakd (cnn_vit_table.cpp); spatial matching: tat, cskd
// (spatial_table.cpp); ViT students and pairs: deit_hard, deit_soft, attn, manifold
// (vit_table.cpp).
void add_cnn_vit_objectives(std::vector<ObjectiveEntry>& table);
void add_spatial_objectives(std::vector<ObjectiveEntry>& table);
void add_vit_objectives(std::vector<ObjectiveEntry>& table);

}  // namespace retort
