// distill/objectives/feature_map_common.h: what the feature-map objectives share: the checks on
// their inputs, RepDistiller's "pool the larger map down to the smaller" rule, and the connectors
// (small learnable modules that map a student feature onto the teacher's shape).
//
// Shapes: B batch, C channels, H x W a feature map; s the student's, t the teacher's.
//
// The connectors keep the state-dict names of the reference modules, so a connector saved from
// RepDistiller or overhaul-distillation loads unchanged:
//   ConvReg        RepDistiller models/util.py ConvReg: conv.{weight,bias}, bn.*
//   ConnectorConv  one nn.Conv2d (any kernel shape) or nn.ConvTranspose2d: weight, bias
//   LeakyReLU      nn.LeakyReLU (no state), for FT's paraphraser and translator
//   ModuleList     nn.ModuleList: children named "0", "1", ...
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distill/objective.h"
#include "layers/module.h"
#include "layers/norm.h"

namespace retort {

// ---- input checks ----

// Throws unless `in` holds exactly `pairs` feature pairs whose student and teacher tensors are
// defined floats with equal batch sizes. `objective` names the objective in the message.
void check_feature_pairs(const ObjectiveInputs& in, std::size_t pairs, const std::string& objective);

// Throws unless t is (B, C, H, W). `role` says which tensor: "student feature 'layer1'".
void require_map(const Shape& shape, const std::string& objective, const std::string& role);

// Throws unless the tensor has the shape (batch dim aside) the objective was built for.
void require_setup_shape(const Tensor& t, const Shape& setup_shape, const std::string& objective,
                         const std::string& role);

// RepDistiller's rule when two maps differ in size (AT, NST, FT, FSP): the larger is
// adaptive-average-pooled down to the smaller's H x W. RepDistiller pools to a square
// (smaller H, smaller H), assuming square maps; this pools to (smaller H, smaller W), the same on
// square maps. A map larger in one dim and smaller in the other is an Error.
std::pair<Tensor, Tensor> pool_to_common_size(const Tensor& a, const Tensor& b,
                                              const std::string& objective, const std::string& what);

// A zero loss that is still part of the student's graph (so backward() through it works and
// sends exact zero gradients): what a two-stage method returns in its main stage.
Tensor graph_zero(const ObjectiveInputs& in);

// ---- transposed convolution ----

// As torch.nn.functional.conv_transpose2d with a square kernel: x (B, I, H, W), weight
// (I, O, k, k), bias (O) or undefined -> (B, O, (H-1) s - 2p + k, (W-1) s - 2p + k).
// Built from differentiable ops: the input is spread out with s-1 zeros between neighbours,
// padded by k-1-p, and convolved with the kernel flipped and its in/out dims swapped.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        std::int64_t stride, std::int64_t padding);

// ---- connector modules ----

// nn.Conv2d with a (kh, kw) kernel, or nn.ConvTranspose2d (square kernel), with bias; PyTorch's
// default initialization (kaiming_uniform(a = sqrt 5), bias U(+-1/sqrt(fan_in))).
class ConnectorConv : public UnaryModule {
public:
    struct Spec {
        std::int64_t in_channels, out_channels;
        std::array<std::int64_t, 2> kernel{1, 1};
        std::int64_t stride = 1, padding = 0;
        bool transposed = false;
    };
    explicit ConnectorConv(const Spec& spec);
    Tensor forward(const Tensor& x) override;
    // The output (H, W) for an input (H, W).
    std::array<std::int64_t, 2> output_size(std::int64_t h, std::int64_t w) const;

    Tensor weight, bias;
    Spec spec;
};

// RepDistiller's ConvReg: a conv chosen from the two shapes, then BatchNorm, then ReLU if
// use_relu. For student (B, sC, sH, sW) and teacher (B, tC, tH, tW):
//   sH == 2 tH    conv 3x3, stride 2, padding 1
//   2 sH == tH    transposed conv 4x4, stride 2, padding 1
//   sH >= tH      conv with kernel (1 + sH - tH, 1 + sW - tW)
//   otherwise     an Error (as the reference's NotImplemented)
// The width must come out equal to the teacher's too, else an Error.
class ConvReg : public UnaryModule {
public:
    ConvReg(const Shape& student_shape, const Shape& teacher_shape, bool use_relu,
            const std::string& objective);
    Tensor forward(const Tensor& x) override;

    std::shared_ptr<ConnectorConv> conv;
    std::shared_ptr<BatchNorm2d> bn;
    bool use_relu;
};

class LeakyReLU : public UnaryModule {
public:
    explicit LeakyReLU(double negative_slope) : UnaryModule("LeakyReLU"), slope(negative_slope) {}
    Tensor forward(const Tensor& x) override;
    double slope;
};

// nn.ModuleList: holds modules under "0", "1", ...; an empty slot (RepDistiller's identity
// connector, nn.Sequential()) is a null pointer and registers nothing.
class ModuleList : public Module {
public:
    ModuleList() : Module("ModuleList") {}
    void push_back(std::shared_ptr<UnaryModule> m);
    std::size_t size() const { return items_.size(); }
    // Applies item i, or returns x unchanged for an empty slot.
    Tensor apply(std::size_t i, const Tensor& x) const;

private:
    std::vector<std::shared_ptr<UnaryModule>> items_;
};

// ---- the rows of the table, one per objective (each defined in its own file) ----
ObjectiveEntry fitnet_entry();
ObjectiveEntry at_entry();
ObjectiveEntry sp_entry();
ObjectiveEntry ofd_entry();
ObjectiveEntry nst_entry();
ObjectiveEntry ft_entry();
ObjectiveEntry ab_entry();
ObjectiveEntry fsp_entry();

}  // namespace retort
