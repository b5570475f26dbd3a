// tools/fuzz/fuzz_safetensors.cpp: the .safetensors reader (engine/io/safetensors.h) on arbitrary
// bytes, the whole file in memory (parse_safetensors, which the file reader shares its code with).
//
// Beyond "a result or a retort::Error": whatever loads must also save, and load again to the same
// tensors and metadata (serialize_safetensors is the writer save_safetensors uses).
#include <cstring>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "tools/fuzz/fuzz_common.h"

using namespace retort;

namespace {

void check_round_trip(const SafetensorsContents& first) {
    const std::string saved = serialize_safetensors(first.tensors, first.metadata);
    const SafetensorsContents again = parse_safetensors(saved, "saved again");
    fuzz::expect(again.metadata == first.metadata, "metadata changed in a round trip");
    fuzz::expect(again.tensors.size() == first.tensors.size(), "tensor count changed");
    for (const auto& [name, t] : first.tensors) {
        const auto it = again.tensors.find(name);
        fuzz::expect(it != again.tensors.end(), "a tensor vanished in a round trip");
        const Tensor& u = it->second;
        fuzz::expect(u.shape() == t.shape() && u.dtype() == t.dtype(), "shape or dtype changed");
        const std::size_t bytes = static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
        fuzz::expect(bytes == 0 || std::memcmp(u.raw_data(), t.raw_data(), bytes) == 0,
                     "tensor bytes changed in a round trip");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    SafetensorsContents contents;
    try {
        contents = parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size),
                                     "fuzz input");
    } catch (const Error&) {
        return 0;  // refused with a message: the expected answer to a bad file
    }
    check_round_trip(contents);  // outside the try: an Error here is a finding
    return 0;
}
