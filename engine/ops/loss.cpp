// engine/ops/loss.cpp: cross_entropy, nll_loss, kl_div, mse_loss, l1_loss, smooth_l1_loss,
// cosine_similarity, normalize.
// Shapes: B batch, K classes, d1... extra dims (pixels of a segmentation map, tokens).
//   cross_entropy / nll_loss: scores (B, K, d1, ...) or (K); target indices (B, d1, ...) or (),
//     or (cross_entropy only) probabilities with the scores' shape.
//   kl_div, mse, l1, smooth_l1: input and target of one shape; "none" keeps it.
//   cosine_similarity: a, b broadcast together, reduced along dim. normalize: x (...) -> same.
// Matches torch.nn.functional (torch 1.13) of the same names, including label_smoothing and
// ignore_index in cross_entropy, "batchmean" and log_target in kl_div, beta = 0 in smooth_l1.
//
// Backward: every loss is composed from differentiable ops (log_softmax, mul, sum, where, ...), so
// autograd derives it and each op saves what its own backward needs. Class indices enter as a
// constant weight tensor built by a small kernel (class_weights, engine/kernels/loss.h): the loss is -sum_k(logp * Q).
// The one explicit backward is the p-norm's, because x / ||x|| is 0/0 at a zero vector where
// PyTorch defines the gradient as 0.
#include "engine/ops/loss.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/cpu/broadcast.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/kernels/loss.h"
#include "engine/math/vector_norm.h"
#include "engine/ops.h"

namespace retort {

namespace {

// Checks the reduction name before any work, so a typo fails at once.
void check_reduction(const std::string& reduction, const char* op, bool batchmean_ok = false) {
    bool known = reduction == "mean" || reduction == "sum" || reduction == "none" ||
                 (batchmean_ok && reduction == "batchmean");
    require(known, op, ": unknown reduction \"", reduction, "\" (expected \"mean\", \"sum\"",
            batchmean_ok ? ", \"none\" or \"batchmean\")" : " or \"none\")");
}

// "mean" over all elements, "sum", or "none" (the elementwise losses as they are).
Tensor reduce_loss(const Tensor& losses, const std::string& reduction) {
    if (reduction == "none") return losses;
    if (reduction == "sum") return sum(losses);
    return mean(losses);
}

void check_float(const Tensor& t, const char* op, const char* what) {
    require(t.defined(), op, ": ", what, " is an undefined tensor");
    require(t.is_floating_point(), op, ": ", what, " must be float32 or float64, got ",
            dtype_name(t.dtype()));
}

// input and target: floating, same dtype, same shape.
void check_pair(const Tensor& input, const Tensor& target, const char* op) {
    check_float(input, op, "input");
    check_float(target, op, "target");
    require(input.dtype() == target.dtype(), op, ": input is ", dtype_name(input.dtype()),
            " but target is ", dtype_name(target.dtype()));
    require(input.shape() == target.shape(), op, ": target shape ", shape_str(target.shape()),
            " does not match input shape ", shape_str(input.shape()));
}

// ---- class-index targets ----

// The dim that holds the K classes: 0 for unbatched scores (K), else 1.
int class_dim(const Tensor& scores) { return scores.dim() == 1 ? 0 : 1; }

// The shape class indices must have: the scores' shape without the class dim.
Shape index_target_shape(const Shape& scores) {
    Shape s = scores;
    s.erase(s.begin() + (scores.size() == 1 ? 0 : 1));
    return s;
}

void check_index_target(const Tensor& scores, const Tensor& target, const char* op) {
    check_float(scores, op, "input");
    require(scores.dim() >= 1, op, ": input must have a class dim, got shape ",
            shape_str(scores.shape()));
    require(target.defined(), op, ": target is an undefined tensor");
    require(target.dtype() == DType::i32 || target.dtype() == DType::i64, op,
            ": class-index target must be int32 or int64, got ", dtype_name(target.dtype()));
    require(target.shape() == index_target_shape(scores.shape()), op, ": target shape ",
            shape_str(target.shape()), " does not match input shape ", shape_str(scores.shape()),
            " (expected ", shape_str(index_target_shape(scores.shape())), ")");
}

// Every index is in [0, K) or equal to ignore_index; returns how many are not ignored.
template <class I>
std::int64_t count_kept_targets(const I* t, std::int64_t n, std::int64_t classes,
                                std::int64_t ignore_index, const char* op) {
    std::int64_t kept = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t c = t[j];
        if (c == ignore_index) continue;
        require(c >= 0 && c < classes, op, ": target class ", c, " at position ", j,
                " is out of range [0, ", classes, ")");
        ++kept;
    }
    return kept;
}

struct ClassWeightsTensor {
    Tensor q;             // engine/kernels/loss.h
    std::int64_t kept;    // items not ignored: the divisor of "mean"
};

ClassWeightsTensor class_weights(const Tensor& scores, const Tensor& target, double on,
                                 double off, std::int64_t ignore_index, const char* op) {
    require(target.device() == scores.device(), op, ": the target is on ", target.device().str(),
            " but the input on ", scores.device().str());
    const DimSplit s = split_at_dim(scores.shape(), class_dim(scores));
    ClassWeightsTensor w{Tensor::empty(scores.shape(), scores.dtype(), scores.device()), 0};
    // the targets are validated on the CPU first (a GPU's are copied over: B numbers)
    const Tensor host_target = target.to(Device::cpu());
    auto fill = [&]<class I>(Type<I>) {
        w.kept = count_kept_targets(host_target.data<I>(), target.numel(), s.size, ignore_index,
                                    op);
        visit_floating(scores.dtype(), op, [&]<class T>(Type<T>) {
            run(scores.device(), w.q.numel(),
                kernels::ClassWeights<T, I>{target.device_data<I>(), w.q.device_data<T>(), s,
                                            static_cast<T>(on), static_cast<T>(off),
                                            ignore_index});
        });
    };
    // class indices are int32 or int64 (check_index_target)
    if (target.dtype() == DType::i32) fill(Type<std::int32_t>{});
    else fill(Type<std::int64_t>{});
    return w;
}

// -sum_k(logp * Q) per item, reduced; "mean" divides by the items that were not ignored.
Tensor index_target_loss(const Tensor& logp, const Tensor& target, const std::string& reduction,
                         double smoothing, std::int64_t ignore_index, const char* op) {
    const double classes = static_cast<double>(logp.size(class_dim(logp)));
    // label smoothing mixes the one-hot target with the uniform distribution 1/K
    const double off = smoothing / classes, on = 1.0 - smoothing + off;
    ClassWeightsTensor w = class_weights(logp, target, on, off, ignore_index, op);
    Tensor per_item = -sum(logp * w.q, {class_dim(logp)});
    if (reduction == "none") return per_item;
    if (reduction == "sum") return sum(per_item);
    return sum(per_item) / static_cast<double>(w.kept);  // 0 kept -> nan, as in PyTorch
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction,
                     double label_smoothing, std::int64_t ignore_index) {
    const char* op = "cross_entropy";
    check_reduction(reduction, op);
    require(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
            ": label_smoothing must be in [0, 1], got ", label_smoothing);
    check_float(logits, op, "input");
    require(logits.dim() >= 1, op, ": input must have a class dim, got shape ",
            shape_str(logits.shape()));
    require(target.defined(), op, ": target is an undefined tensor");
    if (!target.is_floating_point()) {
        check_index_target(logits, target, op);
        return index_target_loss(log_softmax(logits, class_dim(logits)), target, reduction,
                                 label_smoothing, ignore_index, op);
    }
    // probability targets: -sum_k(target_k * log_softmax_k); ignore_index does not apply
    check_pair(logits, target, op);
    const int cdim = class_dim(logits);
    const double classes = static_cast<double>(logits.size(cdim));
    Tensor q = label_smoothing > 0 ? target * (1.0 - label_smoothing) + label_smoothing / classes
                                   : target;
    return reduce_loss(-sum(log_softmax(logits, cdim) * q, {cdim}), reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const std::string& reduction,
                std::int64_t ignore_index) {
    check_reduction(reduction, "nll_loss");
    check_index_target(log_probs, target, "nll_loss");
    return index_target_loss(log_probs, target, reduction, 0.0, ignore_index, "nll_loss");
}

Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction,
              bool log_target) {
    check_reduction(reduction, "kl_div", /*batchmean_ok=*/true);
    check_pair(input, target, "kl_div");
    Tensor pointwise;
    if (log_target) {
        pointwise = exp(target) * (target - input);
    } else {
        // target * log(target) is 0 where target == 0 (torch.xlogy); log sees 1 there instead
        // of 0, so neither the value nor the gradient picks up a nan
        Tensor safe = where(eq(target.detach(), zeros_like(target)), ones_like(target), target);
        pointwise = target * log(safe) - target * input;
    }
    if (reduction == "batchmean") {
        // PyTorch divides by the first dim only (a 0-dim input is just summed)
        Tensor total = sum(pointwise);
        return input.dim() == 0 ? total : total / static_cast<double>(input.size(0));
    }
    return reduce_loss(pointwise, reduction);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
    check_reduction(reduction, "mse_loss");
    check_pair(input, target, "mse_loss");
    Tensor diff = input - target;
    return reduce_loss(diff * diff, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
    check_reduction(reduction, "l1_loss");
    check_pair(input, target, "l1_loss");
    return reduce_loss(abs(input - target), reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction,
                      double beta) {
    check_reduction(reduction, "smooth_l1_loss");
    check_pair(input, target, "smooth_l1_loss");
    require(beta >= 0.0, "smooth_l1_loss: beta must be non-negative, got ", beta);
    if (beta == 0.0) return l1_loss(input, target, reduction);  // the quadratic part vanishes
    Tensor diff = input - target;
    Tensor size = abs(diff);
    Tensor quadratic = diff * diff * (0.5 / beta);
    Tensor linear = size - 0.5 * beta;
    return reduce_loss(where(lt(size.detach(), full_like(size, beta)), quadratic, linear),
                       reduction);
}

// ---- norms and similarity ----

namespace {

// ||x||_p along dim, kept with size 1. The backward is written out, because the generic formula
// sign(x) |x|^(p-1) / ||x||^(p-1) is 0/0 at a zero vector, where PyTorch defines the gradient as 0.
Tensor vector_norm(const Tensor& x, double p, int dim) {
    Tensor norm;
    {
        NoGradGuard plain;  // the forward steps are not part of the graph; one node is recorded
        Tensor v = x.detach();
        norm = p == 2.0 ? sqrt(sum(v * v, {dim}, true))
                        : pow(sum(pow(abs(v), p), {dim}, true), 1.0 / p);
    }
    record(norm, "vector_norm", {x}, [sx = x.detach(), sn = norm.detach(), p](const Tensor& g) {
        // d||x||/dx_i = sign(x_i) |x_i|^(p-1) * (g / ||x||^(p-1)); the second factor is per line
        Tensor scale = Tensor::empty(sn.shape(), sn.dtype(), sn.device());
        Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
        visit_floating(sx.dtype(), "vector_norm backward", [&]<class T>(Type<T>) {
            if (sx.device().is_cuda()) {
                cuda::launch(sx.device(), scale.numel(),
                             kernels::Binary<math::NormScale, T>{
                                 g.device_data<T>(), sn.device_data<T>(), scale.device_data<T>(),
                                 kernels::make_broadcast_index<2>(sn.shape(),
                                                                  {&g.shape(), &sn.shape()}),
                                 math::NormScale{p}});
                cuda::launch(sx.device(), dx.numel(),
                             kernels::Binary<math::NormGrad, T>{
                                 sx.device_data<T>(), scale.device_data<T>(), dx.device_data<T>(),
                                 kernels::make_broadcast_index<2>(sx.shape(),
                                                                  {&sx.shape(), &scale.shape()}),
                                 math::NormGrad{p}});
                return;
            }
            cpu::map2(g.data<T>(), g.shape(), sn.data<T>(), sn.shape(), scale.data<T>(),
                      sn.shape(), [p](T gi, T n) { return math::NormScale{p}.apply(gi, n); });
            cpu::map2(sx.data<T>(), sx.shape(), scale.data<T>(), scale.shape(), dx.data<T>(),
                      sx.shape(), [p](T v, T sc) { return math::NormGrad{p}.apply(v, sc); });
        });
        return std::vector<Tensor>{dx};
    });
    return norm;
}

}  // namespace

Tensor cosine_similarity(const Tensor& a, const Tensor& b, std::int64_t dim, double eps) {
    const char* op = "cosine_similarity";
    check_float(a, op, "a");
    check_float(b, op, "b");
    require(a.dtype() == b.dtype(), op, ": a is ", dtype_name(a.dtype()), " but b is ",
            dtype_name(b.dtype()));
    const Shape common = broadcast_shapes(a.shape(), b.shape(), op);
    const int d = normalize_dim(dim, static_cast<std::int64_t>(common.size()), op);
    // torch 1.13 normalizes each vector first (each norm clamped to eps), then takes the dot
    // product: sum((a / max(||a||, eps)) * (b / max(||b||, eps))). Where a norm is below eps the
    // clamp's gradient is 0; PyTorch lets the norm's gradient through there instead.
    Tensor ea = broadcast_to(a, common), eb = broadcast_to(b, common);
    Tensor unit_a = ea / clamp(vector_norm(ea, 2.0, d), eps, std::nullopt);
    Tensor unit_b = eb / clamp(vector_norm(eb, 2.0, d), eps, std::nullopt);
    return sum(unit_a * unit_b, {d});
}

Tensor normalize(const Tensor& x, double p, std::int64_t dim, double eps) {
    check_float(x, "normalize", "input");
    require(p > 0.0 && std::isfinite(p), "normalize: p must be positive and finite, got ", p);
    const int d = normalize_dim(dim, x.dim(), "normalize");
    return x / clamp(vector_norm(x, p, d), eps, std::nullopt);
}

}  // namespace retort
