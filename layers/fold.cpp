// layers/fold.cpp: BatchNorm folding over a module tree, and the fused conv-norm-activation.
#include "layers/fold.h"

#include "engine/autograd.h"
#include "engine/ops.h"

namespace retort {

int fold_batch_norms(Module& root) {
    int folded = 0;
    const auto children = root.named_children();
    for (std::size_t i = 0; i < children.size(); ++i) {
        auto* conv = dynamic_cast<Conv2d*>(children[i].second.get());
        auto* norm = i + 1 < children.size()
                         ? dynamic_cast<BatchNorm2d*>(children[i + 1].second.get())
                         : nullptr;
        if (conv && norm) {
            conv->fold(*norm);
            ++folded;
        }
        folded += fold_batch_norms(*children[i].second);
    }
    return folded;
}

Tensor conv_norm_act(Conv2d& conv, BatchNorm2d& norm, const Tensor& x, ConvEpilogue activation) {
    if (norm.folded && conv.has_folded_norm() && !norm.is_training())
        return conv.forward_fused(x, activation);  // the norm is inside the convolution
    Tensor y = norm.forward(conv.forward(x));
    switch (activation) {
        case ConvEpilogue::relu: return relu(y);
        case ConvEpilogue::relu6: return relu6(y);
        case ConvEpilogue::none: break;
    }
    return y;
}

}  // namespace retort
