// data/loader.h: batches from a dataset, assembled by worker threads ahead of the training step.
//
// Reproducibility: the sample order of epoch e is a permutation drawn from (seed, e), and every
// random augmentation of a sample draws from a Philox stream keyed by (seed, epoch, sample index).
// Which worker thread builds which batch therefore changes nothing: the same seed gives the same
// batches, bit for bit, with 0, 1 or 8 workers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/tensor.h"

namespace retort {

struct Batch {
    Tensor images;    // (B, C, H, W) float32, transformed
    Tensor labels;    // (B) int64
    Tensor targets;   // (B, K) float32 class probabilities when mixup/cutmix mixed the labels;
                      // undefined otherwise (train on `labels`)
    std::vector<std::int64_t> indices;  // dataset index of each sample (teacher-output caches)
    // Samples of the whole batch over every rank of a data-parallel run (this process's share is
    // labels.numel(), possibly 0 for a last batch smaller than the number of ranks).
    std::int64_t global_size = 0;
    // Which of the transforms' variants (TransformPipeline::variants) each sample's image is;
    // empty when the transforms have too many to number or a batch transform mixed the images.
    std::vector<std::int64_t> variants;
};

struct LoaderOptions {
    std::int64_t batch_size = 128;
    bool shuffle = true;
    bool drop_last = false;
    int workers = 2;              // threads that build batches (0: build on the caller's thread)
    int prefetch = 4;             // batches built ahead of the consumer
    std::uint64_t seed = 0;
    // Per-sample transforms, applied in order: "name" or "name:key=value,key=value", separated
    // by ';' (see data/transforms.h), e.g. "random_crop:padding=4; flip; normalize:mean=0.286,std=0.353".
    std::string transforms;
    // A batch transform: "" (none), "mixup:alpha=0.2", "cutmix:alpha=1.0".
    std::string batch_transform;
    // Where next() delivers batches. For a GPU the workers build each batch in pinned host
    // memory, and the copy of batch b + 1 (images, labels and mixed targets) starts on a copy
    // stream when batch b is handed out, so that it travels while step b computes
    // (engine/cuda/upload.h; with workers = 0 the copy is synchronous).
    Device device = Device::cpu();
    // Data parallel: this process is rank `shard_rank` of `shard_count` and builds only its piece
    // of every batch (dist::shard_range of the batch's positions). The epoch's sample order, the
    // batch boundaries and each sample's augmentation are the single process's, so the ranks
    // together see exactly the batches one process would.
    int shard_rank = 0;
    int shard_count = 1;
};

class DataLoader {
public:
    DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
    ~DataLoader();  // stops and joins the workers
    DataLoader(const DataLoader&) = delete;
    DataLoader& operator=(const DataLoader&) = delete;

    std::int64_t batches_per_epoch() const;
    // Begins epoch `epoch`, skipping its first `skip_batches` batches (to resume mid-epoch).
    void start_epoch(std::int64_t epoch, std::int64_t skip_batches = 0);
    // The next batch of the epoch; false when the epoch is over. A failure while building a batch
    // (a sample that cannot be read, a transform that does not apply) is thrown here, on the
    // caller's thread, as retort::Error; a later call goes on with the following batch.
    bool next(Batch& batch);

    const Dataset& dataset() const { return *dataset_; }
    const LoaderOptions& options() const { return options_; }
    // One line for logs: batch size, workers, the parsed transforms.
    std::string describe() const;

private:
    void copy_ahead();  // GPU batches: start copying the next built batch (data/loader.cpp)
    struct State;  // threads, queues: data/loader.cpp
    std::shared_ptr<const Dataset> dataset_;
    LoaderOptions options_;
    std::unique_ptr<State> state_;
};

// The sample order of an epoch: a permutation of 0..n-1 drawn from (seed, epoch) when shuffling,
// else 0..n-1. Batch b of the epoch holds positions [b * batch_size, (b + 1) * batch_size).
std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch,
                                      bool shuffle);

}  // namespace retort
