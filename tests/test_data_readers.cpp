// tests/test_data_readers.cpp: the dataset readers of data/ (IDX plain and gzip, CIFAR-10/100
// binaries, image folders, the synthetic dataset) and load_dataset()'s format detection and
// validation split, on small files generated here, plus every kind of bad file.
//
// The files are written by hand, without zlib or stb: gzip and PNG streams use "stored"
// (uncompressed) deflate blocks, which every inflater must accept, and BMP is a plain header plus
// rows. So the tests need nothing the library does not, and each byte on disk is visible here.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>

#include "data/cifar.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/jpeg_check.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "engine/engine.h"
#include "layers/linear.h"

using namespace retort;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

// ---------------------------------------------------------------------------------------------
// Scratch space and error checks

class TempDir {
public:
    TempDir() {
        static int counter = 0;
        path_ = fs::temp_directory_path() / ("retort_test_data_" + std::to_string(::getpid()) +
                                             "_" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    fs::path operator/(const std::string& name) const { return path_ / name; }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

void write_file(const fs::path& path, const Bytes& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

Bytes text_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

// The message of the retort::Error that f throws; fails the check if it throws none.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    FAIL_CHECK("expected a retort::Error");
    return "";
}

// Checks that the message holds every part (typically the file's path and the reason).
void check_message(const std::string& message, std::initializer_list<std::string> parts) {
    INFO("message: ", message);
    for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Byte encodings

void put_u16_le(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 2; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void put_u32_le(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void put_u32_be(Bytes& b, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

std::uint32_t crc32(const Bytes& data) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char byte : data) {
        crc ^= byte;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

std::uint32_t adler32(const Bytes& data) {
    std::uint32_t a = 1, b = 0;
    for (unsigned char byte : data) {
        a = (a + byte) % 65521;
        b = (b + a) % 65521;
    }
    return (b << 16) | a;
}

// Deflate data as stored blocks of at most 65535 bytes (RFC 1951, BTYPE 00).
Bytes deflate_stored(const Bytes& data) {
    Bytes out;
    std::size_t pos = 0;
    do {
        const std::size_t n = std::min<std::size_t>(data.size() - pos, 65535);
        const bool last = pos + n == data.size();
        out.push_back(last ? 1 : 0);
        put_u16_le(out, static_cast<std::uint32_t>(n));
        put_u16_le(out, static_cast<std::uint32_t>(~n & 0xFFFF));
        out.insert(out.end(), data.begin() + pos, data.begin() + pos + n);
        pos += n;
    } while (pos < data.size());
    return out;
}

// A gzip file (RFC 1952) holding data.
Bytes gzip(const Bytes& data) {
    Bytes out = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF};
    append(out, deflate_stored(data));
    put_u32_le(out, crc32(data));
    put_u32_le(out, static_cast<std::uint32_t>(data.size()));
    return out;
}

Bytes idx_file(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data) {
    Bytes out;
    put_u32_be(out, magic);
    for (std::uint32_t d : dims) put_u32_be(out, d);
    append(out, data);
    return out;
}

Bytes png_chunk(const char* type, const Bytes& data) {
    Bytes out;
    put_u32_be(out, static_cast<std::uint32_t>(data.size()));
    Bytes typed(type, type + 4);
    append(typed, data);
    append(out, typed);
    put_u32_be(out, crc32(typed));
    return out;
}

Bytes png_header(std::uint32_t width, std::uint32_t height, int channels) {
    const unsigned char color_type[] = {0, 0, 4, 2, 6};  // grey, grey+alpha, RGB, RGBA
    Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    Bytes ihdr;
    put_u32_be(ihdr, width);
    put_u32_be(ihdr, height);
    append(ihdr, {8, color_type[channels], 0, 0, 0});
    append(out, png_chunk("IHDR", ihdr));
    return out;
}

// An 8-bit PNG of interleaved pixels (H, W, channels), rows unfiltered.
Bytes png_file(int width, int height, int channels, const Bytes& pixels) {
    Bytes raw;
    for (int y = 0; y < height; ++y) {
        raw.push_back(0);  // filter type: none
        const auto row = pixels.begin() + static_cast<std::ptrdiff_t>(y) * width * channels;
        raw.insert(raw.end(), row, row + width * channels);
    }
    Bytes zlib = {0x78, 0x01};
    append(zlib, deflate_stored(raw));
    put_u32_be(zlib, adler32(raw));
    Bytes out = png_header(width, height, channels);
    append(out, png_chunk("IDAT", zlib));
    append(out, png_chunk("IEND", {}));
    return out;
}

Bytes bmp_header(std::int32_t width, std::int32_t height, std::uint32_t pixel_bytes) {
    Bytes out = {'B', 'M'};
    put_u32_le(out, 54 + pixel_bytes);
    put_u32_le(out, 0);
    put_u32_le(out, 54);
    put_u32_le(out, 40);
    put_u32_le(out, static_cast<std::uint32_t>(width));
    put_u32_le(out, static_cast<std::uint32_t>(height));
    put_u16_le(out, 1);   // planes
    put_u16_le(out, 24);  // bits per pixel
    for (std::uint32_t v : {0u, pixel_bytes, 2835u, 2835u, 0u, 0u}) put_u32_le(out, v);
    return out;
}

// A 24-bit BMP of interleaved RGB pixels (H, W, 3): rows bottom-up, BGR, padded to 4 bytes.
Bytes bmp_file(int width, int height, const Bytes& rgb) {
    const int stride = (3 * width + 3) / 4 * 4;
    Bytes out = bmp_header(width, height, static_cast<std::uint32_t>(stride * height));
    for (int y = height - 1; y >= 0; --y) {
        for (int x = 0; x < width; ++x)
            for (int c = 2; c >= 0; --c) out.push_back(rgb[(y * width + x) * 3 + c]);
        for (int p = 3 * width; p < stride; ++p) out.push_back(0);
    }
    return out;
}

// n bytes, distinct enough that a misplaced byte shows: (seed + 37 k) mod 256.
Bytes pattern(std::size_t n, unsigned seed = 0) {
    Bytes out(n);
    for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<unsigned char>((seed + 37 * k) % 256);
    return out;
}

// An 8x4 greyscale JPEG (quality 95, written by Pillow) of the pixels 16 x + 8 y.
const std::string kTinyJpeg(
    "\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    "\xff\xdb\x00\x43\x00\x02\x01\x01\x01\x01\x01\x02\x01\x01\x01\x02\x02\x02\x02\x02"
    "\x04\x03\x02\x02\x02\x02\x05\x04\x04\x03\x04\x06\x05\x06\x06\x06\x05\x06\x06\x06"
    "\x07\x09\x08\x06\x07\x09\x07\x06\x06\x08\x0b\x08\x09\x0a\x0a\x0a\x0a\x0a\x06\x08"
    "\x0b\x0c\x0b\x0a\x0c\x09\x0a\x0a\x0a\xff\xc0\x00\x0b\x08\x00\x04\x00\x08\x01\x01"
    "\x11\x00\xff\xc4\x00\x14\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x08\xff\xc4\x00\x1b\x10\x00\x01\x04\x03\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x00\x06\x00\x01\x09\x24\x41\x52\xd1\xff\xda\x00\x08\x01\x01\x00"
    "\x00\x3f\x00\x13\xc6\xd8\x28\xdd\x0a\x5a\xe5\xb8\xbf\xff\xd9",
    175);

// A DHT segment with one table whose 16 counts are all 0x20: 512 symbols, more than a byte holds.
Bytes oversized_dht() {
    Bytes out(21, 0x20);
    const unsigned char head[] = {0xFF, 0xC4, 0x00, 0x13, 0x00};  // marker, length 19, class/id 0
    std::copy(std::begin(head), std::end(head), out.begin());
    return out;
}

void check_image(const Tensor& image, const Shape& shape, const Bytes& planar_bytes) {
    REQUIRE(image.shape() == shape);
    REQUIRE(image.dtype() == DType::f32);
    const std::vector<float> values = image.to_vector<float>();
    REQUIRE(values.size() == planar_bytes.size());
    for (std::size_t k = 0; k < values.size(); ++k)
        if (values[k] != static_cast<float>(planar_bytes[k]) / 255.0f) {
            FAIL_CHECK("value ", k, " is ", values[k], ", expected byte ", int{planar_bytes[k]});
            return;
        }
}

// ---------------------------------------------------------------------------------------------
// Small datasets on disk

constexpr std::uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;

// MNIST-style files: n images of h x w, labels k % 10, under the standard names.
void write_mnist(const fs::path& dir, std::uint32_t n_train, std::uint32_t n_test, bool gzipped) {
    const std::uint32_t h = 4, w = 5;
    auto write = [&](const std::string& stem, std::uint32_t n, std::uint32_t magic, unsigned seed) {
        Bytes data = magic == kImagesMagic ? pattern(n * h * w, seed) : Bytes(n);
        if (magic == kLabelsMagic)
            for (std::uint32_t k = 0; k < n; ++k) data[k] = static_cast<unsigned char>(k % 10);
        const Bytes file =
            idx_file(magic, magic == kImagesMagic ? std::vector{n, h, w} : std::vector{n}, data);
        write_file(dir / (gzipped ? stem + ".gz" : stem), gzipped ? gzip(file) : file);
    };
    write("train-images-idx3-ubyte", n_train, kImagesMagic, 1);
    write("train-labels-idx1-ubyte", n_train, kLabelsMagic, 0);
    write("t10k-images-idx3-ubyte", n_test, kImagesMagic, 2);
    write("t10k-labels-idx1-ubyte", n_test, kLabelsMagic, 0);
}

// A CIFAR file of n records with the given label bytes and pixel pattern.
Bytes cifar_records(const std::vector<Bytes>& labels, unsigned seed) {
    Bytes out;
    for (std::size_t r = 0; r < labels.size(); ++r) {
        append(out, labels[r]);
        append(out, pattern(3072, seed + static_cast<unsigned>(r)));
    }
    return out;
}

void write_cifar10(const fs::path& dir, int records_per_file) {
    for (int b = 1; b <= 6; ++b) {
        std::vector<Bytes> labels;
        for (int r = 0; r < records_per_file; ++r)
            labels.push_back({static_cast<unsigned char>((b + r) % 10)});
        write_file(dir / (b <= 5 ? "data_batch_" + std::to_string(b) + ".bin" : "test_batch.bin"),
                   cifar_records(labels, static_cast<unsigned>(10 * b)));
    }
}

// An image folder: each class gets `per_class` grey 3x2 PNGs, in train/ and test/.
void write_image_folder(const fs::path& root, const std::vector<std::string>& classes,
                        int per_class, const std::vector<std::string>& splits = {"train", "test"}) {
    for (const std::string& split : splits)
        for (std::size_t k = 0; k < classes.size(); ++k)
            for (int i = 0; i < per_class; ++i)
                write_file(root / split / classes[k] / ("img" + std::to_string(i) + ".png"),
                           png_file(3, 2, 1, pattern(6, static_cast<unsigned>(10 * k + i))));
}

// A dataset whose sample i has label i: shows which samples a split picked.
class CountingDataset : public Dataset {
public:
    explicit CountingDataset(std::int64_t n) : n_(n) {}
    std::int64_t size() const override { return n_; }
    Sample get(std::int64_t index) const override { return {zeros({1, 1, 1}), index}; }
    std::int64_t num_classes() const override { return n_; }
    Shape image_shape() const override { return {1, 1, 1}; }
    std::string describe() const override { return "counting dataset"; }

private:
    std::int64_t n_;
};

std::vector<std::int64_t> labels_of(const Dataset& d) {
    std::vector<std::int64_t> out;
    for (std::int64_t i = 0; i < d.size(); ++i) out.push_back(d.get(i).label);
    return out;
}

}  // namespace

// =============================================================================================
// IDX

TEST_CASE("data readers: IDX images and labels, plain and gzip, convert bytes to (1, H, W) / 255") {
    TempDir dir;
    const Bytes pixels = pattern(3 * 4 * 5);
    const Bytes images = idx_file(kImagesMagic, {3, 4, 5}, pixels);
    const Bytes labels = idx_file(kLabelsMagic, {3}, {7, 0, 9});
    write_file(dir / "images", images);
    write_file(dir / "labels", labels);
    // gzip is recognized by its magic bytes, whatever the name says.
    write_file(dir / "images-gz-without-suffix", gzip(images));
    write_file(dir / "labels-plain.gz", labels);

    const IdxArray array = read_idx(dir / "images", 3);
    CHECK(array.dims == std::vector<std::int64_t>{3, 4, 5});
    CHECK(array.data == pixels);

    auto check_dataset = [&](const Dataset& d) {
        CHECK(d.size() == 3);
        CHECK(d.num_classes() == 10);
        CHECK(d.image_shape() == Shape{1, 4, 5});
        CHECK(labels_of(d) == std::vector<std::int64_t>{7, 0, 9});
        check_image(d.get(1).image, {1, 4, 5}, Bytes(pixels.begin() + 20, pixels.begin() + 40));
        CHECK(d.describe().find("IDX train: 3 images (1, 4, 5)") != std::string::npos);
    };
    check_dataset(*load_idx_dataset(dir / "images", dir / "labels", "train"));
    if (idx_gzip_supported()) {
        check_dataset(
            *load_idx_dataset(dir / "images-gz-without-suffix", dir / "labels-plain.gz", "train"));
        // A long body crosses several stored blocks and the reader's chunks.
        const Bytes big = pattern(300 * 28 * 28, 5);
        write_file(dir / "big.gz", gzip(idx_file(kImagesMagic, {300, 28, 28}, big)));
        CHECK(read_idx(dir / "big.gz", 3).data == big);
    } else {
        check_message(error_of([&] { read_idx(dir / "images-gz-without-suffix", 3); }),
                      {"images-gz-without-suffix", "built without zlib", "RETORT_ZLIB=OFF", "RETORT_MINIMAL=ON"});
    }
    check_message(
        error_of([&] { load_idx_dataset(dir / "images", dir / "labels", "train")->get(3); }),
        {"sample index 3 is out of range [0, 3)"});
}

TEST_CASE(
    "data readers: IDX refuses bad headers, sizes that disagree with the file, and bad labels") {
    TempDir dir;
    const Bytes images = idx_file(kImagesMagic, {3, 4, 5}, pattern(60));
    auto error_reading = [&](const std::string& name, const Bytes& bytes, int rank) {
        write_file(dir / name, bytes);
        const std::string message = error_of([&] { read_idx(dir / name, rank); });
        CHECK(message.find((dir / name).string()) != std::string::npos);  // names the file
        return message;
    };

    SUBCASE("truncated header") {
        check_message(error_reading("short", {0, 0}, 3), {"ends inside the header (magic number)"});
        check_message(error_reading("short2", {0, 0, 8, 3, 0, 0}, 3),
                      {"ends inside the header (sizes)"});
    }
    SUBCASE("truncated or overlong body") {
        check_message(
            error_reading("cut", Bytes(images.begin(), images.end() - 1), 3),
            {"the file is 75 bytes, but its header (sizes (3, 4, 5)) needs 76", "truncated"});
        Bytes longer = images;
        longer.push_back(0);
        check_message(error_reading("long", longer, 3),
                      {"1 more than its header (sizes (3, 4, 5))"});
    }
    SUBCASE("wrong magic") {
        check_message(error_reading("text", text_bytes("hello, world, not idx"), 3),
                      {"not an IDX file: magic number 0x68656C6C", "0x00000803"});
        check_message(error_reading("labels-as-images", idx_file(kLabelsMagic, {3}, {1, 2, 3}), 3),
                      {"magic number 0x00000801 says 1 dimensions, but an IDX image file has 3"});
        check_message(error_reading("floats", idx_file(0x00000D03, {1, 1, 1}, {0, 0, 0, 0}), 3),
                      {"element type code 0x0D is not supported"});
    }
    SUBCASE("zero sizes and sizes above the limit") {
        check_message(error_reading("empty", idx_file(kImagesMagic, {0, 4, 5}, {}), 3),
                      {"dimension 0 has size 0"});
        // 65536 * 65536 bytes = 4 GiB: refused from the 16-byte header, before any allocation.
        check_message(error_reading("huge", idx_file(kImagesMagic, {65536, 65536, 1}, {}), 3),
                      {"need more than 2147483648 bytes"});
    }
    SUBCASE("image and label counts differ") {
        write_file(dir / "images", images);
        write_file(dir / "labels", idx_file(kLabelsMagic, {2}, {1, 2}));
        check_message(
            error_of([&] { load_idx_dataset(dir / "images", dir / "labels", "train"); }),
            {(dir / "images").string(), (dir / "labels").string(), "3 images but 2 labels"});
    }
    SUBCASE("label out of range") {
        write_file(dir / "images", images);
        write_file(dir / "labels", idx_file(kLabelsMagic, {3}, {3, 12, 0}));
        check_message(error_of([&] { load_idx_dataset(dir / "images", dir / "labels", "train"); }),
                      {(dir / "labels").string(), "label 12 at index 1 is out of range [0, 10)"});
    }
}

TEST_CASE("data readers: IDX refuses corrupt and truncated gzip data") {
    if (!idx_gzip_supported()) {
        MESSAGE("built without zlib: gzip cases skipped");
        return;
    }
    TempDir dir;
    const Bytes images = idx_file(kImagesMagic, {3, 4, 5}, pattern(60));
    const Bytes gz = gzip(images);
    auto error_reading = [&](const std::string& name, const Bytes& bytes) {
        write_file(dir / name, bytes);
        const std::string message = error_of([&] { read_idx(dir / name, 3); });
        CHECK(message.find((dir / name).string()) != std::string::npos);
        return message;
    };
    check_message(
        error_reading("garbage.gz", {0x1F, 0x8B, 'n', 'o', 't', ' ', 'g', 'z', 'i', 'p', '!', '!'}),
        {"corrupt gzip data"});
    check_message(error_reading("cut.gz", Bytes(gz.begin(), gz.end() - 20)),
                  {"corrupt gzip data (unexpected end of file)"});
    Bytes flipped = gz;
    flipped[40] ^= 0x40;  // a pixel byte: the CRC no longer matches
    check_message(error_reading("flipped.gz", flipped),
                  {"corrupt gzip data (incorrect data check)"});
    Bytes longer = images;
    append(longer, {1, 2, 3});
    check_message(error_reading("long.gz", gzip(longer)), {"continues past the 60 bytes"});
    check_message(error_reading("short.gz", gzip(Bytes(images.begin(), images.end() - 7))),
                  {"the data ends after 53 of the 60 bytes", "truncated"});
}

// =============================================================================================
// CIFAR

TEST_CASE("data readers: CIFAR-10 and CIFAR-100 records become (3, 32, 32) images and labels") {
    TempDir dir;
    write_file(dir / "a.bin", cifar_records({{7}, {2}}, 0));
    write_file(dir / "b.bin", cifar_records({{9}}, 50));
    auto cifar10 = load_cifar_dataset(CifarKind::cifar10, {dir / "a.bin", dir / "b.bin"}, "train");
    CHECK(cifar10->size() == 3);
    CHECK(cifar10->num_classes() == 10);
    CHECK(cifar10->image_shape() == Shape{3, 32, 32});
    CHECK(labels_of(*cifar10) == std::vector<std::int64_t>{7, 2, 9});
    check_image(cifar10->get(1).image, {3, 32, 32}, pattern(3072, 1));   // channel-planar bytes
    check_image(cifar10->get(2).image, {3, 32, 32}, pattern(3072, 50));  // the second file follows

    write_file(dir / "train.bin", cifar_records({{19, 99}, {0, 42}}, 3));
    auto cifar100 = load_cifar_dataset(CifarKind::cifar100, {dir / "train.bin"}, "train");
    CHECK(cifar100->num_classes() == 100);
    CHECK(labels_of(*cifar100) == std::vector<std::int64_t>{99, 42});  // the fine label
    check_image(cifar100->get(0).image, {3, 32, 32}, pattern(3072, 3));
}

TEST_CASE("data readers: CIFAR refuses sizes that are not whole records and labels out of range") {
    TempDir dir;
    auto error_loading = [&](CifarKind kind, const std::string& name, const Bytes& bytes) {
        write_file(dir / name, bytes);
        const std::string message =
            error_of([&] { load_cifar_dataset(kind, {dir / name}, "train"); });
        CHECK(message.find((dir / name).string()) != std::string::npos);
        return message;
    };
    Bytes two = cifar_records({{1}, {2}}, 0);
    check_message(error_loading(CifarKind::cifar10, "cut.bin", Bytes(two.begin(), two.end() - 1)),
                  {"CIFAR-10 file", "6145 bytes, not a positive multiple of the 3073-byte record"});
    check_message(error_loading(CifarKind::cifar10, "empty.bin", {}),
                  {"0 bytes, not a positive multiple"});
    check_message(error_loading(CifarKind::cifar100, "c10.bin", two),
                  {"CIFAR-100 file", "not a positive multiple of the 3074-byte record"});
    check_message(error_loading(CifarKind::cifar10, "label.bin", cifar_records({{1}, {10}}, 0)),
                  {"record 1 has label 10, outside [0, 10)"});
    check_message(error_loading(CifarKind::cifar100, "fine.bin", cifar_records({{3, 100}}, 0)),
                  {"record 0 has label 100, outside [0, 100)"});
    check_message(
        error_loading(CifarKind::cifar100, "coarse.bin", cifar_records({{1, 1}, {20, 5}}, 0)),
        {"record 1 has coarse label 20, outside [0, 20)"});
    check_message(
        error_of([&] { load_cifar_dataset(CifarKind::cifar10, {dir / "missing.bin"}, "train"); }),
        {(dir / "missing.bin").string(), "cannot open"});
}

// =============================================================================================
// Image folders

TEST_CASE("data readers: image folder classes, labels, pixel values and the channel rule") {
    TempDir dir;
    if (!image_folder_supported()) {
        write_file(dir / "a/x.png", png_file(1, 1, 1, {0}));
        check_message(error_of([&] { ImageFolderDataset(dir.path(), "train", {"a"}); }),
                      {"image folders need stb_image, but retort was built without it", "RETORT_STB=OFF", "RETORT_MINIMAL=ON"});
        MESSAGE("built without stb_image: image folder cases skipped");
        return;
    }
    const Bytes grey = pattern(6, 1);            // 3x2, 1 channel
    const Bytes rgb = pattern(2 * 2 * 3, 2);     // 2x2 RGB
    const Bytes rgba = pattern(2 * 2 * 4, 3);    // 2x2 RGBA
    write_file(dir / "grey/zebra/a.png", png_file(3, 2, 1, grey));
    write_file(dir / "grey/ant/b.PNG", png_file(3, 2, 1, grey));
    write_file(dir / "grey/ant/a.png", png_file(3, 2, 2, pattern(12, 4)));  // grey + alpha
    write_file(dir / "grey/ant/notes.txt", text_bytes("skipped: not an image"));
    write_file(dir / "grey/ant/.hidden.png", text_bytes("skipped: hidden"));
    write_file(dir / "grey/.cache/x.png", png_file(3, 2, 1, grey));  // a hidden folder is no class

    ImageFolderDataset greys(dir / "grey", "train",
                             ImageFolderDataset::class_folders(dir / "grey"));
    CHECK(greys.classes() == std::vector<std::string>{"ant", "zebra"});
    CHECK(greys.size() == 3);
    CHECK(greys.image_shape() == Shape{1, 2, 3});  // every image is grey: one channel
    CHECK(labels_of(greys) == std::vector<std::int64_t>{0, 0, 1});  // ant/a, ant/b, zebra/a
    check_image(greys.get(2).image, {1, 2, 3}, grey);
    Bytes grey_of_grey_alpha;  // alpha dropped
    for (int p = 0; p < 6; ++p) grey_of_grey_alpha.push_back(pattern(12, 4)[2 * p]);
    check_image(greys.get(0).image, {1, 2, 3}, grey_of_grey_alpha);

    write_file(dir / "mixed/b/grey.png", png_file(2, 2, 1, pattern(4, 5)));
    write_file(dir / "mixed/b/rgb.bmp", bmp_file(2, 2, rgb));
    write_file(dir / "mixed/a/rgba.png", png_file(2, 2, 4, rgba));
    ImageFolderDataset mixed(dir / "mixed", "train", {"a", "b"});
    CHECK(mixed.image_shape() == Shape{3, 2, 2});  // one colour image makes them all RGB
    CHECK(labels_of(mixed) == std::vector<std::int64_t>{0, 1, 1});
    auto planar = [](const Bytes& interleaved, int channels, int keep) {
        Bytes out;
        for (int c = 0; c < keep; ++c)
            for (std::size_t p = 0; p < interleaved.size() / channels; ++p)
                out.push_back(interleaved[p * channels + std::min(c, channels - 1)]);
        return out;
    };
    check_image(mixed.get(0).image, {3, 2, 2}, planar(rgba, 4, 3));
    check_image(mixed.get(1).image, {3, 2, 2}, planar(pattern(4, 5), 1, 3));  // grey repeated
    check_image(mixed.get(2).image, {3, 2, 2}, planar(rgb, 3, 3));

    write_file(dir / "sizes/a/small.png", png_file(2, 2, 3, rgb));
    write_file(dir / "sizes/a/wide.png", png_file(3, 2, 1, grey));
    ImageFolderDataset sizes(dir / "sizes", "train", {"a"});
    CHECK(sizes.image_shape() == Shape{3, 0, 0});  // sizes vary
    CHECK(sizes.get(1).image.shape() == Shape{3, 2, 3});
    ImageFolderDataset forced_grey(dir / "sizes", "test", {"a"}, 1);  // the train split's count
    CHECK(forced_grey.get(0).image.shape() == Shape{1, 2, 2});
}

TEST_CASE("data readers: image folder refuses empty classes, unreadable and oversized images") {
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image folder cases skipped");
        return;
    }
    TempDir dir;
    auto open_folder = [&](const std::string& name) {
        return error_of([&] {
            ImageFolderDataset(dir / name, "train", ImageFolderDataset::class_folders(dir / name));
        });
    };
    write_file(dir / "empty/full/a.png", png_file(1, 1, 1, {0}));
    write_file(dir / "empty/hollow/readme.txt", text_bytes("no images here"));
    check_message(open_folder("empty"),
                  {"class folder", (dir / "empty/hollow").string(), "holds no images"});

    fs::create_directories(dir / "noclasses");
    check_message(open_folder("noclasses"),
                  {(dir / "noclasses").string(), "holds no class folders"});
    check_message(open_folder("absent"), {(dir / "absent").string(), "does not exist"});

    write_file(dir / "garbage/a/bad.png", text_bytes("this is not a png file at all"));
    check_message(open_folder("garbage"),
                  {(dir / "garbage/a/bad.png").string(), "not a readable PNG, JPEG or BMP image"});

    // Only the header is written: the size is refused before any pixel is decoded.
    write_file(dir / "wide/a/wide.bmp", bmp_header(20000, 10, 0));
    check_message(open_folder("wide"), {(dir / "wide/a/wide.bmp").string(), "20000x10 pixels",
                                        "wider or taller than 16384"});
    write_file(dir / "many/a/many.png", png_header(10000, 10000, 3));
    check_message(open_folder("many"), {(dir / "many/a/many.png").string(), "100000000 pixels",
                                        "above the limit of 67108864 (64 Mpixels)"});

    check_message(error_of([&] { ImageFolderDataset(dir / "empty", "train", {"full"}, 2); }),
                  {"channels must be 0 (choose), 1 or 3, got 2"});
    check_message(error_of([&] { ImageFolderDataset(dir / "empty", "train", {"full", "gone"}); }),
                  {"class folder", (dir / "empty/gone").string(), "is missing"});
}

TEST_CASE("data readers: JPEG images decode, and Huffman tables above 256 symbols are refused") {
    const Bytes tiny(kTinyJpeg.begin(), kTinyJpeg.end());
    CHECK(jpeg_huffman_tables_fit(tiny.data(), tiny.size()));
    Bytes bad = {0xFF, 0xD8};
    append(bad, oversized_dht());
    CHECK_FALSE(jpeg_huffman_tables_fit(bad.data(), bad.size()));
    // After a scan: entropy-coded bytes with a stuffed 0xFF00 and a restart marker come first.
    Bytes after_scan = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1,    1,    0,   0,
                        0x3F, 0,    0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56};
    append(after_scan, oversized_dht());
    CHECK_FALSE(jpeg_huffman_tables_fit(after_scan.data(), after_scan.size()));
    // Inside another segment (here an APP1 that holds the same bytes) it is data, not a table.
    Bytes inside_app = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x17};
    append(inside_app, oversized_dht());
    append(inside_app, {0xFF, 0xD9});
    CHECK(jpeg_huffman_tables_fit(inside_app.data(), inside_app.size()));
    const Bytes not_jpeg = text_bytes("plain text");
    CHECK(jpeg_huffman_tables_fit(not_jpeg.data(), not_jpeg.size()));

    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image folder cases skipped");
        return;
    }
    TempDir dir;
    write_file(dir / "ok/a/tiny.jpg", tiny);
    ImageFolderDataset folder(dir / "ok", "train", {"a"});
    CHECK(folder.image_shape() == Shape{1, 4, 8});
    const std::vector<float> pixels = folder.get(0).image.to_vector<float>();
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 8; ++x)  // JPEG is lossy: close to the pixels it was made from
            CHECK(std::abs(pixels[y * 8 + x] * 255.0f - static_cast<float>(16 * x + 8 * y)) <=
                  12.0f);

    Bytes hostile = tiny;  // the first table's counts raised to 0x20 each
    std::fill(hostile.begin() + 0x6B, hostile.begin() + 0x6B + 16, 0x20);
    write_file(dir / "bad/a/hostile.jpeg", hostile);
    check_message(error_of([&] { ImageFolderDataset(dir / "bad", "train", {"a"}); }),
                  {(dir / "bad/a/hostile.jpeg").string(), "declares more than 256 symbols"});
}

TEST_CASE(
    "data readers: an image that fails to decode in get() throws an Error the loader passes on") {
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image folder cases skipped");
        return;
    }
    TempDir dir;
    write_file(dir / "a/good.png", png_file(2, 2, 1, {1, 2, 3, 4}));
    // A valid header whose pixel data is not a zlib stream: the header scan accepts it.
    Bytes broken = png_header(2, 2, 1);
    append(broken, png_chunk("IDAT", text_bytes("not zlib")));
    append(broken, png_chunk("IEND", {}));
    write_file(dir / "a/later.png", broken);
    auto folder =
        std::make_shared<ImageFolderDataset>(dir.path(), "train", std::vector<std::string>{"a"});
    CHECK(folder->get(0).image.shape() == Shape{1, 2, 2});
    check_message(error_of([&] { folder->get(1); }),
                  {(dir / "a/later.png").string(), "cannot decode"});

    // The file replaced by a larger image after the folder was opened.
    write_file(dir / "a/good.png", png_file(3, 3, 1, pattern(9)));
    check_message(error_of([&] { folder->get(0); }),
                  {(dir / "a/good.png").string(), "is now 3x3 pixels"});
    write_file(dir / "a/good.png", png_file(2, 2, 1, {1, 2, 3, 4}));

    LoaderOptions options;
    options.batch_size = 2;
    options.shuffle = false;
    options.workers = 2;
    DataLoader loader(folder, options);
    loader.start_epoch(0);
    Batch batch;
    check_message(error_of([&] { loader.next(batch); }),
                  {(dir / "a/later.png").string(), "cannot decode"});
}

// =============================================================================================
// Synthetic data

TEST_CASE("data readers: synthetic data is a function of the seed, with labels in range") {
    SyntheticOptions options = parse_synthetic_spec(
        "synthetic:num_classes=3, size=50,test_size=7,channels=2,height=5,width=6");
    CHECK(options.num_classes == 3);
    CHECK(options.size == 50);
    CHECK(options.test_size == 7);
    SyntheticDataset train(options, 11, "train"), again(options, 11, "train"),
        other(options, 12, "train");
    SyntheticDataset test(options, 11, "test");
    CHECK(train.size() == 50);
    CHECK(test.size() == 7);
    CHECK(train.image_shape() == Shape{2, 5, 6});
    CHECK(train.num_classes() == 3);
    std::set<std::int64_t> seen;
    for (std::int64_t i = 0; i < train.size(); ++i) {
        const Sample s = train.get(i), t = again.get(i);
        CHECK(s.label == t.label);
        CHECK(s.image.to_vector<float>() == t.image.to_vector<float>());
        const std::vector<float> v = s.image.to_vector<float>();
        CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);
        CHECK(*std::max_element(v.begin(), v.end()) <= 1.0f);
        seen.insert(s.label);
    }
    CHECK(seen == std::set<std::int64_t>{0, 1, 2});
    CHECK(train.get(0).image.to_vector<float>() != other.get(0).image.to_vector<float>());
    CHECK(train.get(0).image.to_vector<float>() != test.get(0).image.to_vector<float>());
    CHECK(parse_synthetic_spec("synthetic").size == 5000);

    check_message(
        error_of([] { parse_synthetic_spec("synthetic:classes=3"); }),
        {"unknown key 'classes'", "num_classes, size, test_size, channels, height, width"});
    check_message(error_of([] { parse_synthetic_spec("synthetic:size=ten"); }),
                  {"key 'size' must be an integer, got 'ten'"});
    check_message(error_of([] { parse_synthetic_spec("synthetic:num_classes=1"); }),
                  {"key 'num_classes' must be in [2, 1000], got 1"});
    check_message(error_of([] { parse_synthetic_spec("synthetic:size=3,size=4"); }),
                  {"key 'size' is given twice"});
    check_message(error_of([] { parse_synthetic_spec("synthetic:size"); }),
                  {"'size' is not key=value"});
    check_message(error_of([] { parse_synthetic_spec("mnist"); }), {"must be 'synthetic' or"});
    check_message(error_of([&] { train.get(50); }), {"sample index 50 is out of range [0, 50)"});
}

TEST_CASE("data readers: a linear model learns the synthetic data within a few steps") {
    manual_seed(0);
    SyntheticDataset data(
        parse_synthetic_spec("synthetic:num_classes=4,size=640,channels=1,height=8,width=8"), 3,
        "train");
    Linear model(64, 4);
    SGD optimizer(model.parameters(), SgdOptions{.lr = 0.5, .momentum = 0.9});
    auto batch_loss = [&](std::int64_t first, std::int64_t count) {
        std::vector<Tensor> images;
        std::vector<std::int64_t> labels;
        for (std::int64_t i = first; i < first + count; ++i) {
            Sample s = data.get(i);
            images.push_back(s.image.reshape({64}));
            labels.push_back(s.label);
        }
        return cross_entropy(model.forward(stack(images, 0)), from_vector(labels));
    };
    const double first_loss = batch_loss(0, 64).item();
    for (int step = 0; step < 8; ++step) {
        optimizer.zero_grad();
        Tensor loss = batch_loss(64 * step, 64);
        loss.backward();
        optimizer.step();
    }
    const double last_loss = batch_loss(576, 64).item();  // samples not trained on
    INFO("loss ", first_loss, " -> ", last_loss);
    CHECK(last_loss < 0.5 * first_loss);
}

// =============================================================================================
// load_dataset: formats and the validation split

TEST_CASE(
    "data readers: load_dataset detects IDX, CIFAR-10, CIFAR-100, image folders and synthetic") {
    TempDir dir;
    SUBCASE("idx, gzip") {
        write_mnist(dir / "mnist", 30, 7, idx_gzip_supported());
        DatasetSplits s = load_dataset({.path = (dir / "mnist").string()});
        CHECK(s.train->size() == 27);  // val: min(5000, 30 / 10) = 3
        CHECK(s.val->size() == 3);
        CHECK(s.test->size() == 7);
        CHECK(s.test->image_shape() == Shape{1, 4, 5});
        CHECK(s.test->describe().find("IDX test") != std::string::npos);
        CHECK(s.val->describe().find("val: 3 of IDX train") != std::string::npos);
    }
    SUBCASE("idx, the dotted names") {
        write_mnist(dir / "m", 10, 2, false);
        for (const char* stem : {"train-images", "train-labels", "t10k-images", "t10k-labels"}) {
            const std::string rank = std::string(stem).ends_with("images") ? "idx3" : "idx1";
            fs::rename(dir / "m" / (std::string(stem) + "-" + rank + "-ubyte"),
                       dir / "m" / (std::string(stem) + "." + rank + "-ubyte"));
        }
        CHECK(load_dataset({.path = (dir / "m").string(), .format = "idx"}).test->size() == 2);
    }
    SUBCASE("cifar10 in the archive's folder") {
        write_cifar10(dir / "c" / "cifar-10-batches-bin", 2);
        DatasetSplits s = load_dataset({.path = (dir / "c").string(), .val_size = 4});
        CHECK(s.train->size() == 6);
        CHECK(s.val->size() == 4);
        CHECK(s.test->size() == 2);
        CHECK(s.test->num_classes() == 10);
        CHECK(labels_of(*s.test) == std::vector<std::int64_t>{6, 7});
    }
    SUBCASE("cifar100") {
        write_file(dir / "c100/train.bin", cifar_records({{0, 5}, {1, 6}, {2, 7}}, 0));
        write_file(dir / "c100/test.bin", cifar_records({{3, 99}}, 0));
        DatasetSplits s = load_dataset({.path = (dir / "c100").string(), .val_size = 1});
        CHECK(s.train->size() == 2);
        CHECK(s.test->num_classes() == 100);
        CHECK(labels_of(*s.test) == std::vector<std::int64_t>{99});
    }
    SUBCASE("image folder, with and without val/") {
        if (!image_folder_supported()) return;
        write_image_folder(dir / "f", {"b", "a"}, 10);
        DatasetSplits s = load_dataset({.path = (dir / "f").string()});
        CHECK(s.train->size() == 18);
        CHECK(s.val->size() == 2);
        CHECK(s.test->size() == 20);
        CHECK(s.test->num_classes() == 2);
        CHECK(s.test->image_shape() == Shape{1, 2, 3});
        write_image_folder(dir / "f", {"b", "a"}, 3, {"val"});
        s = load_dataset({.path = (dir / "f").string()});
        CHECK(s.train->size() == 20);  // val/ is the validation split: nothing held out
        CHECK(s.val->size() == 6);
        CHECK(s.val->describe().find("image folder val") != std::string::npos);
        check_message(
            error_of([&] { load_dataset({.path = (dir / "f").string(), .val_size = 5}); }),
            {"has a val/ folder", "val_size (5) applies only without one"});
    }
    SUBCASE("synthetic") {
        DatasetSplits s =
            load_dataset({.path = "synthetic:size=60000,test_size=10,height=4,width=4"});
        CHECK(s.train->size() == 55000);  // the customary 5,000 held out
        CHECK(s.val->size() == 5000);
        CHECK(s.test->size() == 10);
        CHECK(load_dataset({.format = "synthetic"}).test->image_shape() == Shape{3, 32, 32});
        check_message(
            error_of([&] { load_dataset({.path = dir.path().string(), .format = "synthetic"}); }),
            {"format 'synthetic' takes the path 'synthetic'"});
    }
}

TEST_CASE("data readers: the validation split is seeded, disjoint, complete and sized as asked") {
    auto full = std::make_shared<CountingDataset>(100);
    auto [train, val] = split_off_validation(full, 30, 7);
    CHECK(train->size() == 70);
    CHECK(val->size() == 30);
    std::vector<std::int64_t> t = labels_of(*train), v = labels_of(*val);
    CHECK(std::is_sorted(t.begin(), t.end()));  // the parent's order
    CHECK(std::is_sorted(v.begin(), v.end()));
    std::vector<std::int64_t> all = t;
    all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    std::vector<std::int64_t> expected(100);
    for (int i = 0; i < 100; ++i) expected[i] = i;
    CHECK(all == expected);  // disjoint and complete

    CHECK(labels_of(*split_off_validation(full, 30, 7).second) ==
          v);  // the same seed, the same split
    CHECK(labels_of(*split_off_validation(full, 30, 8).second) != v);
    CHECK(val->describe() == "val: 30 of counting dataset");

    auto [all_train, no_val] = split_off_validation(full, 0, 7);
    CHECK(all_train.get() == full.get());
    CHECK(no_val->size() == 0);
    check_message(error_of([&] { split_off_validation(full, 100, 7); }),
                  {"val_size 100 leaves no training samples", "use a val_size below 100"});
    check_message(error_of([&] { load_dataset({.path = "synthetic:size=20", .val_size = 20}); }),
                  {"val_size 20 leaves no training samples"});
    check_message(error_of([&] { load_dataset({.path = "synthetic", .val_size = -2}); }),
                  {"val_size must be -1 (the default), 0 or more, got -2"});
    check_message(error_of([&] { val->get(30); }),
                  {"subset 'val': sample index 30 is out of range [0, 30)"});
    check_message(error_of([&] { Subset(full, {5, 100}, "bad"); }),
                  {"subset 'bad': index 100 is out of range [0, 100)"});
}

TEST_CASE("data readers: load_dataset explains missing, partial, ambiguous and unknown datasets") {
    TempDir dir;
    check_message(error_of([&] { load_dataset({.path = (dir / "nowhere").string()}); }),
                  {(dir / "nowhere").string(), "does not exist"});
    write_file(dir / "file", text_bytes("x"));
    check_message(error_of([&] { load_dataset({.path = (dir / "file").string()}); }),
                  {"is not a directory"});
    check_message(error_of([&] { load_dataset({}); }), {"no dataset path given"});
    check_message(
        error_of([&] { load_dataset({.path = dir.path().string(), .format = "mnist"}); }),
        {"unknown dataset format 'mnist'", "auto, idx, cifar10, cifar100, folder, synthetic"});

    fs::create_directories(dir / "empty");
    check_message(error_of([&] { load_dataset({.path = (dir / "empty").string()}); }),
                  {"found no dataset in", "train-images-idx3-ubyte", "data_batch_1.bin",
                   "train.bin", "cifar-10-batches-bin", "ROOT/train/<class>"});

    write_mnist(dir / "partial", 10, 2, false);
    fs::remove(dir / "partial/t10k-labels-idx1-ubyte");
    check_message(error_of([&] { load_dataset({.path = (dir / "partial").string()}); }),
                  {"only part of the idx files: missing t10k-labels-idx1-ubyte[.gz]"});

    write_cifar10(dir / "c10", 1);
    fs::remove(dir / "c10/data_batch_3.bin");
    check_message(error_of([&] { load_dataset({.path = (dir / "c10").string()}); }),
                  {"only part of the cifar10 files: missing data_batch_3.bin"});
    check_message(
        error_of([&] { load_dataset({.path = (dir / "empty").string(), .format = "cifar100"}); }),
        {"holds none of the cifar100 files: missing train.bin, test.bin"});
    check_message(
        error_of([&] { load_dataset({.path = (dir / "empty").string(), .format = "idx"}); }),
        {"holds none of the idx files: missing train-images-idx3-ubyte[.gz]"});

    write_mnist(dir / "both", 10, 2, false);
    fs::create_directories(dir / "both/train/a");
    check_message(
        error_of([&] { load_dataset({.path = (dir / "both").string()}); }),
        {"holds more than one dataset (idx, folder)", "choose one with the format option"});

    if (!image_folder_supported()) return;
    check_message(
        error_of([&] { load_dataset({.path = (dir / "empty").string(), .format = "folder"}); }),
        {"has no train/ folder", "ROOT/train/<class>/*.png|jpg|jpeg|bmp"});
    write_image_folder(dir / "f", {"cat", "dog"}, 1, {"train"});
    check_message(error_of([&] { load_dataset({.path = (dir / "f").string()}); }),
                  {"has no test/ folder"});
    write_image_folder(dir / "f", {"cat", "zebra"}, 1, {"test"});
    check_message(error_of([&] { load_dataset({.path = (dir / "f").string()}); }),
                  {"the class folders of test/ differ from those of train/",
                   "missing in test/: dog", "not in train/: zebra"});
}
