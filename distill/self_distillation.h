// distill/self_distillation.h: self-distillation, `retort distill` with [distill] mode =
// self_distill: one network, one run, taught by a frozen copy of its own best checkpoint so far.
// Also the loss that this mode and born-again generations share (soft_target_loss).
//
// Shapes: B batch, K classes; s the network's logits (B, K), t the teacher's, y the labels (B).
//
// The idea follows Takagi & Hattori (2019): the best network so far on a validation split (held
// out of the training set, never the test set) is a teacher whose soft predictions regularize the
// rest of training. The paper leaves the schedule open, so every part of it is a key of
// [self_distill]:
//   - From epoch `start` (1-based; default 2, so one epoch of plain training makes the first
//     teacher) the loss is
//         L = (1 - lambda) CE(s, y) + lambda T^2 KL( softmax(t / T) || softmax(s / T) )
//     with the KL summed over classes and averaged over the batch (batchmean), as Hinton's KD
//     (distill/objectives/kd.cpp). Before `start`, and while no teacher exists, L = CE(s, y).
//   - The teacher is replaced at the end of an epoch by the network's weights of that epoch:
//     with update = best when the epoch's validation top-1 beats every earlier one (the epoch
//     whose weights the trainer has just written to best.safetensors; a tie keeps the earlier
//     teacher, as best.safetensors does), with update = every_k after epochs k, 2k, 3k, ...
//     Either way a teacher is recorded before `start` too, so the first distilling epoch has one
//     (with every_k and k >= start it may not yet: plain CE until it has).
//   - The teacher runs in eval mode under NoGradGuard on the same augmented batch; it is the
//     network's own architecture with its BatchNorms unfolded, so at the moment of the copy its
//     eval-mode logits are bit-identical to the network's.
//   - optim.label_smoothing smooths the CE term.
//
// The teacher travels in the trainer's `objectives` slot (TrainerAddons): a module with child
// `teacher` (the frozen copy: its parameters have requires_grad = false, so the trainer's
// optimizer never holds them) and the buffer `teacher_epoch` (int64: the epoch whose weights the
// teacher holds; 0 = no teacher yet). last.safetensors saves them as objectives.teacher.* and
// objectives.teacher_epoch, so `--resume` restores the teacher and continues bit for bit.
//
// Knowing whether an epoch is the best one: the trainer chooses best.safetensors before it calls
// the end_epoch hook, and its progress() then already names this epoch as best_epoch when it
// improved. SelfDistillation reads that through attach(trainer), called once the trainer is
// built (the trainer needs the addons first, so the two cannot be made in one step).
//
// metrics.csv, after the training columns:
//   loss.ce         train rows: CE(s, y), before its weight
//   loss.kd         train rows: T^2 KL(teacher || network), before lambda; empty while the epoch
//                   does not distil (the `loss` column is then loss.ce)
//   teacher_epoch   val and test rows: the epoch whose weights taught this epoch (empty: none)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "distill/distill_config.h"
#include "distill/trainer.h"
#include "models/model.h"

namespace retort {

// L = ce_weight * CE(s, y) + kd_weight * T^2 KL(softmax(t / T) || softmax(s / T)), KL batchmean,
// t a constant. The parts are scalar tensors; with ce_weight = 0 the CE term is computed for the
// record only (on s detached) and left out of `total`.
struct SoftTargetLoss {
    Tensor total, ce, kd;
};
// s and t: float (B, K) of one shape and dtype; labels int64 (B) in [0, K); T > 0; weights >= 0;
// label_smoothing in [0, 1). Each mistake is an Error that names soft_target_loss and the shapes.
SoftTargetLoss soft_target_loss(const Tensor& s, const Tensor& t, const Tensor& labels,
                                double ce_weight, double kd_weight, double T,
                                double label_smoothing = 0.0);

class TeacherSnapshot;  // the frozen copy and its epoch, as one module (self_distillation.cpp)

class SelfDistillation {
public:
    // Builds the teacher's network from [model]'s spec (the default generator is put back
    // afterwards, so the network starts as `retort train` starts it). An Error when update =
    // best and the data has no validation split.
    SelfDistillation(const DistillConfig& config, std::shared_ptr<Model> network,
                     const DatasetSplits& data);
    ~SelfDistillation();

    // The teacher as the trainer's objectives, the loss terms and the teacher_epoch column, and
    // the end-of-epoch update (these refer to this object, which must outlive the run).
    TrainerAddons addons();
    // Gives the end-of-epoch update the trainer's progress (see the top of this file).
    void attach(const Trainer& trainer) { trainer_ = &trainer; }
    LossFn loss_fn();
    LossOutput loss(Model& network, const Batch& batch, const StepContext& ctx);

    // The epoch whose weights the teacher holds (0: none yet) and the frozen network itself.
    std::int64_t teacher_epoch() const;
    const Model& teacher() const;
    // A few lines for the console: the loss, the start, the update rule.
    std::string describe() const;

private:
    std::string end_epoch(std::int64_t epoch);
    void take_snapshot(std::int64_t epoch);

    std::shared_ptr<Model> network_;
    std::shared_ptr<TeacherSnapshot> snapshot_;
    SelfDistillConfig settings_;
    double label_smoothing_ = 0;
    const Trainer* trainer_ = nullptr;
    // The teacher that taught the current epoch (0: it did not distil), for teacher_epoch.
    std::int64_t taught_by_ = 0;
};

}  // namespace retort
