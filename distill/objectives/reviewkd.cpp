// distill/objectives/reviewkd.cpp: knowledge review (ReviewKD): attention-based fusion (ABF) of
// the student's stages, deep to shallow, compared with the teacher's stages by the hierarchical
// context loss (HCL).
//
// Chen, Liu, Zhao, Jia, "Distilling Knowledge via Knowledge Review", CVPR 2021. Reference code
// followed: mdistiller mdistiller/distillers/ReviewKD.py (ABF, hcl_loss, ReviewKD.forward_train).
//
// Shapes: N >= 1 pairs ordered shallow -> deep, student (B, Cs_i, Hs_i, Ws_i) and teacher
// (B, Ct_i, Ht_i, Wt_i); a (B, C) pair (pooled features, the reference's last level) is read as
// (B, C, 1, 1). M = min(max_mid_channel, Cs_{N-1}).
//
// Review path, from the deepest level i = N-1 down to i = 0, carrying a residual r (B, M, h, w):
//   x = BN(conv1x1_{Cs_i -> M}(s_i))
//   if i < N-1:  r' = nearest-resize(r, (Hs_i, Ws_i));  a = sigmoid(conv1x1_{2M -> 2}([x, r']))
//                x = x * a[:, 0] + r' * a[:, 1]
//   if (Hs_i, Ws_i) != (Ht_i, Wt_i): x = nearest-resize(x, (Ht_i, Wt_i))
//   out_i = BN(conv3x3_{M -> Ct_i}(x));  r = x
// HCL per level, with h = Ht_i:
//   L_i = [ mse(out_i, t_i) + sum_{l in 4,2,1, l < h} w_l mse(pool_l(out_i), pool_l(t_i)) ] / (1 + sum w_l)
//   where pool_l is adaptive average pooling to l x l and the weights halve: 1/2, 1/4, 1/8 (in the
//   order the kept levels appear); mse averages over all elements.
//   loss = warm-up factor * sum_i L_i,  factor = min((epoch + 1) / warmup, 1)
// The reference counts epochs from 1, retort's ObjectiveInputs::epoch from 0, hence epoch + 1:
// the first epoch trains with 1/warmup of the loss, as in mdistiller. When in.epochs is 0 (no
// schedule) or warmup is 0 the factor is 1.
//
// Differences from the reference, none of which changes the arithmetic: it resizes the residual
// to the configured SHAPES[i] and the output to OUT_SHAPES[i] (squares); retort takes both sizes
// from the pair's shapes (any H x W). The reference reads the student's post-activation stage
// outputs (STU_PREACT = False) and the teacher's pre-activation ones; retort uses whatever taps
// the pairs name. The BatchNorms follow the module's train()/eval() mode as PyTorch's do.
// Initialization as the reference: conv1 and conv2 weights kaiming_uniform(a = 1), the attention
// conv PyTorch's default, BatchNorm weight 1 / bias 0. State-dict names as the reference's
// reversed ModuleList: abfs.0 is the deepest level; abfs.j.{conv1.0, conv1.1, conv2.0, conv2.1,
// att_conv.0}.
#include <algorithm>

#include "distill/objectives/relation.h"
#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/norm.h"
#include "layers/sequential.h"

namespace retort {
namespace {

// (B, C) -> (B, C, 1, 1); maps pass through.
Tensor as_map(const Tensor& x) { return x.dim() == 2 ? x.reshape({x.size(0), x.size(1), 1, 1}) : x; }
Shape as_map_shape(const Shape& s) { return s.size() == 2 ? Shape{s[0], s[1], 1, 1} : s; }

Tensor resize_nearest(const Tensor& x, std::int64_t height, std::int64_t width) {
    InterpolateOptions options;
    options.size = std::array<std::int64_t, 2>{height, width};
    return interpolate(x, options);
}

// conv (no bias) + BatchNorm, the reference's nn.Sequential(conv, bn).
std::shared_ptr<Sequential> conv_bn(std::int64_t in, std::int64_t out, std::int64_t kernel) {
    auto block = std::make_shared<Sequential>();
    auto conv = block->push_back(std::make_shared<Conv2d>(Conv2dSpec{
        .in_channels = in, .out_channels = out, .kernel = kernel, .padding = kernel / 2, .bias = false}));
    init::kaiming_uniform(conv->weight, 1.0);
    block->push_back(std::make_shared<BatchNorm2d>(out));
    return block;
}

// One attention-based fusion block.
class Abf : public Module {
public:
    Abf(std::int64_t in_channels, std::int64_t mid_channels, std::int64_t out_channels, bool fuse)
        : Module("ABF") {
        conv1_ = register_module("conv1", conv_bn(in_channels, mid_channels, 1));
        conv2_ = register_module("conv2", conv_bn(mid_channels, out_channels, 3));
        if (fuse) {
            att_conv_ = register_module("att_conv", std::make_shared<Sequential>());
            att_conv_->push_back(std::make_shared<Conv2d>(
                Conv2dSpec{.in_channels = 2 * mid_channels, .out_channels = 2, .kernel = 1}));
            att_conv_->push_back(std::make_shared<Activation>("sigmoid"));
        }
    }

    struct Result {
        Tensor out, residual;
    };

    // x: this level's student map; residual: the deeper level's (undefined at the deepest).
    Result forward(const Tensor& student, const Tensor& residual, std::int64_t out_height,
                   std::int64_t out_width) {
        Tensor x = conv1_->forward(student);
        if (att_conv_) {
            const std::int64_t height = x.size(2), width = x.size(3);
            Tensor r = resize_nearest(residual, height, width);
            Tensor attention = att_conv_->forward(concat({x, r}, 1));
            x = x * narrow(attention, 1, 0, 1) + r * narrow(attention, 1, 1, 1);
        }
        if (x.size(2) != out_height || x.size(3) != out_width) x = resize_nearest(x, out_height, out_width);
        return {conv2_->forward(x), x};
    }

private:
    std::shared_ptr<Sequential> conv1_, conv2_, att_conv_;
};

// The reference's ModuleList: children named "0", "1", ...
class AbfList : public Module {
public:
    AbfList() : Module("ModuleList") {}
    void push_back(std::shared_ptr<Abf> block) {
        blocks.push_back(register_module(std::to_string(blocks.size()), std::move(block)));
    }
    std::vector<std::shared_ptr<Abf>> blocks;
};

// mse plus the pyramid of pooled mse's, normalized by the total weight.
Tensor hierarchical_context_loss(const Tensor& student, const Tensor& teacher) {
    Tensor loss = mse_loss(student, teacher);
    double weight = 1.0, total = 1.0;
    const std::int64_t height = student.size(2);
    for (std::int64_t level : {4, 2, 1}) {
        if (level >= height) continue;
        weight /= 2.0;
        loss = loss + weight * mse_loss(adaptive_avg_pool2d(student, {level, level}),
                                        adaptive_avg_pool2d(teacher, {level, level}));
        total += weight;
    }
    return loss / total;
}

class ReviewKd : public Objective {
public:
    ReviewKd(const ObjectiveSetup& setup, std::int64_t max_mid_channel, std::int64_t warmup)
        : Objective("ReviewKD"), pairs_(setup.pairs), warmup_(warmup) {
        for (ObjectiveSetup::Pair& p : pairs_) {
            require((p.student_shape.size() == 4 || p.student_shape.size() == 2) &&
                        (p.teacher_shape.size() == 4 || p.teacher_shape.size() == 2),
                    "reviewkd: pair '", p.name, "' needs (B, C, H, W) maps or (B, C) features, got "
                    "student ", shape_str(p.student_shape), " and teacher ", shape_str(p.teacher_shape));
            p.student_shape = as_map_shape(p.student_shape);
            p.teacher_shape = as_map_shape(p.teacher_shape);
        }
        const std::int64_t levels = static_cast<std::int64_t>(pairs_.size());
        const std::int64_t mid = std::min(max_mid_channel, pairs_.back().student_shape[1]);
        abfs_ = register_module("abfs", std::make_shared<AbfList>());
        for (std::int64_t i = levels - 1; i >= 0; --i)  // deepest first, as the reversed list
            abfs_->push_back(std::make_shared<Abf>(pairs_[i].student_shape[1], mid,
                                                   pairs_[i].teacher_shape[1], i < levels - 1));
    }

    Tensor forward(const ObjectiveInputs& in) override {
        const std::size_t levels = pairs_.size();
        relation::check_pairs(in, levels, "reviewkd");
        std::vector<Tensor> students, teachers;
        for (std::size_t i = 0; i < levels; ++i) {
            FeaturePair pair{in.features[i].name, as_map(in.features[i].student),
                             as_map(in.features[i].teacher.detach())};
            relation::check_pair_shapes(pair, pairs_[i], "reviewkd");
            students.push_back(pair.student);
            teachers.push_back(pair.teacher);
        }
        Tensor total, residual;
        for (std::size_t j = 0; j < levels; ++j) {
            const std::size_t i = levels - 1 - j;
            Abf::Result r = abfs_->blocks[j]->forward(students[i], residual, teachers[i].size(2),
                                                      teachers[i].size(3));
            residual = r.residual;
            Tensor loss = hierarchical_context_loss(r.out, teachers[i]);
            total = total.defined() ? total + loss : loss;
        }
        return total * warmup_factor(in);
    }

private:
    double warmup_factor(const ObjectiveInputs& in) const {
        if (in.epochs == 0 || warmup_ == 0) return 1.0;
        return std::min(static_cast<double>(in.epoch + 1) / static_cast<double>(warmup_), 1.0);
    }

    std::vector<ObjectiveSetup::Pair> pairs_;
    std::int64_t warmup_;
    std::shared_ptr<AbfList> abfs_;
};

}  // namespace

ObjectiveEntry reviewkd_entry() {
    ObjectiveEntry e;
    e.name = "reviewkd";
    e.paper = "Chen et al. 2021, Distilling Knowledge via Knowledge Review (CVPR)";
    e.reference = "mdistiller mdistiller/distillers/ReviewKD.py";
    e.taps = "feature pairs ordered shallow to deep (e.g. layer1..layer3, pre_logits)";
    e.defaults = "max_mid_channel=512, warmup=20";
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& config) {
        config.declare_int("reviewkd", "max_mid_channel", 512, 1, 1 << 16,
                           "cap on the fusion blocks' width, min(this, deepest student channels)");
        config.declare_int("reviewkd", "warmup", 20, 0, 1 << 20,
                           "epochs over which the loss ramps up linearly (0: none)");
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<ReviewKd>(setup, config.get_int("reviewkd.max_mid_channel"),
                                          config.get_int("reviewkd.warmup"));
    };
    return e;
}

}  // namespace retort
