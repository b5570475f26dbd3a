// layers/fold.h: the inference path of a frozen network (a distillation teacher): every
// BatchNorm2d folded into the convolution before it, and ReLU / ReLU6 applied inside that
// convolution's output pass.
//
// In eval mode a BatchNorm is an affine map per channel, y = (x - m) g / sqrt(v + eps) + beta,
// so it can be absorbed into the preceding convolution's weight and bias (Conv2d::fold). The
// network then skips one full read and write of every normalized activation, and with the
// activation fused, a second one. Training mode is untouched: a folded model that is switched
// back to train() normalizes with batch statistics as before.
#pragma once

#include "engine/ops/conv.h"
#include "layers/conv2d.h"
#include "layers/module.h"
#include "layers/norm.h"

namespace retort {

// Walks the module tree; wherever a Conv2d child is registered directly before a BatchNorm2d
// child, folds the norm into the convolution. Every model registers its layers in the order
// they run (PyTorch's state_dict order), so that adjacency is exactly "the norm normalizes this
// convolution's output"; tests/test_fold.cpp checks every model family's eval outputs before
// and after. Returns the number of pairs folded. Call it again after loading new weights.
int fold_batch_norms(Module& root);

// activation(norm(conv(x))) for activation relu or relu6 (none: no activation): one convolution
// with a fused epilogue when the norm is folded, the model is in eval mode and no graph is
// recorded; the three ops otherwise.
Tensor conv_norm_act(Conv2d& conv, BatchNorm2d& norm, const Tensor& x, ConvEpilogue activation);

}  // namespace retort
