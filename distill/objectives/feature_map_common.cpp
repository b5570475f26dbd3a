// distill/objectives/feature_map_common.cpp: input checks, pooling to a common size, the
// transposed convolution and the connector modules that the feature-map objectives share.
//
// Shapes: B batch, C channels, H x W a feature map; I / O a convolution's in / out channels.
// conv_transpose2d matches torch.nn.functional.conv_transpose2d (groups 1, dilation 1, square
// kernel); it records no node of its own: the ops it is built from carry the gradient.
#include "distill/objectives/feature_map_common.h"

#include <cmath>

#include "engine/ops.h"
#include "layers/init.h"

namespace retort {

// ---- input checks ----

void check_feature_pairs(const ObjectiveInputs& in, std::size_t pairs, const std::string& objective) {
    require(in.features.size() == pairs, objective, ": expected ", pairs,
            " feature pair(s) (as at setup), got ", in.features.size());
    for (const FeaturePair& pair : in.features) {
        require(pair.student.defined() && pair.teacher.defined(), objective, ": pair '", pair.name,
                "' lacks its student or teacher tensor");
        require(pair.student.is_floating_point() && pair.teacher.is_floating_point(), objective,
                ": pair '", pair.name, "' must hold float tensors");
        require(pair.student.dim() >= 2 && pair.teacher.dim() >= 2, objective, ": pair '",
                pair.name, "' needs (B, ...) tensors, got ", shape_str(pair.student.shape()),
                " and ", shape_str(pair.teacher.shape()));
        require(pair.student.size(0) == pair.teacher.size(0), objective, ": pair '", pair.name,
                "': student batch ", pair.student.size(0), " but teacher batch ",
                pair.teacher.size(0), " (", shape_str(pair.student.shape()), " and ",
                shape_str(pair.teacher.shape()), ")");
    }
}

void require_map(const Shape& shape, const std::string& objective, const std::string& role) {
    require(shape.size() == 4, objective, ": ", role, " must be a (B, C, H, W) map, got ",
            shape_str(shape));
}

void require_setup_shape(const Tensor& t, const Shape& setup_shape, const std::string& objective,
                         const std::string& role) {
    bool same = t.dim() == static_cast<int>(setup_shape.size());
    for (int d = 1; same && d < t.dim(); ++d) same = t.size(d) == setup_shape[d];
    require(same, objective, ": ", role, " has shape ", shape_str(t.shape()),
            " but the objective was built for ", shape_str(setup_shape),
            " (the batch size may differ, nothing else)");
}

std::pair<Tensor, Tensor> pool_to_common_size(const Tensor& a, const Tensor& b,
                                              const std::string& objective, const std::string& what) {
    const std::int64_t ah = a.size(2), aw = a.size(3), bh = b.size(2), bw = b.size(3);
    if (ah == bh && aw == bw) return {a, b};
    if (ah >= bh && aw >= bw) return {adaptive_avg_pool2d(a, {bh, bw}), b};
    if (ah <= bh && aw <= bw) return {a, adaptive_avg_pool2d(b, {ah, aw})};
    fail(objective, ": ", what, ": maps of ", ah, "x", aw, " and ", bh, "x", bw,
         " cannot be pooled to one size (one is larger in H, the other in W)");
}

Tensor graph_zero(const ObjectiveInputs& in) {
    internal_check(!in.features.empty(), "graph_zero needs a feature pair");
    return sum(in.features[0].student) * 0.0;
}

// ---- transposed convolution ----

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        std::int64_t stride, std::int64_t padding) {
    require(x.dim() == 4 && weight.dim() == 4 && weight.size(2) == weight.size(3) &&
                x.size(1) == weight.size(0),
            "conv_transpose2d: input ", shape_str(x.shape()), " and weight ",
            shape_str(weight.shape()), " do not fit (expected (B, I, H, W) and (I, O, k, k))");
    const std::int64_t B = x.size(0), I = x.size(1), H = x.size(2), W = x.size(3);
    const std::int64_t k = weight.size(2), s = stride;
    require(s >= 1 && padding >= 0 && (H - 1) * s - 2 * padding + k > 0 &&
                (W - 1) * s - 2 * padding + k > 0,
            "conv_transpose2d: stride ", s, " and padding ", padding, " leave no output for ",
            shape_str(x.shape()));
    // Spread: s - 1 zeros after every element along W, then along H (the trailing ones are
    // cropped by the padding below).
    Tensor spread = x;
    if (s > 1) {
        spread = pad(x.unsqueeze(-1), {0, s - 1}).reshape({B, I, H, W * s});
        spread = pad(spread.unsqueeze(3), {0, 0, 0, s - 1}).reshape({B, I, H * s, W * s});
    }
    const std::int64_t edge = k - 1 - padding;
    spread = pad(spread, {edge, edge - (s - 1), edge, edge - (s - 1)});
    // The equivalent direct convolution's kernel: in/out swapped, spatially flipped.
    Tensor reversed = arange(k - 1, -1, -1, DType::i64).to(weight.device());
    Tensor w = permute(weight, {1, 0, 2, 3});
    w = index_select(index_select(w, 2, reversed), 3, reversed);
    return conv2d(spread, w, bias);
}

// ---- connectors ----

ConnectorConv::ConnectorConv(const Spec& s)
    : UnaryModule(s.transposed ? "ConvTranspose2d" : "Conv2d"), spec(s) {
    require(s.in_channels > 0 && s.out_channels > 0 && s.kernel[0] > 0 && s.kernel[1] > 0 &&
                s.stride > 0 && s.padding >= 0,
            "connector convolution: channels, kernel and stride must be positive, padding >= 0");
    require(!s.transposed || s.kernel[0] == s.kernel[1],
            "connector convolution: a transposed kernel must be square");
    // nn.ConvTranspose2d stores its weight as (in, out, kh, kw); PyTorch computes fan_in from
    // dim 1 either way, and so does init::fan_in.
    const Shape shape = s.transposed ? Shape{s.in_channels, s.out_channels, s.kernel[0], s.kernel[1]}
                                     : Shape{s.out_channels, s.in_channels, s.kernel[0], s.kernel[1]};
    weight = register_parameter("weight", Tensor::empty(shape));
    init::kaiming_uniform(weight, std::sqrt(5.0));
    bias = register_parameter("bias", Tensor::empty({s.out_channels}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
    init::uniform(bias, -bound, bound);
}

Tensor ConnectorConv::forward(const Tensor& x) {
    if (spec.transposed) return conv_transpose2d(x, weight, bias, spec.stride, spec.padding);
    Conv2dOptions o;
    o.stride = {spec.stride, spec.stride};
    o.padding = {spec.padding, spec.padding};
    return conv2d(x, weight, bias, o);
}

std::array<std::int64_t, 2> ConnectorConv::output_size(std::int64_t h, std::int64_t w) const {
    const std::int64_t s = spec.stride, p = spec.padding;
    if (spec.transposed) return {(h - 1) * s - 2 * p + spec.kernel[0], (w - 1) * s - 2 * p + spec.kernel[1]};
    return {(h + 2 * p - spec.kernel[0]) / s + 1, (w + 2 * p - spec.kernel[1]) / s + 1};
}

ConvReg::ConvReg(const Shape& s_shape, const Shape& t_shape, bool relu, const std::string& objective)
    : UnaryModule("ConvReg"), use_relu(relu) {
    require_map(s_shape, objective, "the student feature");
    require_map(t_shape, objective, "the teacher feature");
    const std::int64_t sC = s_shape[1], sH = s_shape[2], sW = s_shape[3];
    const std::int64_t tC = t_shape[1], tH = t_shape[2], tW = t_shape[3];
    ConnectorConv::Spec spec{sC, tC};
    if (sH == 2 * tH) {
        spec.kernel = {3, 3};
        spec.stride = 2;
        spec.padding = 1;
    } else if (2 * sH == tH) {
        spec.kernel = {4, 4};
        spec.stride = 2;
        spec.padding = 1;
        spec.transposed = true;
    } else if (sH >= tH && sW >= tW) {
        spec.kernel = {1 + sH - tH, 1 + sW - tW};
    } else {
        fail(objective, ": no convolutional regressor maps the student's ", sH, "x", sW,
             " map onto the teacher's ", tH, "x", tW,
             " (the student map must be twice, half, or at least the teacher's size)");
    }
    conv = register_module("conv", std::make_shared<ConnectorConv>(spec));
    const auto out = conv->output_size(sH, sW);
    require(out[0] == tH && out[1] == tW, objective, ": the regressor chosen from the heights maps ",
            sH, "x", sW, " to ", out[0], "x", out[1], ", not the teacher's ", tH, "x", tW);
    bn = register_module("bn", std::make_shared<BatchNorm2d>(tC));
}

Tensor ConvReg::forward(const Tensor& x) {
    Tensor y = bn->forward(conv->forward(x));
    return use_relu ? relu(y) : y;
}

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, slope); }

void ModuleList::push_back(std::shared_ptr<UnaryModule> m) {
    if (m) register_module(std::to_string(items_.size()), m);
    items_.push_back(std::move(m));
}

Tensor ModuleList::apply(std::size_t i, const Tensor& x) const {
    const auto& m = items_.at(i);
    return m ? m->forward(x) : x;
}

}  // namespace retort
