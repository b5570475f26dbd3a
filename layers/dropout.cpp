// layers/dropout.cpp: Dropout and DropPath.
#include "layers/dropout.h"

#include "engine/ops.h"

namespace retort {

Dropout::Dropout(double p_) : UnaryModule("Dropout"), p(p_) {
    require(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

DropPath::DropPath(double p_) : UnaryModule("DropPath"), p(p_) {
    require(p >= 0 && p < 1, "DropPath: p must be in [0, 1), got ", p);
}

Tensor DropPath::forward(const Tensor& x) {
    if (p == 0.0 || !is_training()) return x;
    require(x.dim() >= 1, "DropPath: expected a batch dim, got a 0-dim tensor");
    Shape mask_shape(x.dim(), 1);
    mask_shape[0] = x.size(0);
    // drawn on the CPU (one number per sample: the CPU's Philox stream either way) and moved
    Tensor keep = (bernoulli(mask_shape, 1.0 - p, x.dtype()) * (1.0 / (1.0 - p))).to(x.device());
    return x * keep;  // the mask is a constant: gradients flow through the kept samples only
}

}  // namespace retort
