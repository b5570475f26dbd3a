// engine/optim/adamw.h: Adam with decoupled weight decay, as torch.optim.AdamW
// (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019).
//
// For each parameter p with gradient g, on its t-th update (t = 1, 2, ...), lr and weight_decay
// from p's group:
//     p     = p * (1 - lr * weight_decay)          the decay acts on p directly, not through g
//     m     = beta1 * m + (1 - beta1) * g          m and v start at zero
//     v     = beta2 * v + (1 - beta2) * g * g
//     vmax  = max(vmax, v)                         amsgrad only; vmax then replaces v below
//     denom = sqrt(v) / sqrt(1 - beta2^t) + eps    eps is added after the bias correction
//     p     = p - lr / (1 - beta1^t) * m / denom
// State per parameter: "exp_avg" (m), "exp_avg_sq" (v), and "max_exp_avg_sq" (vmax) with amsgrad.
#pragma once

#include "engine/optim/optimizer.h"

namespace retort {

struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
    bool amsgrad = false;
};

class AdamW : public Optimizer {
public:
    AdamW(const std::vector<Tensor>& params, const AdamWOptions& options);
    AdamW(std::vector<ParamGroupSpec> groups, const AdamWOptions& options);

    const AdamWOptions& options() const { return options_; }

protected:
    void update(const ParamGroup& group, Tensor& param, const Tensor& grad,
                ParamState& state) override;
    std::vector<std::string> buffer_names() const override;

private:
    AdamWOptions options_;
};

}  // namespace retort
