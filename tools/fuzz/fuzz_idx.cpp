// tools/fuzz/fuzz_idx.cpp: the IDX reader (data/idx.h) on arbitrary bytes, plain or gzip, as an
// image file (rank 3) and as a label file (rank 1): parse_idx, which shares both stages (header,
// data) with read_idx.
//
// Beyond "a result or a retort::Error": what parses holds exactly the bytes its sizes promise.
#include "data/idx.h"
#include "engine/error.h"
#include "tools/fuzz/fuzz_common.h"

using namespace retort;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    for (int rank : {3, 1}) {
        IdxArray array;
        try {
            array = parse_idx(fuzz::bytes_of(data, size), rank, "fuzz input");
        } catch (const Error&) {
            continue;
        }
        std::uint64_t elements = 1;
        for (std::int64_t d : array.dims) elements *= static_cast<std::uint64_t>(d);
        fuzz::expect(array.dims.size() == static_cast<std::size_t>(rank), "wrong rank");
        fuzz::expect(array.data.size() == elements, "data size differs from the header's sizes");
    }
    return 0;
}
