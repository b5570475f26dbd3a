// data/idx.h: IDX files, the format of MNIST and Fashion-MNIST.
//
// An IDX file is a 4-byte magic number, then one big-endian uint32 size per dimension, then the
// elements row-major. retort reads the two kinds those datasets use:
//   0x00000803  images: unsigned bytes, (N, H, W)
//   0x00000801  labels: unsigned bytes, (N), each in [0, 10)
// Files may be gzip-compressed (as distributed); that is recognized by the gzip magic bytes, not
// by the file name, and needs a build with zlib.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace retort {

// MNIST and Fashion-MNIST have ten classes; a label outside [0, 10) is a corrupt file.
inline constexpr std::int64_t kIdxNumClasses = 10;
// The largest element data retort reads from one IDX file (decompressed), checked against the
// header before anything is allocated.
inline constexpr std::uint64_t kIdxMaxDataBytes = std::uint64_t{2} << 30;  // 2 GiB

// The contents of one IDX file of unsigned bytes.
struct IdxArray {
    std::vector<std::int64_t> dims;   // sizes from the header, outermost first
    std::vector<unsigned char> data;  // the elements, row-major
};

// Reads and validates an IDX file of unsigned bytes with `rank` dimensions (3: images,
// 1: labels). Every problem is an Error naming the file.
IdxArray read_idx(const std::filesystem::path& path, int rank);
// The same from the bytes of a file already in memory (plain or gzip-compressed, with the same
// checks and limits); `source` names them in messages.
IdxArray parse_idx(std::span<const unsigned char> bytes, int rank, const std::string& source);

// A dataset of IDX images (1, H, W) and labels; `split` ("train", "test") appears in describe().
std::shared_ptr<const Dataset> load_idx_dataset(const std::filesystem::path& images,
                                                const std::filesystem::path& labels,
                                                const std::string& split);

// Whether this build reads gzip-compressed IDX files (it was built with zlib).
bool idx_gzip_supported();

}  // namespace retort
