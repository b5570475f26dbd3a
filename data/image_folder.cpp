// data/image_folder.cpp: image folders decoded with stb_image (layout and rules: image_folder.h).
// Shapes: a decoded image (H, W, C) bytes, interleaved -> a sample (C, H, W) float32 = byte / 255,
// as torchvision's ImageFolder with ToTensor() (which also converts to RGB, or to L when asked).
//
// stb_image is compiled here, privately (STB_IMAGE_STATIC): its functions are static to this file,
// so another part of retort may include its own copy without clashing symbols. Only the PNG, JPEG
// and BMP decoders are compiled, and stb never opens files: retort reads the bytes (with a size
// limit) and stb parses memory. stb keeps its failure reason per thread, so get() may run on the
// loader's worker threads at once. This stb version (2.27) has memory-safety defects that a
// hostile file can reach, so every buffer is checked before stb reads it: the JPEG walk of
// data/jpeg_check.h, the size the header declares (against retort's limits and against the file's
// length), and a PNG's chunks (png_for_stb below). stb is otherwise trusted to fail cleanly on
// damaged files (the tests and tools/fuzz/fuzz_image check that it does here).
#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>

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

#ifdef RETORT_HAVE_STB

std::uint32_t u32_be(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           p[3];
}
std::uint32_t u32_le(const unsigned char* p) {
    return (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) |
           p[0];
}

const unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

bool is_png(std::span<const unsigned char> b) {
    return b.size() >= 8 && std::equal(kPngSignature, kPngSignature + 8, b.data());
}

// A PNG's chunks, walked before stb_image 2.27 decodes them, for two of its defects (both found
// by fuzzing):
//  - it grows its buffer for the image data to fit each IDAT chunk's declared length before it
//    reads the chunk, so a chunk that claims 2 GB in a file of a hundred bytes makes it allocate
//    2 GB. A chunk that runs past the end of the file is refused here (stb would fail on it
//    anyway, after the allocation).
//  - an empty IDAT chunk before the first non-empty one makes it copy zero bytes to the buffer it
//    has not allocated yet (memcpy to a null pointer: undefined behaviour). An empty IDAT chunk
//    holds nothing, so such chunks are dropped from a copy of the file, which decodes to the same
//    image. The first chunk stays whatever it is (stb refuses a file that does not start with
//    IHDR).
// Returns the copy, or nullopt when the file can go to stb as it is (nearly always).
std::optional<std::vector<unsigned char>> png_for_stb(std::span<const unsigned char> b,
                                                      const std::string& label) {
    if (!is_png(b)) return std::nullopt;
    std::vector<unsigned char> out;
    std::size_t pos = 8, copied = 0;  // b[0, copied) is in `out` or dropped
    bool dropped = false;
    while (pos + 8 <= b.size()) {  // length, type, data, CRC
        const std::uint32_t length = u32_be(b.data() + pos);
        const std::string type(b.begin() + pos + 4, b.begin() + pos + 8);
        const std::uint64_t end = pos + 12 + std::uint64_t{length};
        if (type == "IEND") break;
        if (end > b.size()) {
            const bool named = std::all_of(type.begin(), type.end(), [](char c) {
                return std::isalpha(static_cast<unsigned char>(c)) != 0;
            });
            fail(label, ": the PNG chunk ", named ? "'" + type + "' " : "", "at byte ", pos, " (",
                 length, " bytes of data) runs past the end of the file; it is truncated or "
                 "corrupt");
        }
        if (pos > 8 && length == 0 && type == "IDAT") {
            out.insert(out.end(), b.begin() + copied, b.begin() + pos);
            copied = static_cast<std::size_t>(end);
            dropped = true;
        }
        pos = static_cast<std::size_t>(end);
    }
    if (!dropped) return std::nullopt;
    out.insert(out.end(), b.begin() + copied, b.end());
    return out;
}

// What a PNG, BMP or JPEG header declares, read where stb reads it.
struct Declared {
    enum class Format { unknown, png, bmp, jpeg } format = Format::unknown;
    std::int64_t width = 0, height = 0;
};

// stb refuses some huge sizes itself, with a message that names no limit ("Image too large to
// decode"), and one BMP height makes stb's own arithmetic undefined (-2^31, which it negates).
// Reading the size first means every size above retort's limits is refused with retort's message,
// and such sizes never reach stb. A JPEG's size comes from `jpeg`, the walk of data/jpeg_check.h;
// other formats are left to stb.
Declared declared_size(std::span<const unsigned char> b, const JpegInspection& jpeg) {
    Declared d;
    if (b.size() >= 24 && is_png(b) && std::equal(b.data() + 12, b.data() + 16, "IHDR")) {
        d = {Declared::Format::png, u32_be(b.data() + 16), u32_be(b.data() + 20)};
    } else if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
        d.format = Declared::Format::bmp;
        if (u32_le(b.data() + 14) == 12) {  // the OS/2 header: 16-bit sizes
            d.width = b[18] | (b[19] << 8);
            d.height = b[20] | (b[21] << 8);
        } else {  // 32-bit sizes; a negative height means rows top-down
            d.width = static_cast<std::int32_t>(u32_le(b.data() + 18));
            const auto signed_height = static_cast<std::int32_t>(u32_le(b.data() + 22));
            d.height = std::abs(static_cast<std::int64_t>(signed_height));
        }
    } else if (jpeg.has_frame) {
        d = {Declared::Format::jpeg, jpeg.width, jpeg.height};
    }
    return d;
}

// stb decodes the part of a JPEG or BMP that the file lacks as zeros, so a header alone, a few
// hundred bytes, would become an image of up to 64 Mpixels: seconds of work and 768 MB of floats
// per sample. Each format needs some data for every pixel it declares:
//  - JPEG: every 8x8 block of the full-resolution component costs at least one bit (its DC
//    code), so at least width * height / 512 bytes; half that is required.
//  - BMP (stb reads no compressed BMP): every row at least 1 bit per pixel, padded to 4 bytes.
// PNG needs no such rule: stb checks the inflated data against the size before decoding it.
void check_enough_data(const Declared& d, std::uint64_t file_bytes, const std::string& label) {
    std::int64_t needed = 0;
    const char* format = "";
    if (d.format == Declared::Format::jpeg) {
        needed = d.width * d.height / 1024;
        format = "JPEG";
    } else if (d.format == Declared::Format::bmp) {
        needed = d.height * ((d.width + 31) / 32) * 4;
        format = "BMP";
    }
    if (file_bytes < static_cast<std::uint64_t>(needed))
        fail(label, ": the file is ", file_bytes, " bytes, too few for the ", d.width, "x",
             d.height, " pixels its ", format, " header declares (at least ", needed,
             "); it is truncated or corrupt");
}

void check_size(std::int64_t w, std::int64_t h, const std::string& label) {
    if (w <= 0 || h <= 0) fail(label, ": the header gives an empty size ", w, "x", h);
    if (w > kMaxImageSide || h > kMaxImageSide)
        fail(label, ": the image is ", w, "x", h, " pixels; retort refuses images wider or taller ",
             "than ", kMaxImageSide, " pixels");
    if (w * h > kMaxImagePixels)
        fail(label, ": the image is ", w, "x", h, " = ", w * h, " pixels, above the limit of ",
             kMaxImagePixels, " (64 Mpixels)");
}

// The header of an encoded image: `bytes` is the file or its start, `file_bytes` the whole file's
// size. Returns false when stb cannot parse even the header (the caller may retry with more
// bytes). Every buffer goes through the JPEG checks (data/jpeg_check.h) and the declared size
// checks before stb sees it.
bool parse_header(std::span<const unsigned char> bytes, std::uint64_t file_bytes, ImageInfo& info,
                  const std::string& label) {
    const JpegInspection jpeg = inspect_jpeg(bytes.data(), bytes.size());
    if (!jpeg.huffman_tables_fit)
        fail(label,
             ": a Huffman table of this JPEG declares more than 256 symbols; the file is corrupt");
    if (!jpeg.scan_tables_defined)
        fail(label, ": a scan of this JPEG decodes with a Huffman table the file does not define; ",
             "the file is corrupt, or relies on the standard tables as Motion JPEG frames do, ",
             "which retort does not read");
    const Declared declared = declared_size(bytes, jpeg);
    if (declared.format != Declared::Format::unknown) {
        check_size(declared.width, declared.height, label);
        check_enough_data(declared, file_bytes, label);
    }
    // stb counts bytes in an int: larger buffers are refused before they get here
    internal_check(bytes.size() <= kMaxImageFileBytes, "image bytes are size-checked first");
    int width = 0, height = 0, channels = 0;
    if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height,
                              &channels) == 0)
        return false;
    info = {width, height, channels};
    return true;
}

void check_limits(const ImageInfo& info, const std::string& label) {
    check_size(info.width, info.height, label);  // stb's reading, should it differ from ours
    if (info.channels < 1 || info.channels > 4)
        fail(label, ": the image has ", info.channels, " channels; retort reads 1 to 4");
}

void check_file_size(std::uint64_t size, const std::string& label) {
    if (size > kMaxImageFileBytes)
        fail(label, ": the file is ", size, " bytes, above the limit of ", kMaxImageFileBytes,
             " bytes for one image");
}

const char* failure_reason() {
    const char* reason = stbi_failure_reason();
    return reason && *reason ? reason : "unknown error";
}

std::string unreadable(const std::string& label) {
    return cat(label, ": not a readable PNG, JPEG or BMP image (", failure_reason(), ")");
}

// Reads only the start of the file when that holds the header (it nearly always does).
ImageInfo read_header(const fs::path& path) {
    constexpr std::size_t kHeadBytes = 64 << 10;
    InputFile file(path, "image");
    check_file_size(file.size(), file.label());
    std::vector<unsigned char> bytes(
        static_cast<std::size_t>(std::min<std::uint64_t>(file.size(), kHeadBytes)));
    bytes.resize(file.read_some(bytes.data(), bytes.size()));
    ImageInfo info;
    if (parse_header(bytes, file.size(), info, file.label())) {
        check_limits(info, file.label());
        return info;
    }
    // e.g. a JPEG with large metadata before its size: then the whole file
    const std::size_t head = bytes.size();
    bytes.resize(static_cast<std::size_t>(file.size()));
    bytes.resize(head + file.read_some(bytes.data() + head, bytes.size() - head));
    return image_info_from_bytes(bytes, file.label());
}

struct StbFree {
    void operator()(unsigned char* p) const { stbi_image_free(p); }
};

Tensor decode_image(const ImageFolderDataset::Image& image, int channels) {
    std::vector<unsigned char> bytes;
    append_file_bytes(image.path, "image", kMaxImageFileBytes, bytes);
    const std::string label = "image " + quote_path(image.path);
    // the file may have been replaced since the folder was opened
    const ImageInfo info = image_info_from_bytes(bytes, label);
    if (info.width != image.width || info.height != image.height)
        fail(label, ": the image is now ", info.width, "x", info.height, " pixels; it was ",
             image.width, "x", image.height, " when the dataset was opened");
    return decode_image_bytes(bytes, channels, label);
}

#else

[[noreturn]] void no_stb() {
    fail("image folders need stb_image, but retort was built without it (RETORT_STB=OFF or "
         "RETORT_MINIMAL=ON, or libstb-dev missing when it was configured); rebuild with libstb-dev "
         "installed, RETORT_STB=ON and RETORT_MINIMAL=OFF");
}
ImageInfo read_header(const fs::path&) { no_stb(); }
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
            const ImageInfo info = read_header(file);
            all_grey = all_grey && info.channels <= 2;
            if (!images_.empty())
                same_size = same_size && info.width == images_.front().width &&
                            info.height == images_.front().height;
            images_.push_back(
                {file.string(), static_cast<std::int64_t>(k), info.width, info.height});
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

#ifdef RETORT_HAVE_STB

ImageInfo image_info_from_bytes(std::span<const unsigned char> bytes, const std::string& label) {
    check_file_size(bytes.size(), label);
    ImageInfo info;
    if (!parse_header(bytes, bytes.size(), info, label)) fail(unreadable(label));
    check_limits(info, label);
    return info;
}

Tensor decode_image_bytes(std::span<const unsigned char> bytes, int channels,
                          const std::string& label) {
    require(channels >= 1 && channels <= 4, label, ": cannot decode to ", channels,
            " channels; 1 to 4 are possible");
    const ImageInfo info = image_info_from_bytes(bytes, label);
    const std::optional<std::vector<unsigned char>> cleaned = png_for_stb(bytes, label);
    const std::span<const unsigned char> for_stb =
        cleaned ? std::span<const unsigned char>(*cleaned) : bytes;
    int w = 0, h = 0, file_channels = 0;
    std::unique_ptr<unsigned char, StbFree> pixels(stbi_load_from_memory(
        for_stb.data(), static_cast<int>(for_stb.size()), &w, &h, &file_channels, channels));
    if (!pixels) fail(label, ": cannot decode the image (", failure_reason(), ")");
    if (w != info.width || h != info.height)
        fail(label, ": decoded to ", w, "x", h, " pixels, but its header says ", info.width, "x",
             info.height);

    Tensor out = Tensor::empty({channels, h, w}, DType::f32);
    float* dst = out.data<float>();
    const std::int64_t plane = static_cast<std::int64_t>(w) * h;
    for (std::int64_t p = 0; p < plane; ++p)
        for (int c = 0; c < channels; ++c)
            dst[c * plane + p] = static_cast<float>(pixels.get()[p * channels + c]) / 255.0f;
    return out;
}

#else

ImageInfo image_info_from_bytes(std::span<const unsigned char>, const std::string&) { no_stb(); }
Tensor decode_image_bytes(std::span<const unsigned char>, int, const std::string&) { no_stb(); }

#endif

bool image_folder_supported() {
#ifdef RETORT_HAVE_STB
    return true;
#else
    return false;
#endif
}

}  // namespace retort
