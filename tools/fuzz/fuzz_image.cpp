// tools/fuzz/fuzz_image.cpp: the image reader of image folders (data/image_folder.h) on arbitrary
// bytes: the header (image_info_from_bytes: the JPEG check of data/jpeg_check.h, stb_image's
// stbi_info, the size limits), then the pixels (decode_image_bytes: stb_image's decoders for PNG,
// JPEG and BMP) at the channel count an image folder would use.
//
// Beyond "a result or a retort::Error": the decoded image has the header's size, in [0, 1].
#include "data/image_folder.h"
#include "engine/error.h"
#include "tools/fuzz/fuzz_common.h"

using namespace retort;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const unsigned char> bytes = fuzz::bytes_of(data, size);
    ImageInfo info;
    try {
        info = image_info_from_bytes(bytes, "fuzz input");
    } catch (const Error&) {
        return 0;
    }
    fuzz::expect(info.width >= 1 && info.width <= kMaxImageSide && info.height >= 1 &&
                     info.height <= kMaxImageSide && info.width * info.height <= kMaxImagePixels,
                 "an image outside the limits passed the header check");
    const int wanted = info.channels <= 2 ? 1 : 3;  // as an image folder chooses
    Tensor image;
    try {
        image = decode_image_bytes(bytes, wanted, "fuzz input");
    } catch (const Error&) {
        return 0;  // a damaged body: refused after the header
    }
    fuzz::expect(image.shape() == Shape{wanted, info.height, info.width},
                 "decoded shape differs from the header");
    const float* pixels = image.data<float>();
    for (std::int64_t i = 0; i < image.numel(); ++i)
        fuzz::expect(pixels[i] >= 0 && pixels[i] <= 1, "pixel outside [0, 1]");
    return 0;
}
