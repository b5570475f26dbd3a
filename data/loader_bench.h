// data/loader_bench.h: how fast a DataLoader delivers images, for `retort bench`.
#pragma once

#include "data/loader.h"

namespace retort {

// Starts epoch 0, takes one batch to let the workers spin up, then times `batches` batches
// (continuing into later epochs if one ends) and returns images per second. The loader is left
// mid-epoch; call start_epoch() before using it again.
double measure_loader_images_per_second(DataLoader& loader, int batches);

}  // namespace retort
