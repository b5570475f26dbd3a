// engine/dist/sync_batch_norm.cpp: the differentiable all-reduce and SyncBatchNorm (see the header).
#include "engine/dist/sync_batch_norm.h"

#include "engine/autograd.h"
#include "engine/cuda/runtime.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace retort::dist {

Tensor all_reduce_sum(const Tensor& x, Communicator& ranks) {
    Tensor out;
    {
        NoGradGuard no_grad;
        out = x.clone();
    }
    ranks.all_reduce(out, "an all-reduce of SyncBatchNorm's statistics");
    Communicator* comm = &ranks;
    record(out, "all_reduce_sum", {x}, [comm](const Tensor& grad) -> std::vector<Tensor> {
        Tensor summed = grad.clone();
        comm->all_reduce(summed, "an all-reduce of SyncBatchNorm's gradients");
        return {summed};
    });
    return out;
}

Tensor sync_batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps, Communicator& ranks) {
    require(x.dim() >= 2, "sync_batch_norm: expected input (B, C, ...), got ", shape_str(x.shape()));
    const std::int64_t channels = x.size(1);
    require(x.numel() > 0, "sync_batch_norm: every rank needs samples in the batch");
    Dims reduce{0};
    Shape per_channel(static_cast<std::size_t>(x.dim()), 1);
    per_channel[1] = channels;
    for (int d = 2; d < x.dim(); ++d) reduce.push_back(d);
    const double count = ranks.sum({static_cast<double>(x.numel() / channels)}, "SyncBatchNorm's sample count")[0];
    require(count > 1, "sync_batch_norm: needs more than one value per channel over all ranks, got ", count);
    auto scalar = [&](double v) { return scalar_tensor(v, x.dtype(), x.device()); };

    const Tensor mean = div(all_reduce_sum(sum(x, reduce), ranks), scalar(count));  // (C)
    const Tensor centered = sub(x, mean.reshape(per_channel));
    const Tensor var = div(all_reduce_sum(sum(mul(centered, centered), reduce), ranks), scalar(count));
    Tensor y = mul(centered, rsqrt(add(var, scalar(eps))).reshape(per_channel));
    if (weight.defined()) y = mul(y, weight.reshape(per_channel));
    if (bias.defined()) y = add(y, bias.reshape(per_channel));

    if (running_mean.defined() && running_var.defined()) {  // the same update on every rank
        NoGradGuard no_grad;
        const Tensor new_mean = add(mul(running_mean, scalar(1 - momentum)), mul(mean.detach(), scalar(momentum)));
        const Tensor unbiased = mul(var.detach(), scalar(count / (count - 1)));
        const Tensor new_var = add(mul(running_var, scalar(1 - momentum)), mul(unbiased, scalar(momentum)));
        const std::size_t bytes = static_cast<std::size_t>(channels) * dtype_size(x.dtype());
        cuda::copy_bytes(running_mean.raw_device_data(), running_mean.device(), new_mean.raw_device_data(),
                         new_mean.device(), bytes);
        cuda::copy_bytes(running_var.raw_device_data(), running_var.device(), new_var.raw_device_data(),
                         new_var.device(), bytes);
    }
    return y;
}

}  // namespace retort::dist
