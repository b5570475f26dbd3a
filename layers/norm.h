// layers/norm.h: normalization layers, as torch.nn.BatchNorm2d and torch.nn.LayerNorm.
//   BatchNorm2d: x (B, C, H, W) -> same. Parameters weight, bias (C) = 1, 0; buffers
//     running_mean = 0, running_var = 1 (and PyTorch's num_batches_tracked is accepted on load).
//     Training uses batch statistics and updates the running ones; eval uses the running ones.
//   LayerNorm: x (..., D) -> same, normalized over the last dim. weight, bias (D) = 1, 0.
#pragma once

#include <memory>

#include "layers/module.h"

namespace retort {

namespace dist {
class Communicator;
}

// Data parallel: BatchNorm2d layers in training mode take their statistics over every rank of
// `ranks` (SyncBatchNorm, engine/dist/sync_batch_norm.h), for the whole process; nullptr (the
// default) keeps each process's own. The Trainer sets it for run.sync_batchnorm.
void set_batchnorm_sync(std::shared_ptr<dist::Communicator> ranks);

class BatchNorm2d : public UnaryModule {
public:
    explicit BatchNorm2d(std::int64_t channels, double eps = 1e-5, double momentum = 0.1);
    Tensor forward(const Tensor& x) override;

    Tensor weight, bias, running_mean, running_var;
    double eps, momentum;
    // Set when the preceding convolution has absorbed this normalization (fold_batch_norms in
    // layers/fold.h): in eval mode the layer then passes its input through. In training mode it
    // normalizes as always, so a model that is trained again is unaffected.
    bool folded = false;
};

class LayerNorm : public UnaryModule {
public:
    explicit LayerNorm(std::int64_t dim, double eps = 1e-5);
    Tensor forward(const Tensor& x) override;

    Tensor weight, bias;
    std::int64_t dim;
    double eps;
};

}  // namespace retort
