// data/image_folder.h: a folder of PNG, JPEG and BMP images, one sub-folder per class
// (torchvision's ImageFolder layout):
//
//   ROOT/train/<class>/*.png|jpg|jpeg|bmp     the training images (required)
//   ROOT/test/<class>/...                     the test images (required), the same class names
//   ROOT/val/<class>/...                      optional: the validation split (see load_dataset)
//
// The classes are the sorted names of the sub-folders of train/; the label of an image is the
// index of its folder's name in that list. Hidden entries (names starting with '.') and files with
// other extensions are skipped; a class folder with no image is an Error naming it.
//
// Opening a split reads every image's header (not its pixels): an unreadable file, an image
// wider or taller than kMaxImageSide or larger than kMaxImagePixels, or a JPEG or BMP file too
// short for the size its header declares, is refused at once, naming the file. The pixels are
// decoded in get(), so the dataset holds only file names and sizes in memory; get() is
// thread-safe and throws retort::Error naming the file if the image cannot be decoded then (the
// loader passes that Error on to its caller).
//
// Channels: every sample of a dataset has the same number. Unless told, it is 1 when every
// training image is greyscale (with or without alpha) and 3 otherwise; alpha is dropped and grey
// images are repeated into RGB as needed. The test and val splits use the training split's count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace retort {

inline constexpr std::int64_t kMaxImageSide = 16384;             // pixels, width or height
inline constexpr std::int64_t kMaxImagePixels = 64ll << 20;      // width * height (64 Mpixels)
inline constexpr std::uint64_t kMaxImageFileBytes = 256ull << 20;  // bytes of one image file

// One line that shows the expected layout, for error messages.
extern const char* const kImageFolderLayout;

class ImageFolderDataset : public Dataset {
public:
    // Opens the split folder `dir` (ROOT/train, ROOT/test, ...). `classes` are the class folder
    // names (each must exist under dir); `channels` is 1 or 3, or 0 to choose from the headers.
    ImageFolderDataset(const std::filesystem::path& dir, std::string split,
                       std::vector<std::string> classes, int channels = 0);

    // The sorted names of the class folders in `dir`; an Error if there are none.
    static std::vector<std::string> class_folders(const std::filesystem::path& dir);

    std::int64_t size() const override { return static_cast<std::int64_t>(images_.size()); }
    Sample get(std::int64_t index) const override;  // decodes the file; throws Error if it cannot
    std::int64_t num_classes() const override { return static_cast<std::int64_t>(classes_.size()); }
    // (C, H, W) when every image has the same size, else (C, 0, 0).
    Shape image_shape() const override { return shape_; }
    std::string describe() const override { return description_; }
    const std::vector<std::string>& classes() const { return classes_; }

    struct Image {
        std::string path;
        std::int64_t label;
        std::int64_t width, height;  // from the header, checked again when decoded
    };

private:
    std::vector<std::string> classes_;
    std::vector<Image> images_;
    Shape shape_;
    std::string description_;
};

// Whether this build reads image folders (it was built with stb_image).
bool image_folder_supported();

// The two steps of reading one image, for the bytes of a file already in memory. `label` starts
// every error message ("image '/data/train/cat/1.png'").
struct ImageInfo {
    std::int64_t width = 0, height = 0;
    int channels = 0;  // as stored: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
};
// The size and channels from the header alone (no pixel is decoded), checked against the limits
// above: an empty size, a side above kMaxImageSide, a count above kMaxImagePixels, or a JPEG or
// BMP too short for its declared size is an Error.
ImageInfo image_info_from_bytes(std::span<const unsigned char> bytes, const std::string& label);
// The image as float32 (channels, H, W) in [0, 1], channels 1 to 4 (alpha dropped or grey
// repeated as needed). The header is checked as above before any pixel is decoded.
Tensor decode_image_bytes(std::span<const unsigned char> bytes, int channels,
                          const std::string& label);

}  // namespace retort
