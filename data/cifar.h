// data/cifar.h: the binary versions of CIFAR-10 and CIFAR-100.
//
// A file is a sequence of fixed-size records, no header:
//   CIFAR-10   1 label byte (0..9), then 3072 pixel bytes
//              (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)
//   CIFAR-100  1 coarse label (0..19), 1 fine label (0..99), then 3072 pixel bytes
//              (train.bin, test.bin)
// The pixels are channel-planar: 1024 red, 1024 green, 1024 blue, each 32x32 row-major. CIFAR-100
// samples carry the fine label (100 classes), as torchvision's CIFAR100 does.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace retort {

enum class CifarKind { cifar10, cifar100 };

// The records of all the files, in order, as one dataset of (3, 32, 32) images; `split` ("train",
// "test") appears in describe(). A file whose size is not a whole number of records, or that holds
// a label out of range, is an Error naming it.
std::shared_ptr<const Dataset> load_cifar_dataset(CifarKind kind,
                                                  const std::vector<std::filesystem::path>& files,
                                                  const std::string& split);

// The same for the bytes of one file already in memory, with the same checks; `source` names
// them in messages.
std::shared_ptr<const Dataset> cifar_dataset_from_bytes(CifarKind kind,
                                                        std::vector<unsigned char> records,
                                                        const std::string& source,
                                                        const std::string& split);

}  // namespace retort
