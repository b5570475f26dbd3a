// data/loader_bench.cpp: throughput of the input pipeline (images per second through next()).
// The number is the consumer's view: reading, transforming, copying into the batch and the
// hand-over between threads, with nothing else competing for the cores.
#include "data/loader_bench.h"

#include <chrono>

#include "engine/error.h"

namespace retort {

double measure_loader_images_per_second(DataLoader& loader, int batches) {
    require(batches >= 1, "loader benchmark: need at least 1 batch, got ", batches);
    require(loader.batches_per_epoch() >= 1, "loader benchmark: the loader has no batches");
    std::int64_t epoch = 0;
    loader.start_epoch(epoch);
    Batch batch;
    if (!loader.next(batch)) internal_check(false, "an epoch with batches gave none");
    std::int64_t images = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < batches; ++i) {
        while (!loader.next(batch)) loader.start_epoch(++epoch);
        images += batch.images.size(0);
    }
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    return static_cast<double>(images) / seconds.count();
}

}  // namespace retort
