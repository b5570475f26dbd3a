// engine/dist/gradient_reducer.h: sums the gradients of every replica's parameters over the ranks,
// in buckets that start while backward is still running (the scheme of PyTorch's DDP).
//
//   reducer.begin(loss);          // before backward
//   loss_scaled.backward();       // each bucket's all-reduce starts as its gradients are final
//   reducer.finish();             // waits; every rank now holds the summed gradients
//
// Buckets: the parameters, taken in reverse order of registration (backward reaches the last
// layers first), are packed into buckets of about `bucket_bytes` (and of one dtype and device).
// Each bucket is a flat buffer with one slot per parameter plus one "used" flag per parameter.
// When backward has finished a parameter's gradient (autograd's grad-ready hook on the leaf), the
// gradient is copied into its slot; when every slot of a bucket is filled, and every bucket before
// it has been started, its all-reduce starts. Starting buckets strictly in order keeps the ranks'
// sequence of collectives identical, which MPI and NCCL both require.
//
// Parameters that got no gradient on a rank (a branch it did not take) contribute zeros and no
// "used" flag. After the reduction a parameter gets the summed gradient if any rank used it, and
// keeps no gradient if none did (so an optimizer skips it as in a single process).
//
// Averaging: the reducer sums. The Trainer scales each rank's loss by (its samples / the global
// batch's samples) before backward, so the sum is exactly the gradient of the global batch's mean
// loss, even when the last batch does not split evenly.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace retort::dist {

class GradientReducer {
public:
    // `params`: the trained parameters (leaves that require grad), identical in order and shape on
    // every rank. Installs grad-ready hooks on them (removed by the destructor).
    GradientReducer(std::shared_ptr<Communicator> communicator, std::vector<Tensor> params,
                    std::int64_t bucket_bytes = 25ll << 20);
    ~GradientReducer();
    GradientReducer(const GradientReducer&) = delete;
    GradientReducer& operator=(const GradientReducer&) = delete;

    // Arms the hooks for one backward pass from `loss` (undefined: this rank has nothing to
    // backpropagate). The gradients must be zero (undefined) before it. Parameters that `loss`
    // does not reach are marked done at once (zeros, unused), so that their buckets do not hold
    // back the ones behind them (DDP's find_unused_parameters, always on: a walk of the graph).
    void begin(const Tensor& loss);
    // Starts the buckets still waiting (parameters without a gradient count as zeros), waits for
    // every bucket and writes the sums back into the parameters' .grad.
    void finish();

    // Copies rank `root`'s values of `tensors` (parameters, buffers) into every other rank's.
    void broadcast_from(int root, const std::vector<Tensor>& tensors);

    std::int64_t bucket_count() const { return static_cast<std::int64_t>(buckets_.size()); }
    // How many buckets the last backward started before it ended (the overlap achieved).
    std::int64_t started_during_backward() const { return started_early_; }
    // Bytes each step sends into the all-reduce (gradients and used flags).
    std::int64_t bytes_per_step() const;
    // Seconds finish() has spent waiting for the all-reduces since construction: the part of
    // communication that backward did not hide.
    double wait_seconds() const { return wait_seconds_; }

private:
    struct Slot {
        Tensor param;
        std::int64_t offset = 0;  // of its values in the bucket's buffer
        bool filled = false;
    };
    struct Bucket {
        std::vector<Slot> slots;
        Tensor buffer;  // values of every slot, then one used flag per slot
        std::int64_t values = 0;
        std::int64_t filled = 0;
        std::unique_ptr<Pending> pending;
    };

    void on_grad_ready(std::size_t bucket, std::size_t slot, const Tensor& grad);
    void start_ready_buckets(bool force);
    void start(Bucket& bucket);

    std::shared_ptr<Communicator> comm_;
    std::vector<Bucket> buckets_;
    std::size_t next_to_start_ = 0;
    bool armed_ = false;
    std::int64_t started_early_ = 0;
    double wait_seconds_ = 0;
};

}  // namespace retort::dist
