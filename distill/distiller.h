// distill/distiller.h: the loss of a distillation run: a frozen teacher, the student, and the
// weighted sum of the objectives, plugged into the training loop of distill/trainer.h.
//
// Per batch (images x, labels y, dataset indices i):
//     student (train mode):           s_logits, s_taps = student(x)            (graph recorded)
//     teacher (eval mode, no graph):  t_logits, t_taps = teacher(x)
//     loss = sum_k weight_k * objective_k(s_logits, t_logits, y, pairs_k, i, epoch)
// Only the taps the objectives' pairs name are requested from either model; a pair may also name
// "logits", a model's output (e.g. dist_logits:logits pairs a DeiT student's distillation head
// with the teacher's logits). The student and the
// teacher see the same augmented images. With distill.teacher_cache = memory | file the teacher's
// outputs come from distill/teacher_cache.h where it has them, and the teacher runs only on the
// images it lacks.
//
// Building (Distiller's constructor), in this order, everything checked before a file is written:
//   1. the pairs of each feature objective ([name] pairs, else [distill] pairs, else the default
//      pairs of distill_config.h), their tap names checked against both models (an Error lists
//      the valid taps) and their count against the objective's table row;
//   2. one trial batch of the training data through both models (eval mode, no graph) gives the
//      pairs' shapes, and the objectives are created from them (ObjectiveSetup: the shapes,
//      num_classes, num_samples = the training-set size, seed = run.seed);
//   3. OFD's margins are filled from the teacher's BatchNorm (see batch_norm_before_tap);
//   4. the teacher cache is opened (its fingerprint reads the whole training dataset once).
//
// Pre-training stage: objectives with pre_stage_epochs() > 0 (FitNet's stage 1, FT's
// paraphraser, AB and FSP's initialization) make the run start with P = the largest of them
// epochs in which the loss is the sum of those objectives' pre_stage_loss() (weight 1; each for
// its own number of epochs); the other objectives are not computed then. The trainer handles the
// stage (TrainerAddons::pre_stage_epochs).
//
// metrics.csv gets one column loss.<name> per objective: the objective's own value, BEFORE its
// weight (so a weight-0 objective can be watched without steering training); `loss` is the
// weighted total. In the pre-training stage the column holds the objective's pre-stage loss (empty
// for objectives without one).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "distill/distill_config.h"
#include "distill/objective.h"
#include "distill/teacher_cache.h"
#include "distill/trainer.h"
#include "models/model.h"

namespace retort {

// Builds the teacher from distill.teacher (the default generator is put back afterwards, so the
// student's run draws the same numbers with or without a teacher), checks that it has the
// student's number of classes, loads distill.teacher_weights strictly, switches it to eval mode,
// freezes it (no parameter requires a gradient) and folds its BatchNorms into the convolutions
// (layers/fold.h). `weights_path` receives the file read.
std::shared_ptr<Model> load_teacher(const DistillConfig& config, const Model& student,
                                    std::string* weights_path = nullptr);

// The default pairs for a student and a teacher (see distill_config.h); an Error when the two
// are not both CNNs with stage taps or both ViTs.
std::vector<TapPair> default_pairs(const Model& student, const Model& teacher);

// The BatchNorm (its state-dict prefix) whose output, before a ReLU, a teacher's pre-ReLU tap
// "layerN.pre" is: as overhaul-distillation's get_bn_before_relu,
//   ResNets (CIFAR and torchvision)  layerN.<last block>.bn2 (BasicBlock) or .bn3 (Bottleneck):
//                                    the residual branch's BatchNorm (the tap adds the shortcut);
//   WRNs                             block(N+1).layer.0.bn1, or the final bn1 for the last stage.
// "" when the tap is not of that form or no such BatchNorm is in the state dict.
std::string batch_norm_before_tap(const NamedTensors& teacher_state, const std::string& tap);

// The objectives of a run as one module: child <name> is objective <name>, so its state reads
// "at.connectors.0.weight" and a checkpoint stores it as "objectives.at.connectors.0.weight".
class ObjectiveSet : public Module {
public:
    ObjectiveSet() : Module("ObjectiveSet") {}
    void add(const std::string& name, std::shared_ptr<Objective> objective) {
        register_module(name, std::move(objective));
    }
};

class Distiller {
public:
    struct Slot {
        ObjectiveTerm term;
        std::vector<TapPair> pairs;  // empty for logit objectives
        std::string pairs_from;      // where the pairs came from, for messages
        std::shared_ptr<Objective> objective;
    };

    Distiller(const DistillConfig& config, std::shared_ptr<Model> student,
              std::shared_ptr<Model> teacher, const DatasetSplits& data);

    // What the trainer needs: the objectives' module, the pre-stage epochs, the term names.
    TrainerAddons addons() const;
    // The loss function for Trainer::set_loss (it refers to this Distiller, which must outlive
    // the training run).
    LossFn loss_fn();
    LossOutput loss(Model& student, const Batch& batch, const StepContext& ctx);

    const std::vector<Slot>& slots() const { return slots_; }
    // The teacher-output cache (null when distill.teacher_cache = off).
    TeacherCache* teacher_cache() const { return cache_.get(); }
    std::int64_t pre_stage_epochs() const { return pre_stage_epochs_; }
    // A few lines for the console: the objectives, their weights and pairs, the pre-stage.
    std::string describe() const;

private:
    void choose_pairs(const DistillConfig& config);
    void create_objectives(const DistillConfig& config, const DatasetSplits& data);
    void fill_ofd_margins(Slot& slot);
    void open_cache(const DistillConfig& config, const DatasetSplits& data);

    std::shared_ptr<Model> student_, teacher_;
    std::vector<Slot> slots_;
    std::shared_ptr<ObjectiveSet> set_;
    std::vector<std::string> student_taps_, teacher_taps_;  // every tap any pair names, once
    // Whether any objective reads the teacher (its logits or a tap). When none does (a student
    // trained alone through the same command), the teacher's forward pass is skipped.
    bool teacher_read_ = true;
    std::int64_t pre_stage_epochs_ = 0;
    std::map<std::string, Shape> trial_tap_shapes_;  // the teacher taps' per-sample shapes

    std::shared_ptr<TeacherCache> cache_;
    std::int64_t cache_variants_ = 0;  // of the training transforms
    std::shared_ptr<const Dataset> train_;
    TransformPipeline train_transforms_;  // to make a missed sample's other variants
    std::string cache_note_;
};

}  // namespace retort
