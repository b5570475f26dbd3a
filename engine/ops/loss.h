// engine/ops/loss.h: loss functions and the similarity measures objectives are built from.
// reduction: "mean" (default), "sum" or "none" -- as torch.nn.functional.
#pragma once

#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace retort {

// logits (B, K) or (B, K, d1, ...); target either class indices (B) / (B, d1, ...) of int32/int64,
// or class probabilities with the logits' shape and dtype. Matches torch's cross_entropy,
// including label_smoothing and ignore_index (index targets only; ignored items do not count in
// the mean).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean",
                     double label_smoothing = 0.0, std::int64_t ignore_index = -100);
// Negative log likelihood of log-probabilities (B, K) at class indices (B).
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const std::string& reduction = "mean",
                std::int64_t ignore_index = -100);
// As torch.nn.functional.kl_div: input is log-probabilities; target probabilities (or
// log-probabilities when log_target). reduction adds "batchmean" (sum / batch size), what KD uses.
Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
              bool log_target = false);
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
// Quadratic below beta, linear above (torch.nn.functional.smooth_l1_loss).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
                      double beta = 1.0);
// Cosine of the angle between a and b along dim (broadcasting), each norm clamped to eps.
Tensor cosine_similarity(const Tensor& a, const Tensor& b, std::int64_t dim = 1, double eps = 1e-8);
// x / max(||x||_p, eps) along dim (torch.nn.functional.normalize).
Tensor normalize(const Tensor& x, double p = 2.0, std::int64_t dim = 1, double eps = 1e-12);

}  // namespace retort
