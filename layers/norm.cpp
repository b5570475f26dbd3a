// layers/norm.cpp: BatchNorm2d and LayerNorm.
#include "layers/norm.h"

#include "engine/dist/sync_batch_norm.h"
#include "engine/ops.h"

namespace retort {

BatchNorm2d::BatchNorm2d(std::int64_t channels, double eps_, double momentum_)
    : UnaryModule("BatchNorm2d"), eps(eps_), momentum(momentum_) {
    require(channels > 0, "BatchNorm2d: channels must be positive, got ", channels);
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
    running_mean = register_buffer("running_mean", zeros({channels}));
    running_var = register_buffer("running_var", ones({channels}));
}

namespace {
std::shared_ptr<dist::Communicator> sync_ranks;  // set_batchnorm_sync
}

void set_batchnorm_sync(std::shared_ptr<dist::Communicator> ranks) { sync_ranks = std::move(ranks); }

Tensor BatchNorm2d::forward(const Tensor& x) {
    require(x.dim() == 4, "BatchNorm2d: expected input (B, C, H, W), got ", shape_str(x.shape()));
    if (folded && !is_training()) return x;
    if (is_training() && sync_ranks)
        return dist::sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps, *sync_ranks);
    return batch_norm(x, running_mean, running_var, weight, bias, is_training(), momentum, eps);
}

LayerNorm::LayerNorm(std::int64_t dim_, double eps_) : UnaryModule("LayerNorm"), dim(dim_), eps(eps_) {
    require(dim > 0, "LayerNorm: dim must be positive, got ", dim);
    weight = register_parameter("weight", ones({dim}));
    bias = register_parameter("bias", zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, {dim}, weight, bias, eps); }

}  // namespace retort
