// distill/objectives/ofa.cpp: one-for-all knowledge distillation (OFA-KD): stage projectors that
// turn intermediate student features into logits, each trained against the teacher's logits with
// a target-enhanced KD loss, plus the same loss on the student's own logits.
//
// Hao, Guo, Han, Tang, Wang, Han, Xu, "One-for-All: Bridge the Gap Between Heterogeneous
// Architectures in Knowledge Distillation", NeurIPS 2023. Reference code followed: OFA-KD
// (github.com/Hao840/OFAKD) distillers/ofa.py (ofa_loss, the CNN-student projectors) and
// distillers/utils.py (SepConv, init_weights).
//
// Shapes: B batch, K classes; student stage maps s_k (B, C_k, H_k, W_k), one per pair, ordered
// shallow -> deep; z_s, z_t (B, K) logits; y (B) labels, m = one_hot(y) (B, K).
//
//   ofa(z, z_t) = mean_b  sum_k  -((p_t + m)^eps - m) * log softmax(z / T)_k,   p_t = softmax(z_t / T)
//   loss = sum_k ofa(projector_k(s_k), z_t) + logit_weight * ofa(z_s, z_t)
//
// (p_t + m)^eps - m is p_t on the wrong classes and (1 + p_t)^eps - 1 on the true one: eps > 1
// strengthens the target class. With eps = 1 it is plain cross-entropy against the teacher's
// probabilities. The reference returns the stage sum (weight ofa_loss_weight) and the logit term
// (weight kd_loss_weight) separately, both 1 by default; logit_weight is their ratio. It takes
// log(softmax(z)); retort uses log_softmax, the same value computed stably.
//
// Projectors (the reference's CNN-student branch): the pairs' deepest student map sets the target
// resolution and the width D = max(C_s, C_t) of the deepest pair (the reference takes the final
// feature widths of both networks; the deepest pair should therefore be the last stage, e.g.
// layer4 / feature_map, and its teacher tap may be a map (B, C, H, W), tokens (B, N, C) or
// features (B, C)). For a pair whose map must be halved n > 0 times to reach the target
// resolution (ceil halving, as stride-2 convolutions with padding 1 do), the projector is n
// SepConv blocks (depthwise 3x3 stride 2, pointwise, BN, ReLU, depthwise 3x3, pointwise, BN,
// ReLU) doubling the channels each time and ending at D; for n = 0 it is one 1x1 convolution with
// bias to D. Then global average pooling, flatten, and a linear layer D -> K. The reference
// numbers stages 1..4 for 224-pixel ImageNet networks (4 - stage blocks); counting halvings gives
// the same projectors there and fits CIFAR networks with three stages. The teacher's tensors of
// the other pairs are not read. ViT students (token maps) would need the reference's patch-merging
// projector, which is not implemented: their pairs are refused.
// Initialization (init_weights): convolutions kaiming_normal(fan_out, relu), BatchNorm 1 / 0,
// linear weights truncated normal (std 0.02, bounds +-2), linear bias 0; the 1x1 convolution's
// bias keeps PyTorch's default. State-dict names: projector.<pair index>.<layer index>..., the
// layer indices as the reference's nn.Sequential (blocks, pool, flatten, linear), each SepConv's
// layers under .op.<0..7>.
#include <cmath>

#include "distill/objectives/relation.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/sequential.h"

namespace retort {
namespace {

class GlobalAveragePool : public UnaryModule {
public:
    GlobalAveragePool() : UnaryModule("AdaptiveAvgPool2d") {}
    Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, {1, 1}); }
};

class Flatten : public UnaryModule {
public:
    Flatten() : UnaryModule("Flatten") {}
    Tensor forward(const Tensor& x) override { return relation::flatten_samples(x); }
};

std::shared_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t kernel,
                             std::int64_t stride, std::int64_t groups, bool bias) {
    auto c = std::make_shared<Conv2d>(Conv2dSpec{.in_channels = in, .out_channels = out,
                                                 .kernel = kernel, .stride = stride,
                                                 .padding = kernel / 2, .groups = groups,
                                                 .bias = bias});
    init::kaiming_normal_relu(c->weight, true);
    return c;
}

// The reference's SepConv: halves the resolution, in -> out channels.
class SepConv : public UnaryModule {
public:
    SepConv(std::int64_t in, std::int64_t out) : UnaryModule("SepConv") {
        op_ = register_module("op", std::make_shared<Sequential>());
        op_->push_back(conv(in, in, 3, 2, in, false));
        op_->push_back(conv(in, in, 1, 1, 1, false));
        op_->push_back(std::make_shared<BatchNorm2d>(in));
        op_->push_back(std::make_shared<Activation>("relu"));
        op_->push_back(conv(in, in, 3, 1, in, false));
        op_->push_back(conv(in, out, 1, 1, 1, false));
        op_->push_back(std::make_shared<BatchNorm2d>(out));
        op_->push_back(std::make_shared<Activation>("relu"));
    }
    Tensor forward(const Tensor& x) override { return op_->forward(x); }

private:
    std::shared_ptr<Sequential> op_;
};

// Width of a tap's feature dim: C of (B, C, H, W), the last size of (B, N, C) or (B, C).
std::int64_t feature_width(const Shape& shape) { return shape.size() == 4 ? shape[1] : shape.back(); }

std::shared_ptr<Sequential> make_projector(std::int64_t channels, std::int64_t height,
                                           std::int64_t target_height, std::int64_t width,
                                           std::int64_t num_classes) {
    std::int64_t halvings = 0;
    for (std::int64_t h = height; h > target_height; h = (h + 1) / 2) ++halvings;
    auto projector = std::make_shared<Sequential>();
    if (halvings == 0) projector->push_back(conv(channels, width, 1, 1, 1, true));
    for (std::int64_t b = 0; b < halvings; ++b) {
        projector->push_back(std::make_shared<SepConv>(channels, b == halvings - 1 ? width : 2 * channels));
        channels *= 2;
    }
    projector->push_back(std::make_shared<GlobalAveragePool>());
    projector->push_back(std::make_shared<Flatten>());
    auto head = projector->push_back(std::make_shared<Linear>(width, num_classes));
    init::trunc_normal(head->weight, 0.0, 0.02, -2.0, 2.0);
    init::constant(head->bias, 0.0);
    return projector;
}

// The reference's ModuleDict of projectors, keyed here by pair index.
class ProjectorList : public Module {
public:
    ProjectorList() : Module("ModuleDict") {}
    void push_back(std::shared_ptr<Sequential> p) {
        items.push_back(register_module(std::to_string(items.size()), std::move(p)));
    }
    std::vector<std::shared_ptr<Sequential>> items;
};

struct OfaOptions {
    double eps, temperature, logit_weight;
};

class Ofa : public Objective {
public:
    Ofa(const ObjectiveSetup& setup, const OfaOptions& options)
        : Objective("OFA"), pairs_(setup.pairs), options_(options), num_classes_(setup.num_classes) {
        require(num_classes_ >= 1, "ofa: needs the number of classes (ObjectiveSetup::num_classes) "
                "to size its projectors, got ", num_classes_);
        for (const ObjectiveSetup::Pair& p : pairs_)
            require(p.student_shape.size() == 4, "ofa: pair '", p.name, "' needs a (B, C, H, W) "
                    "student map (the CNN-student projectors), got ", shape_str(p.student_shape));
        const ObjectiveSetup::Pair& deepest = pairs_.back();
        require(deepest.teacher_shape.size() >= 2, "ofa: pair '", deepest.name,
                "' needs a teacher tap with a feature dim, got ", shape_str(deepest.teacher_shape));
        const std::int64_t width =
            std::max(deepest.student_shape[1], feature_width(deepest.teacher_shape));
        projectors_ = register_module("projector", std::make_shared<ProjectorList>());
        for (const ObjectiveSetup::Pair& p : pairs_)
            projectors_->push_back(make_projector(p.student_shape[1], p.student_shape[2],
                                                  deepest.student_shape[2], width, num_classes_));
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, pairs_.size(), "ofa");
        relation::check_logits(in, true, "ofa");
        require(in.student_logits.size(1) == num_classes_, "ofa: built for ", num_classes_,
                " classes, the logits have ", in.student_logits.size(1));
        Tensor target_mask, teacher_weights;
        {
            NoGradGuard no_grad;
            const Tensor& z_t = in.teacher_logits.detach();
            target_mask = one_hot(in.labels, num_classes_, z_t.dtype());
            Tensor p_t = softmax(z_t / options_.temperature, 1);
            teacher_weights = pow(p_t + target_mask, options_.eps) - target_mask;
        }
        Tensor total = options_.logit_weight * ofa_loss(in.student_logits, teacher_weights);
        for (std::size_t k = 0; k < pairs_.size(); ++k) {
            const FeaturePair& pair = in.features[k];
            require(pair.student.dim() == 4 &&
                        std::equal(pair.student.shape().begin() + 1, pair.student.shape().end(),
                                   pairs_[k].student_shape.begin() + 1),
                    "ofa: pair '", pair.name, "': student feature ", shape_str(pair.student.shape()),
                    " does not match the shape it was built for, ", shape_str(pairs_[k].student_shape),
                    " (any batch size)");
            total = total + ofa_loss(projectors_->items[k]->forward(pair.student), teacher_weights);
        }
        return total;
    }

private:
    Tensor ofa_loss(const Tensor& logits, const Tensor& teacher_weights) const {
        return mean(sum(-teacher_weights * log_softmax(logits / options_.temperature, 1), {1}));
    }

    // (B) int64 -> (B, K) with 1 at each label.
    static Tensor one_hot(const Tensor& labels, std::int64_t classes, DType dtype) {
        Tensor columns = arange(classes).unsqueeze(0).to(labels.device());
        return eq(labels.to(DType::i64).unsqueeze(1), columns).to(dtype);
    }

    std::vector<ObjectiveSetup::Pair> pairs_;
    OfaOptions options_;
    std::int64_t num_classes_;
    std::shared_ptr<ProjectorList> projectors_;
};

}  // namespace

ObjectiveEntry ofa_entry() {
    ObjectiveEntry e;
    e.name = "ofa";
    e.paper = "Hao et al. 2023, One-for-All: Bridge the Gap Between Heterogeneous Architectures in "
              "Knowledge Distillation (NeurIPS)";
    e.reference = "OFA-KD (Hao840/OFAKD) distillers/ofa.py, CNN-student projectors";
    e.taps = "student stage maps shallow to deep (last = final stage); teacher logits; labels";
    e.defaults = "eps=1, T=1, logit_weight=1";
    e.uses_teacher_logits = true;
    e.uses_labels = true;
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& config) {
        config.declare_double("ofa", "eps", 1.0, 0.0, 100.0,
                              "modulating exponent: (p_t + onehot)^eps - onehot enhances the target "
                              "class when above 1", true);
        config.declare_double("ofa", "T", 1.0, 0.0, 1000.0, "softmax temperature", true);
        config.declare_double("ofa", "logit_weight", 1.0, 0.0, 1e6,
                              "weight of the loss on the student's own logits, next to the stage "
                              "projectors' (0 leaves it out)");
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<Ofa>(setup, OfaOptions{.eps = config.get_double("ofa.eps"),
                                                       .temperature = config.get_double("ofa.T"),
                                                       .logit_weight = config.get_double("ofa.logit_weight")});
    };
    return e;
}

}  // namespace retort
