// engine/dist/sync_batch_norm.h: batch normalization whose statistics span every rank
// (torch.nn.SyncBatchNorm), and the differentiable all-reduce it is built from.
//
// With per-rank statistics (the default of a data-parallel run) each rank normalizes its piece
// of the batch by that piece's mean and variance; with small pieces those are noisy. SyncBatchNorm
// normalizes by the mean and variance of the whole batch over all ranks, which makes a
// data-parallel step the single process's step on the whole batch, BatchNorm included.
//
// all_reduce_sum(x): forward, the sum of x over the ranks; backward, the sum over the ranks of
// the gradients that reach it. Why: every rank's loss depends on the sum, so the gradient of the
// total loss (the sum of the ranks' losses, each weighted by its share of the batch) with respect
// to the sum is the sum of each rank's local gradient. Composed with ordinary ops, autograd then
// gives SyncBatchNorm's backward (PyTorch reduces the same two per-channel sums in its kernel).
//
// Two collectives per layer in the forward pass and two in the backward, in the same order on
// every rank; so every rank must run the forward pass (no empty piece of a batch: the Trainer
// checks it).
#pragma once

#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace retort::dist {

Tensor all_reduce_sum(const Tensor& x, Communicator& ranks);

// As batch_norm (engine/ops/normalization.h) in training mode, with the statistics of x (B, C,
// ...) over all ranks: mean and biased variance normalize; the running statistics move towards
// the mean and the unbiased variance of all ranks' samples (the same update on every rank).
// The variance is computed in two passes (sum of squares around the global mean) for accuracy.
Tensor sync_batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps, Communicator& ranks);

}  // namespace retort::dist
