// tests/test_hostile_inputs.cpp: files, configs and specs made to hurt the reader: headers that
// claim terabytes, sizes whose product overflows, offsets that overlap, images of 100000 x 100000
// pixels with no pixels behind the header, absurd config values and spec keys. Each must be refused
// with a retort::Error that names the limit or the key, before any large allocation (the message
// shows which check refused it: a header check, never a failed allocation).
//
// Also here: the in-memory entry points the fuzz targets of tools/fuzz use (they must agree with
// the file readers), the seed corpus of those targets (tests/fuzz_corpus/<target>: each "valid-*"
// seed loads and each "near-*" seed is refused), and one test per input the fuzzer found, the
// input kept in tests/fuzz_corpus/regressions/.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "data/batch_transforms.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/jpeg_check.h"
#include "data/transforms.h"
#include "distill/distill_config.h"
#include "distill/train_config.h"
#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "models/registry.h"

using namespace retort;
namespace fs = std::filesystem;
using doctest::Contains;

namespace {

using Bytes = std::vector<unsigned char>;

const fs::path kCorpus = fs::path(RETORT_FIXTURES_DIR).parent_path() / "fuzz_corpus";

class TempDir {
public:
    TempDir() {
        static int counter = 0;
        path_ = fs::temp_directory_path() / ("retort_test_hostile_" + std::to_string(::getpid()) +
                                             "_" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    fs::path operator/(const std::string& name) const { return path_ / name; }

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

Bytes read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A file of `size` bytes that occupies no disk: the readers must refuse it from its size alone.
void write_sparse_file(const fs::path& path, std::uintmax_t size) {
    write_file(path, {});
    fs::resize_file(path, size);
}

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

void put_u32_be(Bytes& b, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void put_u32_le(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void put_u64_le(std::string& b, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// ---- safetensors ----

std::string safetensors(const std::string& header, const std::string& data = "") {
    std::string out;
    put_u64_le(out, header.size());
    return out + header + data;
}

// A header with one F32 tensor "t".
std::string one_tensor(const std::string& shape, const std::string& offsets,
                       const std::string& data = "") {
    return safetensors(
        "{\"t\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}",
        data);
}

// ---- images ----

std::uint32_t crc32(const Bytes& data) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char byte : data) {
        crc ^= byte;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

// The PNG signature and an IHDR chunk (8-bit, the given colour type), and nothing after it.
Bytes png_header(std::uint32_t width, std::uint32_t height, unsigned char colour_type = 2) {
    Bytes chunk = bytes_of("IHDR");
    put_u32_be(chunk, width);
    put_u32_be(chunk, height);
    // bit depth 8, the colour type, then compression, filter and interlace methods 0
    const unsigned char rest[] = {8, colour_type, 0, 0, 0};
    chunk.insert(chunk.end(), std::begin(rest), std::end(rest));
    Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    put_u32_be(out, 13);
    out.insert(out.end(), chunk.begin(), chunk.end());
    put_u32_be(out, crc32(chunk));
    return out;
}

// A 24-bit BMP header (BITMAPINFOHEADER) claiming width x height, and no pixels.
Bytes bmp_header(std::uint32_t width, std::uint32_t height) {
    Bytes out = {'B', 'M'};
    for (std::uint32_t v : {54u, 0u, 54u, 40u, width, height}) put_u32_le(out, v);
    for (unsigned char b : {1, 0, 24, 0}) out.push_back(b);  // 1 plane, 24 bits per pixel
    for (int i = 0; i < 6; ++i) put_u32_le(out, 0);
    return out;
}

// A JPEG start of image and a baseline frame header claiming width x height, one component.
Bytes jpeg_header(std::uint16_t width, std::uint16_t height) {
    Bytes out = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08};
    for (std::uint16_t v : {height, width}) {
        out.push_back(static_cast<unsigned char>(v >> 8));
        out.push_back(static_cast<unsigned char>(v & 0xFF));
    }
    for (unsigned char b : {1, 1, 0x11, 0}) out.push_back(b);  // component 1, 1x1, table 0
    return out;
}

// ---- IDX ----

Bytes idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data = {}) {
    Bytes out;
    put_u32_be(out, magic);
    for (std::uint32_t d : dims) put_u32_be(out, d);
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// gzip (RFC 1952) of data in one stored deflate block (data under 64 KiB).
Bytes gzip_stored(const Bytes& data) {
    Bytes out = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF, 1};
    const auto n = static_cast<std::uint16_t>(data.size());
    for (std::uint16_t v : {n, static_cast<std::uint16_t>(~n)}) {
        out.push_back(static_cast<unsigned char>(v & 0xFF));
        out.push_back(static_cast<unsigned char>(v >> 8));
    }
    out.insert(out.end(), data.begin(), data.end());
    put_u32_le(out, crc32(data));
    put_u32_le(out, static_cast<std::uint32_t>(data.size()));
    return out;
}

// ---- configs ----

// Parses config text with the training schema and reads it as a run would.
void read_train(const std::string& text) {
    Config c = train_config_schema();
    c.parse("[model]\nspec = resnet8\n" + text, "run.cfg");
    read_train_config(c);
}

}  // namespace

// =============================================================================================
// safetensors

TEST_CASE(
    "hostile inputs: safetensors headers that claim terabytes are refused before allocating") {
    SUBCASE("a header length of 2^60") {
        std::string file;
        put_u64_le(file, std::uint64_t{1} << 60);
        file += "{}";
        CHECK_THROWS_WITH_AS(parse_safetensors(file, "big.safetensors"),
                             Contains("header length 1152921504606846976 exceeds the limit of "
                                      "100000000 bytes"),
                             Error);
        // the file reader refuses it the same way, from the first 8 bytes
        TempDir dir;
        write_file(dir / "big.safetensors", bytes_of(file));
        CHECK_THROWS_WITH_AS(read_safetensors((dir / "big.safetensors").string()),
                             Contains("exceeds the limit of 100000000 bytes"), Error);
    }
    SUBCASE("a header length beyond the end of the file") {
        std::string file;
        put_u64_le(file, 1000);
        file += "{}";
        CHECK_THROWS_WITH_AS(parse_safetensors(file),
                             Contains("header length 1000 is larger than the 2 bytes that follow"),
                             Error);
    }
    SUBCASE("a tensor of 10^12 bytes in a file of a few dozen") {
        CHECK_THROWS_WITH_AS(
            parse_safetensors(one_tensor("[250000000000]", "[0,1000000000000]", "abcd")),
            Contains("data_offsets [0, 1000000000000] reach past the end of the data area (4 "
                     "bytes)"),
            Error);
    }
    SUBCASE("a shape whose element count overflows int64") {
        CHECK_THROWS_WITH_AS(
            parse_safetensors(one_tensor("[1099511627776,1099511627776]", "[0,4]", "abcd")),
            Contains("shape (1099511627776, 1099511627776) has too many elements"), Error);
        // the product fits in int64 but its byte count does not
        CHECK_THROWS_WITH_AS(
            parse_safetensors(one_tensor("[4,1152921504606846976]", "[0,4]", "abcd")),
            Contains("has too many elements"), Error);
    }
    SUBCASE("negative sizes") {
        CHECK_THROWS_WITH_AS(parse_safetensors(one_tensor("[2,-3]", "[0,4]", "abcd")),
                             Contains("tensor 't': negative size -3 in shape (2, -3)"), Error);
        CHECK_THROWS_WITH_AS(parse_safetensors(one_tensor("[1]", "[-4,0]", "abcd")),
                             Contains("negative data_offsets [-4, 0]"), Error);
    }
    SUBCASE("byte counts that disagree with dtype and shape") {
        CHECK_THROWS_WITH_AS(
            parse_safetensors(one_tensor("[2,3]", "[0,20]", std::string(20, '\0'))),
            Contains("data_offsets [0, 20] span 20 bytes, but shape (2, 3) of F32 needs 24"),
            Error);
        CHECK_THROWS_WITH_AS(
            parse_safetensors(safetensors(
                "{\"t\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd")),
            Contains("span 4 bytes, but shape (1,) of F64 needs 8"), Error);
    }
}

TEST_CASE("hostile inputs: safetensors offsets that overlap, run backwards or leave gaps") {
    const std::string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
    const std::string b = "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":";
    SUBCASE("overlapping tensors") {
        CHECK_THROWS_WITH_AS(
            parse_safetensors(safetensors("{" + a + "[0,8]}," + b + "[4,8]}}", std::string(8, 0))),
            Contains("tensors 'a' and 'b' overlap: data_offsets [0, 8] and [4, 8]"), Error);
    }
    SUBCASE("an end before its begin") {
        CHECK_THROWS_WITH_AS(parse_safetensors(one_tensor("[1]", "[8,4]", std::string(8, 0))),
                             Contains("data_offsets [8, 4] begin after they end"), Error);
    }
    SUBCASE("a gap in the data area") {
        CHECK_THROWS_WITH_AS(parse_safetensors(safetensors("{" + a + "[0,8]}," + b + "[12,16]}}",
                                                           std::string(16, 0))),
                             Contains("bytes [8, 12) of the data area belong to no tensor"), Error);
    }
    SUBCASE("tensors listed in another order than their data are fine") {
        const auto contents = parse_safetensors(
            safetensors("{" + a + "[4,12]}," + b + "[0,4]}}", std::string(12, 0)));
        CHECK(contents.tensors.at("a").shape() == Shape{2});
        CHECK(contents.tensors.at("b").shape() == Shape{1});
    }
}

// =============================================================================================
// Images

TEST_CASE(
    "hostile inputs: an image header claiming 100000 x 100000 pixels is refused from the header") {
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    const std::string expected =
        "the image is 100000x100000 pixels; retort refuses images wider or taller than 16384 "
        "pixels";
    for (const Bytes& header : {png_header(100000, 100000), bmp_header(100000, 100000)}) {
        CHECK_THROWS_WITH_AS(image_info_from_bytes(header, "huge"), Contains(expected.c_str()),
                             Error);
        CHECK_THROWS_WITH_AS(decode_image_bytes(header, 3, "huge"), Contains(expected.c_str()),
                             Error);
    }
    // a JPEG frame header holds at most 65535 per side
    CHECK_THROWS_WITH_AS(image_info_from_bytes(jpeg_header(65535, 65535), "huge.jpg"),
                         Contains("the image is 65535x65535 pixels"), Error);
    // and an image folder refuses the file when it opens the split, naming it
    TempDir dir;
    write_file(dir / "train/cat/huge.png", png_header(100000, 100000));
    const std::string in_folder = "huge.png': " + expected;
    CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "train", "train", {"cat"}),
                         Contains(in_folder.c_str()), Error);
}

TEST_CASE("hostile inputs: image limits on each side, on the pixel count, channels and file size") {
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    // 16384 x 8192 = 2^27 pixels: each side within the limit, their product above 2^26
    CHECK_THROWS_WITH_AS(image_info_from_bytes(png_header(16384, 8192), "wide.png"),
                         Contains("the image is 16384x8192 = 134217728 pixels, above the limit of "
                                  "67108864 (64 Mpixels)"),
                         Error);
    CHECK_THROWS_WITH_AS(image_info_from_bytes(png_header(16385, 1), "long.png"),
                         Contains("wider or taller than 16384 pixels"), Error);
    // at the limit the header passes (the missing body fails later, in the decoder)
    const ImageInfo info = image_info_from_bytes(png_header(16384, 4096), "ok.png");
    CHECK(info.width == 16384);
    CHECK(info.height == 4096);
    CHECK(info.channels == 3);
    CHECK_THROWS_WITH_AS(decode_image_bytes(png_header(16384, 4096), 3, "ok.png"),
                         Contains("ok.png: cannot decode the image"), Error);

    CHECK_THROWS_WITH_AS(decode_image_bytes(png_header(2, 2), 5, "five.png"),
                         Contains("five.png: cannot decode to 5 channels; 1 to 4 are possible"),
                         Error);
    CHECK_THROWS_WITH_AS(image_info_from_bytes(bytes_of("not an image"), "text.png"),
                         Contains("text.png: not a readable PNG, JPEG or BMP image"), Error);

    // a 300 MB file (sparse: it takes no disk) is refused from its size, before it is read
    TempDir dir;
    write_sparse_file(dir / "train/cat/big.png", 300u << 20);
    CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "train", "train", {"cat"}),
                         Contains("big.png': the file is 314572800 bytes, above the limit of "
                                  "268435456 bytes for one image"),
                         Error);
}

TEST_CASE("hostile inputs: decoding from memory gives what an image folder gives") {
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    TempDir dir;
    const Bytes png = read_file(kCorpus / "fuzz_image/valid-grey.png");
    write_file(dir / "train/a/x.png", png);
    const ImageFolderDataset folder(dir / "train", "train", {"a"});
    const Tensor from_folder = folder.get(0).image;
    const Tensor from_memory = decode_image_bytes(png, 1, "x.png");
    CHECK(from_memory.shape() == Shape{1, 3, 4});
    CHECK(from_memory.to_vector<float>() == from_folder.to_vector<float>());
    // RGB from a grey image repeats the plane
    const Tensor rgb = decode_image_bytes(png, 3, "x.png");
    CHECK(rgb.shape() == Shape{3, 3, 4});
    const std::vector<float> v = rgb.to_vector<float>();
    CHECK(std::vector<float>(v.begin(), v.begin() + 12) == from_memory.to_vector<float>());
    CHECK(std::vector<float>(v.begin() + 24, v.end()) == from_memory.to_vector<float>());
}

// =============================================================================================
// IDX

TEST_CASE("hostile inputs: IDX sizes that overflow or promise more than the file holds") {
    constexpr std::uint32_t kImages = 0x00000803, kLabels = 0x00000801;
    SUBCASE("sizes whose product overflows 64 bits") {
        CHECK_THROWS_WITH_AS(
            parse_idx(idx(kImages, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}), 3, "overflow"),
            Contains("IDX data 'overflow': the header's sizes need more than 2147483648 bytes of "
                     "data, the limit for an IDX file"),
            Error);
    }
    SUBCASE("sizes above the file's length") {
        CHECK_THROWS_WITH_AS(
            parse_idx(idx(kImages, {1000, 28, 28}, Bytes(10)), 3, "short"),
            Contains("the file is 26 bytes, but its header (sizes (1000, 28, 28)) needs 784016; "
                     "the file is truncated"),
            Error);
        CHECK_THROWS_WITH_AS(parse_idx(idx(kLabels, {60000}, Bytes(3)), 1, "labels"),
                             Contains("needs 60008; the file is truncated"), Error);
    }
    SUBCASE("a small gzip stream that claims 47 MB stops at its true end") {
        if (!idx_gzip_supported()) {
            MESSAGE("built without zlib: gzip cases skipped");
            return;
        }
        CHECK_THROWS_WITH_AS(
            parse_idx(gzip_stored(idx(kImages, {60000, 28, 28}, Bytes(100))), 3, "bomb.gz"),
            Contains("the data ends after 100 of the 47040000 bytes its header (sizes (60000, 28, "
                     "28)) needs"),
            Error);
    }
    SUBCASE("damaged gzip data") {
        if (!idx_gzip_supported()) {
            MESSAGE("built without zlib: gzip cases skipped");
            return;
        }
        const Bytes gz = gzip_stored(idx(kImages, {2, 3, 4}, Bytes(24, 7)));
        CHECK_THROWS_WITH_AS(parse_idx(Bytes(gz.begin(), gz.end() - 6), 3, "cut.gz"),
                             Contains("IDX data 'cut.gz': corrupt gzip data (unexpected end of "
                                      "file)"),
                             Error);
        Bytes flipped = gz;
        flipped[30] ^= 0x40;  // a pixel byte: the CRC no longer matches
        CHECK_THROWS_WITH_AS(parse_idx(flipped, 3, "flipped.gz"),
                             Contains("corrupt gzip data (incorrect data check)"), Error);
        CHECK_THROWS_WITH_AS(parse_idx(Bytes{0x1F, 0x8B, 'n', 'o', 't'}, 3, "garbage.gz"),
                             Contains("corrupt gzip data"), Error);
    }
    SUBCASE("empty input") {
        CHECK_THROWS_WITH_AS(parse_idx(Bytes{}, 1, "empty"),
                             Contains("the file ends inside the header (magic number)"), Error);
    }
}

TEST_CASE("hostile inputs: IDX from memory reads what the file reader reads, gzip included") {
    TempDir dir;
    for (const char* name : {"valid-images.idx", "valid-images.idx.gz"}) {
        const Bytes bytes = read_file(kCorpus / "fuzz_idx" / name);
        write_file(dir / name, bytes);
        if (bytes[0] == 0x1F && !idx_gzip_supported()) continue;
        const IdxArray from_file = read_idx(dir / name, 3);
        const IdxArray from_memory = parse_idx(bytes, 3, name);
        CHECK(from_memory.dims == std::vector<std::int64_t>{2, 3, 4});
        CHECK(from_memory.dims == from_file.dims);
        CHECK(from_memory.data == from_file.data);
    }
    // gzip members one after another are one stream, as gzread reads them
    if (idx_gzip_supported()) {
        const Bytes whole = idx(0x00000801, {4}, Bytes{1, 2, 3, 4});
        Bytes two = gzip_stored(Bytes(whole.begin(), whole.begin() + 6));
        const Bytes rest = gzip_stored(Bytes(whole.begin() + 6, whole.end()));
        two.insert(two.end(), rest.begin(), rest.end());
        CHECK(parse_idx(two, 1, "members").data == Bytes{1, 2, 3, 4});
    }
}

// =============================================================================================
// CIFAR

TEST_CASE("hostile inputs: CIFAR files whose size is not a whole number of records") {
    CHECK_THROWS_WITH_AS(
        cifar_dataset_from_bytes(CifarKind::cifar10, Bytes(3072), "short", "train"),
        Contains("CIFAR-10 data 'short': the file is 3072 bytes, not a positive "
                 "multiple of the 3073-byte record"),
        Error);
    CHECK_THROWS_WITH_AS(
        cifar_dataset_from_bytes(CifarKind::cifar100, Bytes(3073), "c100", "train"),
        Contains("not a positive multiple of the 3074-byte record (2 label bytes"), Error);
    CHECK_THROWS_WITH_AS(cifar_dataset_from_bytes(CifarKind::cifar10, Bytes{}, "empty", "train"),
                         Contains("the file is 0 bytes, not a positive multiple"), Error);
    Bytes bad_label(3073 * 2, 0);
    bad_label[3073] = 10;
    CHECK_THROWS_WITH_AS(cifar_dataset_from_bytes(CifarKind::cifar10, bad_label, "labels", "train"),
                         Contains("record 1 has label 10, outside [0, 10)"), Error);

    // a file of 2^30 + a few records (sparse: no disk) is refused from its size
    TempDir dir;
    const std::uintmax_t records = (std::uintmax_t{1} << 30) / 3073 + 1;
    write_sparse_file(dir / "data_batch_1.bin", records * 3073);
    CHECK_THROWS_WITH_AS(
        load_cifar_dataset(CifarKind::cifar10, {dir / "data_batch_1.bin"}, "train"),
        Contains("above the limit of 1073741824 bytes"), Error);
    write_sparse_file(dir / "cut.bin", 3073 * 5 - 1);
    CHECK_THROWS_WITH_AS(load_cifar_dataset(CifarKind::cifar10, {dir / "cut.bin"}, "train"),
                         Contains("cut.bin': the file is 15364 bytes, not a positive multiple"),
                         Error);
}

TEST_CASE("hostile inputs: CIFAR from memory gives the samples the file reader gives") {
    TempDir dir;
    const Bytes bytes = read_file(kCorpus / "fuzz_cifar/valid-cifar100.bin");
    write_file(dir / "train.bin", bytes);
    const auto from_file = load_cifar_dataset(CifarKind::cifar100, {dir / "train.bin"}, "train");
    const auto from_memory = cifar_dataset_from_bytes(CifarKind::cifar100, bytes, "m", "train");
    REQUIRE(from_memory->size() == 1);
    CHECK(from_memory->get(0).label == from_file->get(0).label);
    CHECK(from_memory->get(0).image.to_vector<float>() ==
          from_file->get(0).image.to_vector<float>());
    CHECK(from_memory->describe() == "CIFAR-100 train: 1 images (3, 32, 32) from 'm'");
}

// =============================================================================================
// Configs and specs

TEST_CASE("hostile inputs: absurd config values are refused, naming the key and its range") {
    CHECK_THROWS_WITH_AS(
        read_train("[data]\nbatch_size = 1000000000\n"),
        Contains("run.cfg:4: data.batch_size must be in [1, 65536], got 1000000000"), Error);
    CHECK_THROWS_WITH_AS(read_train("[run]\nepochs = 1000000000\n"),
                         Contains("run.epochs must be in [1, 100000], got 1000000000"), Error);
    CHECK_THROWS_WITH_AS(read_train("[run]\nthreads = 1000000\n"),
                         Contains("run.threads must be in [0, 1024], got 1000000"), Error);
    CHECK_THROWS_WITH_AS(read_train("[data]\nworkers = 100000\n"),
                         Contains("data.workers must be in [0, 64], got 100000"), Error);
    CHECK_THROWS_WITH_AS(read_train("[run]\neval_batch_size = 1000000000\n"),
                         Contains("run.eval_batch_size must be in [1, 65536]"), Error);
    // beyond int64: refused as out of range, not wrapped around
    CHECK_THROWS_WITH_AS(
        read_train("[data]\nbatch_size = 99999999999999999999999\n"),
        Contains("data.batch_size must be in [1, 65536], got 99999999999999999999999"), Error);
    CHECK_THROWS_WITH_AS(read_train("[optim]\nlr = 1e400\n"),
                         Contains("optim.lr must be a finite number, got '1e400'"), Error);
    CHECK_THROWS_WITH_AS(read_train("[schedule]\nmilestones = 30,99999999999\n"),
                         Contains("schedule.milestones must be increasing whole epochs in [1, "
                                  "100000]"),
                         Error);
    // the same bounds hold for --set overrides and for retort distill's schema
    Config distill = distill_config_schema();
    CHECK_THROWS_WITH_AS(distill.apply_override("data.batch_size=1000000000"),
                         Contains("--set data.batch_size=1000000000: data.batch_size must be in "
                                  "[1, 65536]"),
                         Error);
    CHECK_THROWS_WITH_AS(distill.apply_override("distill.teacher_cache_limit_gib=1e9"),
                         Contains("distill.teacher_cache_limit_gib must be in"), Error);
}

TEST_CASE(
    "hostile inputs: transform specs asking for absurd image sizes are refused, naming the key") {
    CHECK_THROWS_WITH_AS(TransformPipeline("resize:size=1000000"),
                         Contains("transform 'resize': key 'size' = '1000000' has a side above the "
                                  "limit of 16384 pixels"),
                         Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("center_crop:size=16384x16384"),
                         Contains("key 'size' = '16384x16384' asks for 268435456 pixels, above "
                                  "the limit of 67108864"),
                         Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("random_crop:size=8x99999999999999999999"),
                         Contains("key 'size' must be a size N or HxW of positive integers"),
                         Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("random_resized_crop:size=9000"),
                         Contains("asks for 81000000 pixels"), Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("random_crop:padding=10000000"),
                         Contains("key 'padding' must be an integer in [0, 1048576]"), Error);
    CHECK_THROWS_WITH_AS(TransformPipeline("repeat_channels:to=1000000"),
                         Contains("key 'to' must be an integer in [1, 4096]"), Error);
    CHECK_THROWS_WITH_AS(make_batch_transform("mixup:alpha=1e300"),
                         Contains("key 'alpha' must be a number in"), Error);
    // the largest sizes allowed still build (nothing is allocated until an image comes)
    CHECK(TransformPipeline("resize:size=16384x4096; center_crop:size=8192").size() == 2);
}

TEST_CASE("hostile inputs: model specs with absurd keys are refused before anything is built") {
    CHECK_THROWS_WITH_AS(create_model("vit_tiny_patch16_224:embed_dim=1000000000"),
                         Contains("key 'embed_dim' must be in [1, 16384], got 1000000000"), Error);
    CHECK_THROWS_WITH_AS(create_model("vit_tiny_patch16_224:depth=1000000"),
                         Contains("key 'depth' must be in [1, 256], got 1000000"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet18:num_classes=1000000000"),
                         Contains("resnet18: key 'num_classes' must be in [1, 100000], got "
                                  "1000000000"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("mobilenet_v2:width_mult=1e300"),
                         Contains("key 'width_mult' must be in (0, 4]"), Error);
    CHECK_THROWS_WITH_AS(
        create_model("resnet8:num_classes=99999999999999999999"),
        Contains("key 'num_classes' must be an integer, got '99999999999999999999'"), Error);
    CHECK_THROWS_WITH_AS(create_model("resnet8:img_size=1000000"),
                         Contains("key 'img_size' must be in [8, 4096]"), Error);
    // resolving checks names and keys only
    const ResolvedModelSpec spec = resolve_model_spec("resnet8:num_classes=7");
    CHECK(spec.entry.name == "resnet8");
    CHECK(spec.config.get_int("num_classes", 1, 10) == 7);
    CHECK_THROWS_WITH_AS(resolve_model_spec("resnet8:depth=3"),
                         Contains("model 'resnet8' has no key 'depth'; valid keys:"), Error);
}

// =============================================================================================
// The seed corpus of the fuzz targets

TEST_CASE("hostile inputs: each fuzz seed loads when named valid and is refused when named near") {
    // The seeds must stay what their names say, or the fuzzer starts from the wrong side.
    auto check_seeds = [](const std::string& target, auto&& load) {
        int seen = 0;
        for (const fs::directory_entry& entry : fs::directory_iterator(kCorpus / target)) {
            const std::string name = entry.path().filename().string();
            const Bytes bytes = read_file(entry.path());
            INFO(target, "/", name);
            if (name.starts_with("valid-")) {
                CHECK_NOTHROW(load(name, bytes));
                ++seen;
            } else if (name.starts_with("near-")) {
                CHECK_THROWS_AS(load(name, bytes), Error);
                ++seen;
            }
        }
        CHECK(seen >= 3);
    };
    check_seeds("fuzz_safetensors", [](const std::string&, const Bytes& b) {
        parse_safetensors(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    });
    if (idx_gzip_supported())
        check_seeds("fuzz_idx", [](const std::string& name, const Bytes& b) {
            parse_idx(b, name.find("labels") != std::string::npos ? 1 : 3, name);
        });
    check_seeds("fuzz_cifar", [](const std::string& name, const Bytes& b) {
        const bool c100 = name.find("cifar100") != std::string::npos;
        cifar_dataset_from_bytes(c100 ? CifarKind::cifar100 : CifarKind::cifar10, b, name, "train");
    });
    if (image_folder_supported())
        check_seeds("fuzz_image", [](const std::string& name, const Bytes& b) {
            decode_image_bytes(b, 3, name);
        });
    check_seeds("fuzz_config", [](const std::string& name, const Bytes& b) {
        Config c = distill_config_schema();
        c.parse(std::string(b.begin(), b.end()), name);
        read_distill_config(c);
    });
    // fuzz_model_spec reads each input as all three; each seed is meant for one of them
    check_seeds("fuzz_model_spec", [](const std::string& name, const Bytes& b) {
        const std::string text(b.begin(), b.end());
        if (name.find("-model-") != std::string::npos)
            resolve_model_spec(text);
        else if (name.find("-batch-") != std::string::npos)
            make_batch_transform(text);
        else
            TransformPipeline pipeline(text);
    });
}

// =============================================================================================
// Inputs the fuzzer found (tools/fuzz.sh), each kept in tests/fuzz_corpus/regressions/

TEST_CASE("hostile inputs: fuzz finding, a PNG whose first IDAT chunk is empty") {
    // stb_image copied the empty chunk to a buffer it had not allocated (memcpy to a null
    // pointer, reported by UndefinedBehaviorSanitizer). Such chunks are dropped before stb reads
    // the file. This one (cut short by the fuzzer after its type) is refused as truncated.
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    const Bytes found = read_file(kCorpus / "regressions/fuzz_image-empty-first-idat.png");
    CHECK(image_info_from_bytes(found, "found.png").width == 4);
    CHECK_THROWS_WITH_AS(decode_image_bytes(found, 1, "found.png"),
                         Contains("found.png: the PNG chunk 'IDAT' at byte 33 (0 bytes of data) "
                                  "runs past the end of the file"),
                         Error);
    // whole, with its CRC and an IEND chunk, it is a PNG without image data: stb refuses it
    Bytes whole = found;
    const Bytes crc_and_iend = {0x35, 0xAF, 0x06, 0x1E, 0,   0,    0,    0,
                                'I',  'E',  'N',  'D',  0xAE, 0x42, 0x60, 0x82};
    whole.insert(whole.end(), crc_and_iend.begin(), crc_and_iend.end());
    CHECK_THROWS_WITH_AS(decode_image_bytes(whole, 1, "whole.png"),
                         Contains("whole.png: cannot decode the image"), Error);

    // an empty IDAT chunk in a valid file changes nothing of its image
    const Bytes png = read_file(kCorpus / "fuzz_image/valid-grey.png");
    const std::size_t after_ihdr = 8 + 12 + 13;
    const Bytes empty_idat = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};
    Bytes with_empty = Bytes(png.begin(), png.begin() + after_ihdr);
    with_empty.insert(with_empty.end(), empty_idat.begin(), empty_idat.end());
    with_empty.insert(with_empty.end(), png.begin() + after_ihdr, png.end());
    CHECK(decode_image_bytes(with_empty, 1, "with-empty.png").to_vector<float>() ==
          decode_image_bytes(png, 1, "valid.png").to_vector<float>());
}

TEST_CASE("hostile inputs: fuzz finding, a config value holding a double quote before ' #'") {
    // spec=" #  was read as the value '" #' (the quote "opened" and hid the comment), which str()
    // wrote as "\" #\"" and that read back as "": a saved run configuration that changed when
    // read. A value in quotes now runs to the line's last quote; any other value ends at its
    // comment, quote or not.
    const Bytes found = read_file(kCorpus / "regressions/fuzz_config-quote-before-comment-mark.cfg");
    Config c = distill_config_schema();
    c.parse(std::string(found.begin(), found.end()), "found.cfg");
    CHECK(c.get_string("model.spec") == "\"");
    auto round_trip = [](const std::string& value) {
        Config first = train_config_schema();
        first.set("data.path", value, "test");
        Config again = train_config_schema();
        again.parse(first.str(), "saved");
        CHECK(again.get_string("data.path") == value);
        CHECK(again.str() == first.str());
    };
    for (const char* value : {"\"", "\" #", "x\" #y", "a #b\" #c", "\"q\"", "#", " lead", "trail ",
                              "", "a\"b", "\"\"", "x # y # \"z\""})
        round_trip(value);
    // what a person writes reads as before
    Config c2 = train_config_schema();
    c2.parse("[data]\npath = /data/x   # where\ntrain_transforms = \"flip; crop\"  # quoted\n"
             "eval_transforms = \"a # b\"\n",
             "written.cfg");
    CHECK(c2.get_string("data.path") == "/data/x");
    CHECK(c2.get_string("data.train_transforms") == "flip; crop");
    CHECK(c2.get_string("data.eval_transforms") == "a # b");
}

TEST_CASE("hostile inputs: fuzz finding, a 736-byte JPEG that declares 10505 x 2055 pixels") {
    // stb decodes the data a JPEG or BMP lacks as zeros: this file took over 10 s under the
    // sanitizers (a second in a Release build) and made 260 MB of floats. A JPEG needs at least
    // a bit per 8x8 block and a BMP a bit per pixel, so such a file is refused from its size.
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    const Bytes found = read_file(kCorpus / "regressions/fuzz_image-short-jpeg-of-21-mpixels.jpg");
    CHECK_THROWS_WITH_AS(image_info_from_bytes(found, "found.jpg"),
                         Contains("found.jpg: the file is 736 bytes, too few for the 10505x2055 "
                                  "pixels its JPEG header declares (at least 21081); it is "
                                  "truncated or corrupt"),
                         Error);
    CHECK_THROWS_WITH_AS(image_info_from_bytes(jpeg_header(4000, 3000), "short.jpg"),
                         Contains("too few for the 4000x3000 pixels its JPEG header declares (at "
                                  "least 11718)"),
                         Error);
    CHECK_THROWS_WITH_AS(image_info_from_bytes(bmp_header(1000, 1000), "short.bmp"),
                         Contains("the file is 54 bytes, too few for the 1000x1000 pixels its BMP "
                                  "header declares (at least 128000)"),
                         Error);
    // an image folder refuses it from the file's size when it opens the split
    TempDir dir;
    write_file(dir / "train/a/found.jpg", found);
    CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "train", "train", {"a"}),
                         Contains("found.jpg': the file is 736 bytes, too few"), Error);
}

TEST_CASE("hostile inputs: fuzz finding, a JPEG scan that decodes with a Huffman table never defined") {
    // stb searched the table it never built (uninitialized memory) and read past the end of its
    // array of code lengths (UndefinedBehaviorSanitizer: index 18 out of bounds). The walk of
    // data/jpeg_check.h now follows which tables each scan uses and refuses the file first.
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    const std::string expected =
        "a scan of this JPEG decodes with a Huffman table the file does not define";
    const Bytes found =
        read_file(kCorpus / "regressions/fuzz_image-scan-with-undefined-huffman-table.jpg");
    CHECK_FALSE(inspect_jpeg(found.data(), found.size()).scan_tables_defined);
    CHECK_THROWS_WITH_AS(decode_image_bytes(found, 3, "found.jpg"), Contains(expected.c_str()),
                         Error);

    // the same defect made by hand: a valid JPEG (stb_image_write defines tables 0 and 1) whose
    // scan points its first component at DC and AC tables 2
    Bytes jpeg = read_file(kCorpus / "fuzz_image/valid-grey.jpg");
    CHECK(inspect_jpeg(jpeg.data(), jpeg.size()).scan_tables_defined);
    std::size_t sos = 0;
    for (std::size_t i = 0; i + 1 < jpeg.size() && sos == 0; ++i)
        if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) sos = i;
    REQUIRE(sos > 0);
    jpeg[sos + 6] = 0x22;  // after marker, length, count and component id: the table selectors
    CHECK_THROWS_WITH_AS(image_info_from_bytes(jpeg, "tables.jpg"), Contains(expected.c_str()),
                         Error);
    // every JPEG seed of the fuzz corpus, progressive included, defines what it uses
    for (const char* name : {"valid-rgb.jpg", "valid-progressive.jpg"}) {
        const Bytes seed = read_file(kCorpus / "fuzz_image" / name);
        CHECK(inspect_jpeg(seed.data(), seed.size()).scan_tables_defined);
    }
}

TEST_CASE("hostile inputs: fuzz finding, a PNG chunk that claims more bytes than the file holds") {
    // stb grew its buffer to the IDAT chunk's declared length (here close to 2 GB) before reading
    // it: libFuzzer's malloc limit stopped it. Chunks are now measured against the file first.
    if (!image_folder_supported()) {
        MESSAGE("built without stb_image: image cases skipped");
        return;
    }
    const Bytes found = read_file(kCorpus / "regressions/fuzz_image-idat-chunk-claims-2-gb.png");
    CHECK_THROWS_WITH_AS(decode_image_bytes(found, 1, "found.png"),
                         Contains("runs past the end of the file; it is truncated or corrupt"),
                         Error);
    // a valid PNG cut anywhere inside a chunk is refused the same way, before stb reads it
    const Bytes png = read_file(kCorpus / "fuzz_image/valid-rgba.png");
    for (std::size_t cut = 41; cut + 12 < png.size(); cut += 7) {  // in IDAT, after its type
        CAPTURE(cut);
        CHECK_THROWS_WITH_AS(decode_image_bytes(Bytes(png.begin(), png.begin() + cut), 3, "cut"),
                             Contains("runs past the end of the file"), Error);
    }
    CHECK(decode_image_bytes(png, 4, "whole.png").shape() == Shape{4, 2, 3});
}
