// data/idx.cpp: reading IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed (see idx.h).
// Shapes: images file (N, H, W) bytes -> samples (1, H, W) float32 = byte / 255, as torchvision's
// MNIST with ToTensor(); labels file (N) bytes -> int64 labels in [0, 10).
//
// Reading runs in two stages so that a hostile file cannot make retort allocate more than its
// contents justify:
//   1. header: the magic number and the sizes, checked (type, rank, no zero sizes, total at most
//      kIdxMaxDataBytes) and, for a plain file, compared with the file's length.
//   2. data: read in chunks, the buffer growing only as bytes really arrive, so a small gzip file
//      that claims 2 GiB fails at its true end instead of allocating 2 GiB first. Data that runs
//      past what the header accounts for is an error too.
// Files and bytes already in memory (parse_idx) go through the same two stages: each is a
// ByteStream, plain or inflated as it is read (gzread for a file, zlib's inflate for memory).
#include "data/idx.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "data/file_bytes.h"
#include "engine/error.h"

#ifdef RETORT_HAVE_ZLIB
#include <zlib.h>
#endif

namespace retort {

namespace {

// ---------------------------------------------------------------------------------------------
// Byte streams: a plain file or a gzip stream, on disk or in memory, read the same way

class ByteStream {
public:
    virtual ~ByteStream() = default;
    // Reads up to n bytes; fewer only at the end of the data. Throws Error on corrupt data.
    virtual std::size_t read(unsigned char* dest, std::size_t n) = 0;
    // The number of bytes the stream holds, when known without reading it (plain files).
    virtual std::optional<std::uint64_t> known_size() const { return std::nullopt; }
};

class PlainStream : public ByteStream {
public:
    explicit PlainStream(const std::filesystem::path& path) : file_(path, "IDX file") {}
    std::size_t read(unsigned char* dest, std::size_t n) override {
        return file_.read_some(dest, n);
    }
    std::optional<std::uint64_t> known_size() const override { return file_.size(); }

private:
    InputFile file_;
};

#ifdef RETORT_HAVE_ZLIB
class GzipStream : public ByteStream {
public:
    GzipStream(const std::filesystem::path& path, std::string label)
        : path_(path.string()), label_(std::move(label)) {
        gz_ = gzopen(path_.c_str(), "rb");
        if (!gz_) fail(label_, ": cannot open: ", std::strerror(errno));
        gzbuffer(gz_, 1 << 17);  // larger reads than the 8 KiB default: the files are tens of MB
    }
    ~GzipStream() override { gzclose(gz_); }

    std::size_t read(unsigned char* dest, std::size_t n) override {
        std::size_t done = 0;
        while (done < n) {
            const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
            const int got = gzread(gz_, dest + done, chunk);
            if (got > 0) done += static_cast<std::size_t>(got);
            if (got < static_cast<int>(chunk)) {
                check_stream();  // a short read is the end of the data, or an error
                break;
            }
        }
        return done;
    }

private:
    void check_stream() {
        int code = Z_OK;
        const char* message = gzerror(gz_, &code);
        if (code == Z_OK) return;
        // zlib prefixes its message with the path, which our label already names.
        std::string reason = message ? message : "unknown error";
        const std::string prefix = path_ + ": ";
        if (reason.rfind(prefix, 0) == 0) reason.erase(0, prefix.size());
        fail(label_, ": corrupt gzip data (", reason, "); the file is damaged or truncated");
    }

    std::string path_, label_;
    gzFile gz_ = nullptr;
};
#endif

// Bytes already in memory (parse_idx), read like a plain file.
class MemoryStream : public ByteStream {
public:
    explicit MemoryStream(std::span<const unsigned char> bytes) : bytes_(bytes) {}
    std::size_t read(unsigned char* dest, std::size_t n) override {
        const std::size_t count = std::min(n, bytes_.size() - pos_);
        if (count > 0) std::memcpy(dest, bytes_.data() + pos_, count);
        pos_ += count;
        return count;
    }
    std::optional<std::uint64_t> known_size() const override { return bytes_.size(); }

private:
    std::span<const unsigned char> bytes_;
    std::size_t pos_ = 0;
};

bool has_gzip_magic(std::span<const unsigned char> bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B;
}

#ifdef RETORT_HAVE_ZLIB
// gzip data in memory, inflated as it is read: what GzipStream does for a file (gzopen cannot
// read memory). As gzread does, members written one after another are read as one stream, and
// bytes after the last member that do not start another are ignored.
class MemoryGzipStream : public ByteStream {
public:
    MemoryGzipStream(std::span<const unsigned char> bytes, std::string label)
        : input_(bytes), label_(std::move(label)) {
        if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK)  // 16: expect the gzip wrapper
            fail(label_, ": cannot start gzip decompression (out of memory)");
    }
    ~MemoryGzipStream() override { inflateEnd(&z_); }
    MemoryGzipStream(const MemoryGzipStream&) = delete;
    MemoryGzipStream& operator=(const MemoryGzipStream&) = delete;

    std::size_t read(unsigned char* dest, std::size_t n) override {
        std::size_t done = 0;
        while (done < n && !finished_) {
            if (z_.avail_in == 0) feed();
            const uInt room = static_cast<uInt>(std::min<std::size_t>(n - done, 1u << 30));
            z_.next_out = dest + done;
            z_.avail_out = room;
            const int code = inflate(&z_, Z_NO_FLUSH);
            done += room - z_.avail_out;
            if (code == Z_STREAM_END) {
                next_member();
            } else if (code == Z_BUF_ERROR && z_.avail_in == 0 && fed_ == input_.size()) {
                fail(label_, ": corrupt gzip data (unexpected end of file); the file is damaged ",
                     "or truncated");
            } else if (code != Z_OK && code != Z_BUF_ERROR) {
                fail(label_, ": corrupt gzip data (", z_.msg ? z_.msg : "unknown error",
                     "); the file is damaged or truncated");
            }
        }
        return done;
    }

private:
    // zlib counts input in 32-bit units, so a large buffer goes in by pieces.
    void feed() {
        const std::size_t count = std::min<std::size_t>(input_.size() - fed_, 1u << 30);
        z_.next_in = const_cast<Bytef*>(input_.data() + fed_);  // zlib never writes to it
        z_.avail_in = static_cast<uInt>(count);
        fed_ += count;
    }

    void next_member() {
        const std::size_t left = z_.avail_in + (input_.size() - fed_);
        const std::size_t at = input_.size() - left;
        if (!has_gzip_magic(input_.subspan(at))) {
            finished_ = true;
            return;
        }
        inflateReset(&z_);
    }

    std::span<const unsigned char> input_;
    std::size_t fed_ = 0;  // bytes of input_ handed to zlib so far
    std::string label_;
    z_stream z_{};
    bool finished_ = false;
};
#endif

bool starts_with_gzip_magic(const std::filesystem::path& path) {
    InputFile file(path, "IDX file");
    unsigned char magic[2] = {0, 0};
    return file.read_some(magic, 2) == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
}

std::unique_ptr<ByteStream> open_stream(const std::filesystem::path& path,
                                        const std::string& label) {
    if (!starts_with_gzip_magic(path)) return std::make_unique<PlainStream>(path);
#ifdef RETORT_HAVE_ZLIB
    return std::make_unique<GzipStream>(path, label);
#else
    fail(label, ": the file is gzip-compressed, but retort was built without zlib (RETORT_ZLIB=OFF ",
         "or RETORT_MINIMAL=ON, or zlib1g-dev missing when it was configured); decompress it with ",
         "gunzip, or rebuild with zlib1g-dev installed, RETORT_ZLIB=ON and RETORT_MINIMAL=OFF");
#endif
}

std::unique_ptr<ByteStream> memory_stream(std::span<const unsigned char> bytes,
                                          const std::string& label) {
    if (!has_gzip_magic(bytes)) return std::make_unique<MemoryStream>(bytes);
#ifdef RETORT_HAVE_ZLIB
    return std::make_unique<MemoryGzipStream>(bytes, label);
#else
    fail(label, ": the data is gzip-compressed, but retort was built without zlib (RETORT_ZLIB=OFF ",
         "or RETORT_MINIMAL=ON, or zlib1g-dev missing when it was configured)");
#endif
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the header

std::string hex(std::uint32_t value, int digits) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%0*X", digits, value);
    return text;
}

std::uint32_t decode_u32_be(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           p[3];
}

const char* kind_of_rank(int rank) { return rank == 3 ? "image" : rank == 1 ? "label" : "data"; }

void read_header_part(ByteStream& in, unsigned char* dest, std::size_t n, const std::string& label,
                      const char* part) {
    const std::size_t got = in.read(dest, n);
    if (got != n)
        fail(label, ": the file ends inside the header (", part,
             "); it is truncated or not an IDX file");
}

void check_magic(const unsigned char* m, int rank, const std::string& label) {
    const std::uint32_t magic = decode_u32_be(m);
    const std::uint32_t expected = 0x00000800u | static_cast<std::uint32_t>(rank);
    if (m[0] != 0 || m[1] != 0)
        fail(label, ": not an IDX file: magic number ", hex(magic, 8), " (an IDX ",
             kind_of_rank(rank), " file starts with ", hex(expected, 8), ")");
    if (m[2] != 0x08)
        fail(label, ": element type code ", hex(m[2], 2), " is not supported; retort reads ",
             "unsigned-byte IDX files (type 0x08, magic ", hex(expected, 8), ")");
    if (m[3] != rank)
        fail(label, ": magic number ", hex(magic, 8), " says ", int{m[3]},
             " dimensions, but an IDX ", kind_of_rank(rank), " file has ", rank, " (magic ",
             hex(expected, 8), ")");
}

// The sizes from the header, and the number of data bytes they imply (checked against the limit).
std::uint64_t read_dims(ByteStream& in, int rank, const std::string& label,
                        std::vector<std::int64_t>& dims) {
    std::vector<unsigned char> raw(4 * static_cast<std::size_t>(rank));
    read_header_part(in, raw.data(), raw.size(), label, "sizes");
    std::uint64_t total = 1;
    for (int d = 0; d < rank; ++d) {
        const std::uint32_t size = decode_u32_be(raw.data() + 4 * d);
        if (size == 0) fail(label, ": dimension ", d, " has size 0; the file holds no data");
        dims.push_back(size);
        if (total > kIdxMaxDataBytes / size)
            fail(label, ": the header's sizes need more than ", kIdxMaxDataBytes,
                 " bytes of data, the limit for an IDX file");
        total *= size;
    }
    return total;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the data

void read_data(ByteStream& in, std::uint64_t header_bytes, IdxArray& array, std::uint64_t needed,
               const std::string& label) {
    const std::string sizes = shape_str(array.dims);
    if (std::optional<std::uint64_t> size = in.known_size()) {
        const std::uint64_t expected = header_bytes + needed;
        if (*size < expected)
            fail(label, ": the file is ", *size, " bytes, but its header (sizes ", sizes,
                 ") needs ", expected, "; the file is truncated");
        if (*size > expected)
            fail(label, ": the file is ", *size, " bytes, ", *size - expected, " more than its ",
                 "header (sizes ", sizes, ") accounts for");
    }
    constexpr std::uint64_t kChunk = std::uint64_t{16} << 20;
    std::uint64_t done = 0;
    while (done < needed) {
        const std::uint64_t want = std::min(kChunk, needed - done);
        array.data.resize(static_cast<std::size_t>(done + want));
        const std::size_t got = in.read(array.data.data() + done, static_cast<std::size_t>(want));
        done += got;
        if (got < want)
            fail(label, ": the data ends after ", done, " of the ", needed,
                 " bytes its header (sizes ", sizes, ") needs; the file is truncated");
    }
    unsigned char extra;
    if (in.read(&extra, 1) != 0)
        fail(label, ": the data continues past the ", needed, " bytes its header (sizes ", sizes,
             ") accounts for");
}

// Both stages, for a file or for memory.
IdxArray read_array(ByteStream& in, int rank, const std::string& label) {
    unsigned char magic[4];
    read_header_part(in, magic, 4, label, "magic number");
    check_magic(magic, rank, label);
    IdxArray array;
    const std::uint64_t needed = read_dims(in, rank, label, array.dims);
    read_data(in, 4 + 4 * static_cast<std::uint64_t>(rank), array, needed, label);
    return array;
}

// ---------------------------------------------------------------------------------------------
// The dataset

class IdxDataset : public Dataset {
public:
    IdxDataset(IdxArray images, IdxArray labels, std::string description)
        : images_(std::move(images.data)),
          labels_(std::move(labels.data)),
          shape_{1, images.dims[1], images.dims[2]},
          description_(std::move(description)) {}

    std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
    Sample get(std::int64_t index) const override {
        check_sample_index(index, size(), description_);
        const std::int64_t pixels = shape_[1] * shape_[2];
        return {image_from_planar_bytes(images_.data() + index * pixels, shape_), labels_[index]};
    }
    std::int64_t num_classes() const override { return kIdxNumClasses; }
    Shape image_shape() const override { return shape_; }
    std::string describe() const override { return description_; }

private:
    std::vector<unsigned char> images_;  // (N, H, W)
    std::vector<unsigned char> labels_;  // (N)
    Shape shape_;                        // (1, H, W)
    std::string description_;
};

void check_labels(const std::vector<unsigned char>& labels, const std::string& label) {
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] >= kIdxNumClasses)
            fail(label, ": label ", int{labels[i]}, " at index ", i, " is out of range [0, ",
                 kIdxNumClasses, "); MNIST-style datasets have ", kIdxNumClasses, " classes");
}

}  // namespace

IdxArray read_idx(const std::filesystem::path& path, int rank) {
    const std::string label = "IDX file " + quote_path(path);
    return read_array(*open_stream(path, label), rank, label);
}

IdxArray parse_idx(std::span<const unsigned char> bytes, int rank, const std::string& source) {
    const std::string label = "IDX data " + quote_path(source);
    return read_array(*memory_stream(bytes, label), rank, label);
}

std::shared_ptr<const Dataset> load_idx_dataset(const std::filesystem::path& images,
                                                const std::filesystem::path& labels,
                                                const std::string& split) {
    IdxArray image_array = read_idx(images, 3);
    IdxArray label_array = read_idx(labels, 1);
    if (image_array.dims[0] != label_array.dims[0])
        fail("IDX files ", quote_path(images), " and ", quote_path(labels), " disagree: ",
             image_array.dims[0], " images but ", label_array.dims[0], " labels");
    check_labels(label_array.data, "IDX file " + quote_path(labels));
    const Shape shape{1, image_array.dims[1], image_array.dims[2]};
    std::string description = cat("IDX ", split, ": ", image_array.dims[0], " images ",
                                  shape_str(shape), " from ", quote_path(images));
    return std::make_shared<IdxDataset>(std::move(image_array), std::move(label_array),
                                        std::move(description));
}

bool idx_gzip_supported() {
#ifdef RETORT_HAVE_ZLIB
    return true;
#else
    return false;
#endif
}

}  // namespace retort
