// distill/self_distillation.cpp: self-distillation from the network's own best checkpoint (the
// rule, the run directory and the metrics columns are in self_distillation.h), and the
// CE + KD loss it shares with born-again generations.
//
// Shapes: x (B, C, H, W) float32, labels (B) int64, logits s (network) and t (teacher) (B, K).
//
// Paper: Takagi & Hattori (2019), self-distillation with the best model so far as the teacher;
// the start epoch, the weights, the temperature and the update rule are left open there and are
// keys here. The KD term is Hinton's (distill/objectives/kd.cpp, softened_kl): the same formula
// and code path as the `kd` objective, which is checked against PyTorch.
//
// Backward saves what cross_entropy and softened_kl save (the network's log-softmax at T and the
// teacher's probabilities, a constant); the teacher's forward runs without a graph.
#include "distill/self_distillation.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <map>

#include "distill/objectives/logit.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/registry.h"

namespace retort {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::map<std::string, Tensor> as_map(const NamedTensors& named) {
    return {named.begin(), named.end()};
}

}  // namespace

// ---- the loss ----

SoftTargetLoss soft_target_loss(const Tensor& s, const Tensor& t, const Tensor& labels,
                                double ce_weight, double kd_weight, double T,
                                double label_smoothing) {
    ObjectiveInputs in;
    in.student_logits = s;
    in.teacher_logits = t;
    in.labels = labels;
    check_logit_pair(in, "soft_target_loss");
    check_labels(in, "soft_target_loss");
    require(std::isfinite(T) && T > 0, "soft_target_loss: T must be > 0, got ", T);
    require(std::isfinite(ce_weight) && ce_weight >= 0 && std::isfinite(kd_weight) && kd_weight >= 0,
            "soft_target_loss: the weights must be finite and >= 0, got ", ce_weight, " (CE) and ",
            kd_weight, " (KD)");
    require(label_smoothing >= 0 && label_smoothing < 1,
            "soft_target_loss: label_smoothing must be in [0, 1), got ", label_smoothing);

    SoftTargetLoss out;
    out.kd = softened_kl(s, t, T);
    if (ce_weight == 0) {
        // Only for the record: a zero-weight term must not add a graph the loss does not use.
        out.ce = cross_entropy(s.detach(), labels, "mean", label_smoothing);
        out.total = out.kd * kd_weight;
    } else {
        out.ce = cross_entropy(s, labels, "mean", label_smoothing);
        out.total = out.ce * ce_weight + out.kd * kd_weight;
    }
    return out;
}

// ---- the teacher ----

// Child `teacher` is the frozen copy; buffer `teacher_epoch` the epoch it was copied after.
class TeacherSnapshot : public Module {
public:
    explicit TeacherSnapshot(std::shared_ptr<Model> network) : Module("TeacherSnapshot") {
        teacher = register_module("teacher", std::move(network));
        epoch = register_buffer("teacher_epoch", zeros({}, DType::i64));
    }
    std::shared_ptr<Model> teacher;
    Tensor epoch;
};

SelfDistillation::SelfDistillation(const DistillConfig& config, std::shared_ptr<Model> network,
                                   const DatasetSplits& data)
    : network_(std::move(network)),
      settings_(config.self_distill),
      label_smoothing_(config.train.optim.label_smoothing) {
    internal_check(network_ != nullptr, "SelfDistillation needs the network");
    require(settings_.update != "best" || (data.val && data.val->size() > 0),
            "self_distill.update = best chooses the teacher by validation top-1, but the data has no "
            "validation split (data.val_size = ", config.train.data.val_size,
            "); set data.val_size > 0 to hold samples out of the training set (the test set never "
            "chooses), or self_distill.update = every_k");
    // The copy's random initialization is overwritten before it teaches; it must not move the
    // generator the network's run draws from.
    Generator& gen = default_generator();
    const Generator saved = gen;
    std::shared_ptr<Model> teacher = create_model(config.train.model);
    gen = saved;
    teacher->eval();
    for (Tensor& p : teacher->parameters()) p.set_requires_grad(false);
    snapshot_ = std::make_shared<TeacherSnapshot>(teacher);
}

SelfDistillation::~SelfDistillation() = default;

std::int64_t SelfDistillation::teacher_epoch() const { return snapshot_->epoch.item<std::int64_t>(); }

const Model& SelfDistillation::teacher() const { return *snapshot_->teacher; }

void SelfDistillation::take_snapshot(std::int64_t epoch) {
    // load_state_dict copies into the teacher's own tensors: they stay frozen and separate.
    snapshot_->teacher->load_state_dict(as_map(network_->state_dict()));
    snapshot_->teacher->eval();
    // the buffer may live on a GPU: its value is replaced, its identity kept
    snapshot_->epoch.set_data(full({}, static_cast<double>(epoch), DType::i64, snapshot_->epoch.device()));
}

TrainerAddons SelfDistillation::addons() {
    TrainerAddons a;
    a.objectives = snapshot_;
    a.term_names = {"ce", "kd"};
    a.eval_columns = {"teacher_epoch"};
    a.evaluate = [this](const std::string&, DataLoader&) {
        return std::vector<double>{taught_by_ > 0 ? static_cast<double>(taught_by_) : kNaN};
    };
    a.end_epoch = [this](std::int64_t epoch, const std::string&) { return end_epoch(epoch); };
    return a;
}

LossFn SelfDistillation::loss_fn() {
    return [this](Model& network, const Batch& batch, const StepContext& ctx) {
        return loss(network, batch, ctx);
    };
}

LossOutput SelfDistillation::loss(Model& network, const Batch& batch, const StepContext& ctx) {
    Tensor logits = network.forward(batch.images);
    const std::int64_t teacher = teacher_epoch();
    if (ctx.epoch + 1 < settings_.start || teacher == 0) {
        taught_by_ = 0;
        Tensor ce = cross_entropy(logits, batch.labels, "mean", label_smoothing_);
        return {ce, logits, {ce.item(), kNaN}};
    }
    Tensor teacher_logits;
    {
        NoGradGuard no_grad;
        snapshot_->teacher->eval();
        teacher_logits = snapshot_->teacher->forward(batch.images);
    }
    taught_by_ = teacher;
    const SoftTargetLoss l = soft_target_loss(logits, teacher_logits, batch.labels,
                                              1 - settings_.lambda, settings_.lambda, settings_.T,
                                              label_smoothing_);
    return {l.total, logits, {l.ce.item(), l.kd.item()}};
}

std::string SelfDistillation::end_epoch(std::int64_t epoch) {
    internal_check(trainer_ != nullptr, "SelfDistillation: call attach(trainer) before training");
    taught_by_ = 0;
    const bool replace = settings_.update == "best" ? trainer_->progress().best_epoch == epoch
                                                    : epoch % settings_.every == 0;
    const std::int64_t before = teacher_epoch();
    if (replace) take_snapshot(epoch);
    if (teacher_epoch() == 0) return "self-distillation: no teacher yet";
    std::string line = cat("self-distillation: the teacher ", replace ? "is now" : "stays",
                           " the network of epoch ", teacher_epoch());
    if (settings_.update == "best")
        line += cat(" (val top1 ", std::fixed, std::setprecision(2), trainer_->progress().best_top1, "%)");
    if (replace && before > 0) line += cat("; it was epoch ", before, "'s");
    return line;
}

std::string SelfDistillation::describe() const {
    const std::string rule = settings_.update == "best" ? std::string("whenever the validation top-1 improves")
                             : settings_.every == 1     ? std::string("after every epoch")
                                                        : cat("after every ", settings_.every, " epochs");
    return cat("self-distillation: the network's own checkpoint teaches it from epoch ",
               settings_.start, ": loss = ", 1 - settings_.lambda, " CE + ", settings_.lambda,
               " T^2 KL at T = ", settings_.T, " (plain CE before)\n  the teacher: a frozen copy of ",
               network_->info().name, ", replaced by the network's weights ", rule,
               "; saved in last.safetensors as objectives.teacher.*");
}

}  // namespace retort
