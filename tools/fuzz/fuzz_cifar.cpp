// tools/fuzz/fuzz_cifar.cpp: the CIFAR-10 and CIFAR-100 readers (data/cifar.h) on arbitrary bytes
// (cifar_dataset_from_bytes, which shares its checks with load_cifar_dataset), then the first and
// last samples of whatever loads.
//
// Beyond "a result or a retort::Error": samples are (3, 32, 32) in [0, 1] with labels in range.
#include "data/cifar.h"
#include "engine/error.h"
#include "tools/fuzz/fuzz_common.h"

using namespace retort;

namespace {

void check_sample(const Dataset& d, std::int64_t index) {
    const Sample s = d.get(index);
    fuzz::expect(s.image.shape() == Shape{3, 32, 32}, "sample shape is not (3, 32, 32)");
    fuzz::expect(s.label >= 0 && s.label < d.num_classes(), "label out of range");
    for (float v : s.image.to_vector<float>())
        fuzz::expect(v >= 0 && v <= 1, "pixel outside [0, 1]");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<unsigned char> bytes(data, data + size);
    for (CifarKind kind : {CifarKind::cifar10, CifarKind::cifar100}) {
        std::shared_ptr<const Dataset> d;
        try {
            d = cifar_dataset_from_bytes(kind, bytes, "fuzz input", "train");
        } catch (const Error&) {
            continue;
        }
        fuzz::expect(d->size() >= 1, "a dataset without samples loaded");
        check_sample(*d, 0);
        check_sample(*d, d->size() - 1);
    }
    return 0;
}
