// engine/io/safetensors.h: reading and writing .safetensors files, the tensor format of PyTorch
// checkpoints on the Hugging Face hub (https://github.com/huggingface/safetensors).
//
// Layout of a file:
//   bytes 0..7    N, the header length, an unsigned 64-bit little-endian integer
//   bytes 8..8+N  the header: a JSON object mapping each tensor name to
//                   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//                 and optionally "__metadata__" to an object of string -> string (or null)
//   the rest      the data area: each tensor's bytes, row-major, little-endian, at
//                 [begin, end) counted from the first byte after the header
//
// Loading validates the whole header before it allocates anything, and refuses a file whose
// tensors do not tile the data area exactly (no overlaps, no unused bytes: the format's
// specification requires that, and it means the memory a file asks for is never more than a
// small multiple of its size). Every problem is a retort::Error naming the file, the tensor and
// what is wrong.
//
// Element types on disk and what they load as (retort computes in f32/f64/i32/i64):
//   F32 -> float32    F64 -> float64    I32 -> int32    I64 -> int64
//   F16, BF16 -> float32 (exact: every half and bfloat16 value is a float)
//   BOOL, U8, I8, I16 -> int32 (exact; BOOL gives 0 or 1)
//   anything else (F8_*, U16, U32, U64, C64, ...) -> an "unsupported dtype" error
// Saving writes float32/float64/int32/int64 as F32/F64/I32/I64.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "engine/tensor.h"

namespace retort {

struct SafetensorsContents {
    std::map<std::string, Tensor> tensors;
    std::map<std::string, std::string> metadata;  // the "__metadata__" object; often empty
};

// The largest header a file may declare, as in the reference implementation.
constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Reads a whole file: tensors (on the CPU) and metadata.
SafetensorsContents read_safetensors(const std::string& path);
// The tensors of a file, by name.
std::map<std::string, Tensor> load_safetensors(const std::string& path);
// The same from bytes already in memory; `source` names them in error messages.
SafetensorsContents parse_safetensors(std::string_view bytes,
                                      const std::string& source = "(in-memory buffer)");

// Writes the tensors (CPU, float32/float64/int32/int64) and metadata. The header lists the
// tensors sorted by name, "__metadata__" first, padded with spaces to a multiple of 8 bytes. The
// data area holds 8-byte types first, then 4-byte ones, each group by name, so every tensor
// starts at a multiple of its element size (readers that map the file in place rely on that).
// The file is written to "<path>.tmp.<pid>", flushed to disk and renamed over `path`: a crash
// leaves either the old file or the new one, never a part of one. On failure the temporary file
// is removed and a retort::Error is thrown.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// The bytes save_safetensors would write.
std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace retort
