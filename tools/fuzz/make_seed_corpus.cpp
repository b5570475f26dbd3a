// tools/fuzz/make_seed_corpus.cpp: writes the binary seeds of tests/fuzz_corpus/ (the text seeds
// of fuzz_config and fuzz_model_spec are written by hand).
//
//   build-fuzz/tools/fuzz/make_seed_corpus tests/fuzz_corpus
//
// Seeds are small valid files ("valid-*") and near-valid ones ("near-*": one defect each), so the
// fuzzer starts next to every branch of a parser instead of having to discover the format. The
// safetensors seeds come from retort's own writer, the images from stb_image_write, the rest is
// written byte by byte. tests/test_hostile_inputs.cpp checks that each valid seed loads and each
// near-valid one is refused.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/engine.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

using namespace retort;
namespace fs = std::filesystem;

namespace {

using Bytes = std::string;

void write(const fs::path& path, const Bytes& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) fail("cannot write ", path.string());
    std::printf("%6zu  %s\n", bytes.size(), path.string().c_str());
}

void put_u32_be(Bytes& b, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u32_le(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
}

// n bytes that differ from one another: (seed + 37 k) mod 256.
Bytes pattern(std::size_t n, unsigned seed) {
    Bytes out(n, '\0');
    for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<char>((seed + 37 * k) % 256);
    return out;
}

// ---- safetensors ----

// A file with a hand-written header (for the types retort reads but does not write).
Bytes safetensors_by_hand(const std::string& header, const Bytes& data) {
    Bytes out;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
    return out + header + data;
}

void safetensors_seeds(const fs::path& dir) {
    const std::map<std::string, Tensor> mixed = {
        {"weight", from_vector(std::vector<float>{1, -2, 3.5f, 0, 1e-3f, -7}, {2, 3})},
        {"bias", from_vector(std::vector<double>{0.25, -1, 2}, {3})},
        {"steps", from_vector(std::vector<std::int64_t>{3, -4}, {2})},
        {"label", from_vector(std::vector<std::int32_t>{9}, {1})},
        {"empty", Tensor::empty({0, 4})},
    };
    const Bytes valid = serialize_safetensors(mixed, {{"format", "pt"}});
    write(dir / "valid-mixed.safetensors", valid);
    write(dir / "valid-no-tensors.safetensors", serialize_safetensors({}));
    // F16 1.0 and -2.0, BF16 1.0, BOOL, U8, I8 -1, I16 -2: every type that widens on load
    write(dir / "valid-widened-types.safetensors",
          safetensors_by_hand("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                              "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]},"
                              "\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[6,8]},"
                              "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[8,9]},"
                              "\"s\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[9,10]},"
                              "\"t\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[10,12]}}",
                              Bytes("\x00\x3c\x00\xc0\x80\x3f\x01\x00\xff\xff\xfe\xff", 12)));
    write(dir / "near-truncated.safetensors", valid.substr(0, valid.size() - 4));
    write(dir / "near-overlap.safetensors",
          safetensors_by_hand("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                              Bytes(8, '\0')));
    write(dir / "near-huge-shape.safetensors",
          safetensors_by_hand("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
                              "\"data_offsets\":[0,4]}}",
                              Bytes(4, '\0')));
}

// ---- IDX ----

Bytes idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data) {
    Bytes out;
    put_u32_be(out, magic);
    for (std::uint32_t d : dims) put_u32_be(out, d);
    return out + data;
}

Bytes gzip(const Bytes& data) {
    z_stream z{};
    if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        fail("deflateInit2");
    Bytes out(deflateBound(&z, data.size()) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) fail("deflate");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

void idx_seeds(const fs::path& dir) {
    const Bytes images = idx(0x00000803, {2, 3, 4}, pattern(24, 1));
    write(dir / "valid-images.idx", images);
    write(dir / "valid-labels.idx", idx(0x00000801, {3}, Bytes("\x01\x09\x00", 3)));
    write(dir / "valid-images.idx.gz", gzip(images));
    write(dir / "near-truncated.idx", images.substr(0, images.size() - 1));
    write(dir / "near-huge-sizes.idx", idx(0x00000803, {65536, 65536, 2}, ""));
}

// ---- CIFAR ----

void cifar_seeds(const fs::path& dir) {
    write(dir / "valid-cifar10.bin", Bytes(1, '\x07') + pattern(3072, 3));
    write(dir / "valid-cifar100.bin", Bytes("\x13\x63", 2) + pattern(3072, 5));
    write(dir / "near-label.bin", Bytes(1, '\x0c') + pattern(3072, 7));  // label 12 of 10
}

// ---- images ----

void append_to(void* context, void* data, int size) {
    static_cast<Bytes*>(context)->append(static_cast<const char*>(data),
                                         static_cast<std::size_t>(size));
}

Bytes png(int w, int h, int channels, unsigned seed) {
    Bytes out;
    const Bytes pixels = pattern(static_cast<std::size_t>(w * h * channels), seed);
    stbi_write_png_to_func(append_to, &out, w, h, channels, pixels.data(), w * channels);
    return out;
}

Bytes jpeg(int w, int h, int channels, unsigned seed) {
    Bytes out;
    const Bytes pixels = pattern(static_cast<std::size_t>(w * h * channels), seed);
    stbi_write_jpg_to_func(append_to, &out, w, h, channels, pixels.data(), 90);
    return out;
}

Bytes bmp(int w, int h, int channels, unsigned seed) {
    Bytes out;
    const Bytes pixels = pattern(static_cast<std::size_t>(w * h * channels), seed);
    stbi_write_bmp_to_func(append_to, &out, w, h, channels, pixels.data());
    return out;
}

// A PNG signature and IHDR chunk claiming width x height RGB, and nothing after it.
Bytes png_header_only(std::uint32_t width, std::uint32_t height) {
    Bytes chunk = "IHDR";
    put_u32_be(chunk, width);
    put_u32_be(chunk, height);
    chunk += Bytes("\x08\x02\x00\x00\x00", 5);
    Bytes out = "\x89PNG\r\n\x1a\n";
    put_u32_be(out, 13);
    out += chunk;
    put_u32_be(out, static_cast<std::uint32_t>(
                        crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), chunk.size())));
    return out;
}

// A 24-bit BMP header claiming width x height, and no pixels.
Bytes bmp_header_only(std::uint32_t width, std::uint32_t height) {
    Bytes out = "BM";
    for (std::uint32_t v : {54u, 0u, 54u, 40u, width, height}) put_u32_le(out, v);
    out += Bytes("\x01\x00\x18\x00", 4);  // 1 plane, 24 bits per pixel
    for (int i = 0; i < 6; ++i) put_u32_le(out, 0);
    return out;
}

void image_seeds(const fs::path& dir) {
    write(dir / "valid-grey.png", png(4, 3, 1, 1));
    write(dir / "valid-rgba.png", png(3, 2, 4, 2));
    write(dir / "valid-rgb.jpg", jpeg(9, 7, 3, 3));
    write(dir / "valid-grey.jpg", jpeg(8, 4, 1, 4));
    write(dir / "valid-rgb.bmp", bmp(3, 2, 3, 5));
    write(dir / "near-huge.png", png_header_only(100000, 100000));
    write(dir / "near-huge.bmp", bmp_header_only(100000, 100000));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s tests/fuzz_corpus\n", argv[0]);
        return 2;
    }
    try {
        const fs::path root = argv[1];
        safetensors_seeds(root / "fuzz_safetensors");
        idx_seeds(root / "fuzz_idx");
        cifar_seeds(root / "fuzz_cifar");
        image_seeds(root / "fuzz_image");
    } catch (const Error& e) {
        std::fprintf(stderr, "make_seed_corpus: %s\n", e.what());
        return 1;
    }
    return 0;
}
