// data/image_folder.cpp: image folders decoded with stb_image (layout and rules: image_folder.h).
// Shapes: a decoded image (H, W, C) bytes, interleaved -> a sample (C, H, W) float32 = byte / 255,
// as torchvision's ImageFolder with ToTensor() (which also converts to RGB, or to L when asked).
//
// stb_image is compiled here, privately (STB_IMAGE_STATIC): its functions are static to this file,
// so another part of retort may include its own copy without clashing symbols. Only the PNG, JPEG
// and BMP decoders are compiled, and stb never opens files: retort reads the bytes (with a size
// limit) and stb parses memory. stb keeps its failure reason per thread, so get() may run on the
// loader's worker threads at once. Each buffer passes data/jpeg_check.h before stb reads it, which
// keeps a known memory-safety defect of this stb version out of reach; stb is otherwise trusted
// to fail cleanly on damaged files (the tests and a mutation run check that it does here).
#include "data/image_folder.h"

#include <algorithm>
#include <cctype>

#include "data/file_bytes.h"
#include "data/jpeg_check.h"
#include "engine/error.h"

#ifdef RETORT_HAVE_STB
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop
#endif

namespace retort {

const char* const kImageFolderLayout =
    "ROOT/train/<class>/*.png|jpg|jpeg|bmp and ROOT/test/<class>/... (optional "
    "ROOT/val/<class>/...)";

namespace {

namespace fs = std::filesystem;

bool is_hidden(const fs::path& path) { return path.filename().string().starts_with('.'); }

bool has_image_extension(const fs::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool is_dir(const fs::path& path) {
    std::error_code ec;
    return fs::is_directory(path, ec);  // follows symbolic links
}

// The image files of one class folder, sorted by name so the order never depends on the file
// system.
std::vector<fs::path> image_files(const fs::path& class_dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    fs::directory_iterator it(class_dir, ec);
    if (ec) fail("class folder ", quote_path(class_dir), ": cannot list it: ", ec.message());
    for (const fs::directory_entry& entry : it) {
        std::error_code type_error;
        if (is_hidden(entry.path()) || !entry.is_regular_file(type_error)) continue;
        if (has_image_extension(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

struct ImageHeader {
    int width = 0, height = 0, channels = 0;
};

#ifdef RETORT_HAVE_STB

// The header of an encoded image in memory. Returns false when stb cannot parse even the header
// (the caller may retry with more bytes). Every buffer goes through the JPEG check before stb
// sees it (see data/jpeg_check.h).
bool parse_header(const std::vector<unsigned char>& bytes, ImageHeader& header,
                  const std::string& label) {
    if (!jpeg_huffman_tables_fit(bytes.data(), bytes.size()))
        fail(label,
             ": a Huffman table of this JPEG declares more than 256 symbols; the file is corrupt");
    return stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &header.width,
                                 &header.height, &header.channels) != 0;
}

void check_limits(const ImageHeader& header, const std::string& label) {
    const std::int64_t w = header.width, h = header.height;
    if (w <= 0 || h <= 0) fail(label, ": the header gives an empty size ", w, "x", h);
    if (w > kMaxImageSide || h > kMaxImageSide)
        fail(label, ": the image is ", w, "x", h, " pixels; retort refuses images wider or taller ",
             "than ", kMaxImageSide, " pixels");
    if (w * h > kMaxImagePixels)
        fail(label, ": the image is ", w, "x", h, " = ", w * h, " pixels, above the limit of ",
             kMaxImagePixels, " (64 Mpixels)");
    if (header.channels < 1 || header.channels > 4)
        fail(label, ": the image has ", header.channels, " channels; retort reads 1 to 4");
}

const char* failure_reason() {
    const char* reason = stbi_failure_reason();
    return reason && *reason ? reason : "unknown error";
}

std::string unreadable(const std::string& label) {
    return cat(label, ": not a readable PNG, JPEG or BMP image (", failure_reason(), ")");
}

// Reads only the start of the file when that holds the header (it nearly always does).
ImageHeader read_header(const fs::path& path) {
    constexpr std::size_t kHeadBytes = 64 << 10;
    InputFile file(path, "image");
    if (file.size() > kMaxImageFileBytes)
        fail(file.label(), ": the file is ", file.size(), " bytes, above the limit of ",
             kMaxImageFileBytes, " bytes for one image");
    std::vector<unsigned char> bytes(
        static_cast<std::size_t>(std::min<std::uint64_t>(file.size(), kHeadBytes)));
    bytes.resize(file.read_some(bytes.data(), bytes.size()));
    ImageHeader header;
    bool parsed = parse_header(bytes, header, file.label());
    if (!parsed && bytes.size() < file.size()) {  // e.g. a JPEG with large metadata before its size
        const std::size_t head = bytes.size();
        bytes.resize(static_cast<std::size_t>(file.size()));
        bytes.resize(head + file.read_some(bytes.data() + head, bytes.size() - head));
        parsed = parse_header(bytes, header, file.label());
    }
    if (!parsed) fail(unreadable(file.label()));
    check_limits(header, file.label());
    return header;
}

struct StbFree {
    void operator()(unsigned char* p) const { stbi_image_free(p); }
};

Tensor decode_image(const ImageFolderDataset::Image& image, int channels) {
    std::vector<unsigned char> bytes;
    append_file_bytes(image.path, "image", kMaxImageFileBytes, bytes);
    const std::string label = "image " + quote_path(image.path);
    ImageHeader header;
    if (!parse_header(bytes, header, label)) fail(unreadable(label));
    check_limits(header, label);  // the file may have been replaced since the folder was opened
    if (header.width != image.width || header.height != image.height)
        fail(label, ": the image is now ", header.width, "x", header.height, " pixels; it was ",
             image.width, "x", image.height, " when the dataset was opened");
    int w = 0, h = 0, file_channels = 0;
    std::unique_ptr<unsigned char, StbFree> pixels(stbi_load_from_memory(
        bytes.data(), static_cast<int>(bytes.size()), &w, &h, &file_channels, channels));
    if (!pixels) fail(label, ": cannot decode the image (", failure_reason(), ")");
    if (w != header.width || h != header.height)
        fail(label, ": decoded to ", w, "x", h, " pixels, but its header says ", header.width, "x",
             header.height);

    Tensor out = Tensor::empty({channels, h, w}, DType::f32);
    float* dst = out.data<float>();
    const std::int64_t plane = static_cast<std::int64_t>(w) * h;
    for (std::int64_t p = 0; p < plane; ++p)
        for (int c = 0; c < channels; ++c)
            dst[c * plane + p] = static_cast<float>(pixels.get()[p * channels + c]) / 255.0f;
    return out;
}

#else

[[noreturn]] void no_stb() {
    fail("image folders need stb_image, but retort was built without it; install libstb-dev and "
         "rebuild");
}
ImageHeader read_header(const fs::path&) { no_stb(); }
Tensor decode_image(const ImageFolderDataset::Image&, int) { no_stb(); }

#endif

}  // namespace

std::vector<std::string> ImageFolderDataset::class_folders(const fs::path& dir) {
    if (!is_dir(dir))
        fail("image folder ", quote_path(dir), " does not exist or is not a directory; expected ",
             kImageFolderLayout);
    std::vector<std::string> names;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) fail("image folder ", quote_path(dir), ": cannot list it: ", ec.message());
    for (const fs::directory_entry& entry : it)
        if (!is_hidden(entry.path()) && is_dir(entry.path()))
            names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    if (names.empty())
        fail("image folder ", quote_path(dir), " holds no class folders; expected ",
             kImageFolderLayout);
    return names;
}

ImageFolderDataset::ImageFolderDataset(const fs::path& dir, std::string split,
                                       std::vector<std::string> classes, int channels)
    : classes_(std::move(classes)) {
    require(channels == 0 || channels == 1 || channels == 3, "image folder ", quote_path(dir),
            ": channels must be 0 (choose), 1 or 3, got ", channels);
#ifndef RETORT_HAVE_STB
    no_stb();
#endif
    bool all_grey = true, same_size = true;
    for (std::size_t k = 0; k < classes_.size(); ++k) {
        const fs::path class_dir = dir / classes_[k];
        if (!is_dir(class_dir))
            fail("image folder ", quote_path(dir), ": the class folder ", quote_path(class_dir),
                 " is missing");
        const std::vector<fs::path> files = image_files(class_dir);
        if (files.empty())
            fail("class folder ", quote_path(class_dir),
                 " holds no images (.png, .jpg, .jpeg, .bmp)");
        for (const fs::path& file : files) {
            const ImageHeader header = read_header(file);
            all_grey = all_grey && header.channels <= 2;
            if (!images_.empty())
                same_size = same_size && header.width == images_.front().width &&
                            header.height == images_.front().height;
            images_.push_back(
                {file.string(), static_cast<std::int64_t>(k), header.width, header.height});
        }
    }
    internal_check(!images_.empty(), "an image folder with classes has images");
    const std::int64_t c = channels != 0 ? channels : all_grey ? 1 : 3;
    shape_ = same_size ? Shape{c, images_.front().height, images_.front().width} : Shape{c, 0, 0};
    description_ = cat("image folder ", split, ": ", images_.size(), " images ",
                       same_size ? shape_str(shape_) : cat("(", c, " channels, sizes vary)"), ", ",
                       classes_.size(), " classes, from ", quote_path(dir));
}

Sample ImageFolderDataset::get(std::int64_t index) const {
    check_sample_index(index, size(), description_);
    const Image& image = images_[static_cast<std::size_t>(index)];
    return {decode_image(image, static_cast<int>(shape_[0])), image.label};
}

bool image_folder_supported() {
#ifdef RETORT_HAVE_STB
    return true;
#else
    return false;
#endif
}

}  // namespace retort
