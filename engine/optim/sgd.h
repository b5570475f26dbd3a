// engine/optim/sgd.h: stochastic gradient descent with momentum, as torch.optim.SGD.
//
// For each parameter p with gradient g, with lr and weight_decay from p's group:
//     d   = g + weight_decay * p                          (L2 penalty, added to the gradient)
//     buf = d                                 on p's first update (no dampening)
//     buf = momentum * buf + (1 - dampening) * d          afterwards
//     d   = d + momentum * buf  if nesterov,  else buf    (only when momentum > 0)
//     p   = p - lr * d
// State per parameter: "momentum_buffer" (only when momentum > 0).
#pragma once

#include "engine/optim/optimizer.h"

namespace retort {

struct SgdOptions {
    double lr = 0.01;
    double momentum = 0;
    double dampening = 0;
    double weight_decay = 0;
    bool nesterov = false;  // needs momentum > 0 and dampening == 0
};

class SGD : public Optimizer {
public:
    SGD(const std::vector<Tensor>& params, const SgdOptions& options);
    SGD(std::vector<ParamGroupSpec> groups, const SgdOptions& options);

    const SgdOptions& options() const { return options_; }

protected:
    void update(const ParamGroup& group, Tensor& param, const Tensor& grad,
                ParamState& state) override;
    std::vector<std::string> buffer_names() const override;

private:
    SgdOptions options_;
};

}  // namespace retort
