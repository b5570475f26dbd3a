// engine/io/safetensors.cpp: loading and saving .safetensors files (format: safetensors.h).
//
// Matches the reference implementation (huggingface/safetensors) and safetensors.torch: the same
// header checks (length limit, exact keys per tensor, sizes that agree with shapes, data that tiles
// the data area), the same space padding of the header to 8 bytes.
//
// Loading runs in two stages so that a hostile file cannot make retort allocate more than the
// file itself justifies:
//   1. header: read the length and the JSON, and check every entry against the size of the data
//      area (dtype, shape, offsets, overlaps, gaps). Nothing but the header text is allocated.
//   2. data: allocate each tensor and copy (or widen, for F16/BF16/BOOL/U8/I8/I16) its bytes.
// Files and in-memory buffers go through the same code: both are a ByteSource.
//
// Saving plans the layout first (and rejects tensors that cannot be saved), then streams the
// bytes to a temporary file that is renamed over the target only once it is complete on disk.
#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <vector>

#include "engine/io/json.h"

namespace retort {

// The data area is copied into tensors byte for byte.
static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; a big-endian host needs byte swapping here");

namespace {

// ---------------------------------------------------------------------------------------------
// Element types on disk and how they widen to retort's dtypes

template <class T>
T load_unaligned(const unsigned char* p) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

// IEEE half precision: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every value, including
// subnormals, infinities and NaN payloads, has an exact float32 equivalent.
float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    const std::uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0)  // normal: rebias the exponent from 15 to 127
        return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
    const float subnormal = std::ldexp(static_cast<float>(mantissa), -24);  // 0 included
    return sign ? -subnormal : subnormal;
}

// bfloat16 is the top half of a float32.
float bfloat16_to_float(std::uint16_t b) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

void widen_f16(const unsigned char* src, std::int64_t n, void* dst) {
    float* out = static_cast<float*>(dst);
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = half_to_float(load_unaligned<std::uint16_t>(src + 2 * i));
}
void widen_bf16(const unsigned char* src, std::int64_t n, void* dst) {
    float* out = static_cast<float*>(dst);
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = bfloat16_to_float(load_unaligned<std::uint16_t>(src + 2 * i));
}
void widen_bool(const unsigned char* src, std::int64_t n, void* dst) {
    std::int32_t* out = static_cast<std::int32_t*>(dst);
    for (std::int64_t i = 0; i < n; ++i) out[i] = src[i] != 0 ? 1 : 0;
}
void widen_u8(const unsigned char* src, std::int64_t n, void* dst) {
    std::int32_t* out = static_cast<std::int32_t*>(dst);
    for (std::int64_t i = 0; i < n; ++i) out[i] = src[i];
}
void widen_i8(const unsigned char* src, std::int64_t n, void* dst) {
    std::int32_t* out = static_cast<std::int32_t*>(dst);
    for (std::int64_t i = 0; i < n; ++i) out[i] = load_unaligned<std::int8_t>(src + i);
}
void widen_i16(const unsigned char* src, std::int64_t n, void* dst) {
    std::int32_t* out = static_cast<std::int32_t*>(dst);
    for (std::int64_t i = 0; i < n; ++i) out[i] = load_unaligned<std::int16_t>(src + 2 * i);
}

struct DiskType {
    const char* name;   // as written in the header
    std::size_t size;   // bytes per element on disk
    DType loads_as;
    void (*widen)(const unsigned char* src, std::int64_t n, void* dst);  // nullptr: copy the bytes
};

constexpr DiskType kDiskTypes[] = {
    {"F32", 4, DType::f32, nullptr},    {"F64", 8, DType::f64, nullptr},
    {"I32", 4, DType::i32, nullptr},    {"I64", 8, DType::i64, nullptr},
    {"F16", 2, DType::f32, widen_f16},  {"BF16", 2, DType::f32, widen_bf16},
    {"BOOL", 1, DType::i32, widen_bool}, {"U8", 1, DType::i32, widen_u8},
    {"I8", 1, DType::i32, widen_i8},    {"I16", 2, DType::i32, widen_i16},
};

const DiskType* find_disk_type(std::string_view name) {
    for (const DiskType& t : kDiskTypes)
        if (name == t.name) return &t;
    return nullptr;
}

std::string supported_disk_types() {
    std::string list;
    for (const DiskType& t : kDiskTypes) list += (list.empty() ? "" : ", ") + std::string(t.name);
    return list;
}

// The name a dtype is saved under (the native types only: those need no conversion).
const char* disk_name(DType t) {
    switch (t) {
        case DType::f32: return "F32";
        case DType::f64: return "F64";
        case DType::i32: return "I32";
        case DType::i64: return "I64";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// Error messages

// A name from an untrusted file, fit for a message: quoted, control bytes escaped, and cut short.
std::string quote_name(std::string_view text) {
    constexpr std::size_t kMaxShown = 120;
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F || c == '\\') {
            out += "\\x";
            out.push_back("0123456789abcdef"[c >> 4]);
            out.push_back("0123456789abcdef"[c & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (text.size() > kMaxShown) out += "...";
    return out + "'";
}

template <class... Parts>
[[noreturn]] void corrupt(const std::string& source, const Parts&... parts) {
    fail("safetensors ", quote_name(source), ": ", parts...);
}

template <class... Parts>
[[noreturn]] void corrupt_tensor(const std::string& source, const std::string& tensor,
                                 const Parts&... parts) {
    corrupt(source, "tensor ", quote_name(tensor), ": ", parts...);
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the header

struct TensorEntry {
    std::string name;
    const DiskType* type;
    Shape shape;
    std::uint64_t begin, end;  // byte range in the data area
};

struct Header {
    std::vector<TensorEntry> tensors;
    std::map<std::string, std::string> metadata;
};

std::uint64_t decode_u64_le(const unsigned char* bytes) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    return n;
}

void encode_u64_le(std::uint64_t n, std::string& out) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
}

void check_header_length(std::uint64_t header_bytes, std::uint64_t file_bytes,
                         const std::string& source) {
    if (header_bytes > kSafetensorsMaxHeaderBytes)
        corrupt(source, "header length ", header_bytes, " exceeds the limit of ",
                kSafetensorsMaxHeaderBytes, " bytes");
    if (header_bytes > file_bytes - 8)
        corrupt(source, "header length ", header_bytes, " is larger than the ", file_bytes - 8,
                " bytes that follow it; the file may be truncated");
}

std::map<std::string, std::string> parse_metadata(const json::Value& value,
                                                  const std::string& source) {
    if (value.is_null()) return {};  // the reference reader takes null as "no metadata"
    if (!value.is_object())
        corrupt(source, "\"__metadata__\" must be an object of strings, got ",
                json::type_name(value.type()));
    std::map<std::string, std::string> metadata;
    for (const json::Member& m : value.as_object()) {
        if (!m.value.is_string())
            corrupt(source, "\"__metadata__\" must be an object of strings, but key ",
                    quote_name(m.key), " holds ", json::type_name(m.value.type()));
        metadata[m.key] = m.value.as_string();
    }
    return metadata;
}

// Element count of a shape from the header, refusing negative sizes and counts whose byte size
// would not fit in an int64.
std::int64_t checked_numel(const Shape& shape, std::size_t element_size, const std::string& source,
                           const std::string& name) {
    for (std::int64_t s : shape)
        if (s < 0)
            corrupt_tensor(source, name, "negative size ", s, " in shape ", shape_str(shape));
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    const std::int64_t limit =
        std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(element_size);
    std::int64_t numel = 1;
    for (std::int64_t s : shape) {
        if (numel > limit / s)
            corrupt_tensor(source, name, "shape ", shape_str(shape), " has too many elements");
        numel *= s;
    }
    return numel;
}

// A JSON array of integers, or an error that says which key was malformed.
std::vector<std::int64_t> integer_list(const json::Value& value, const char* key,
                                       const std::string& source, const std::string& name) {
    if (!value.is_array())
        corrupt_tensor(source, name, "\"", key, "\" must be a list of integers, got ",
                       json::type_name(value.type()));
    std::vector<std::int64_t> out;
    for (const json::Value& item : value.as_array()) {
        if (!item.is_integer())
            corrupt_tensor(source, name, "\"", key, "\" must be a list of integers, but it ",
                           "holds a ", json::type_name(item.type()));
        out.push_back(item.as_int());
    }
    return out;
}

TensorEntry parse_entry(const std::string& name, const json::Value& value,
                        std::uint64_t data_bytes, const std::string& source) {
    if (!value.is_object())
        corrupt_tensor(source, name, "expected an object with \"dtype\", \"shape\" and "
                       "\"data_offsets\", got ", json::type_name(value.type()));
    for (const json::Member& m : value.as_object())
        if (m.key != "dtype" && m.key != "shape" && m.key != "data_offsets")
            corrupt_tensor(source, name, "unexpected key ", quote_name(m.key),
                           " (an entry holds exactly \"dtype\", \"shape\" and \"data_offsets\")");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!value.find(key)) corrupt_tensor(source, name, "missing key \"", key, "\"");

    TensorEntry entry;
    entry.name = name;
    const json::Value& dtype = *value.find("dtype");
    if (!dtype.is_string())
        corrupt_tensor(source, name, "\"dtype\" must be a string, got ",
                       json::type_name(dtype.type()));
    entry.type = find_disk_type(dtype.as_string());
    if (!entry.type)
        corrupt_tensor(source, name, "unsupported dtype ", quote_name(dtype.as_string()),
                       " (retort reads ", supported_disk_types(), ")");

    entry.shape = integer_list(*value.find("shape"), "shape", source, name);
    const std::int64_t numel = checked_numel(entry.shape, entry.type->size, source, name);

    const std::vector<std::int64_t> offsets =
        integer_list(*value.find("data_offsets"), "data_offsets", source, name);
    if (offsets.size() != 2)
        corrupt_tensor(source, name, "\"data_offsets\" must hold two integers [begin, end], ",
                       "it holds ", offsets.size());
    if (offsets[0] < 0 || offsets[1] < 0)
        corrupt_tensor(source, name, "negative data_offsets [", offsets[0], ", ", offsets[1], "]");
    entry.begin = static_cast<std::uint64_t>(offsets[0]);
    entry.end = static_cast<std::uint64_t>(offsets[1]);
    const std::string range = cat("data_offsets [", entry.begin, ", ", entry.end, "]");
    if (entry.begin > entry.end) corrupt_tensor(source, name, range, " begin after they end");
    if (entry.end > data_bytes)
        corrupt_tensor(source, name, range, " reach past the end of the data area (", data_bytes,
                       " bytes); the file may be truncated");
    const std::uint64_t needed = static_cast<std::uint64_t>(numel) * entry.type->size;
    if (entry.end - entry.begin != needed)
        corrupt_tensor(source, name, range, " span ", entry.end - entry.begin, " bytes, but shape ",
                       shape_str(entry.shape), " of ", entry.type->name, " needs ", needed);
    return entry;
}

// The specification asks that the tensors cover the data area exactly: walking them in offset
// order, each must start where the previous one ended, and the last must end at the end.
void check_tiling(std::vector<TensorEntry>& tensors, std::uint64_t data_bytes,
                  const std::string& source) {
    std::sort(tensors.begin(), tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;  // bytes [0, covered) belong to tensors seen so far
    const TensorEntry* previous = nullptr;
    auto gap = [&](std::uint64_t from, std::uint64_t to) {
        corrupt(source, "bytes [", from, ", ", to, ") of the data area belong to no tensor (the "
                "format requires the tensors to cover the data without gaps)");
    };
    for (const TensorEntry& t : tensors) {
        if (t.begin < covered)
            corrupt(source, "tensors ", quote_name(previous->name), " and ", quote_name(t.name),
                    " overlap: data_offsets [", previous->begin, ", ", previous->end, "] and [",
                    t.begin, ", ", t.end, "]");
        if (t.begin > covered) gap(covered, t.begin);
        covered = t.end;
        previous = &t;
    }
    if (covered < data_bytes) gap(covered, data_bytes);
}

Header parse_header(std::string_view text, std::uint64_t data_bytes, const std::string& source) {
    json::Value root;
    try {
        root = json::parse(text);
    } catch (const Error& e) {
        corrupt(source, "header: ", e.what());
    }
    if (!root.is_object())
        corrupt(source, "the header must be a JSON object, got ", json::type_name(root.type()));
    Header header;
    for (const json::Member& m : root.as_object()) {
        if (m.key == "__metadata__")
            header.metadata = parse_metadata(m.value, source);
        else
            header.tensors.push_back(parse_entry(m.key, m.value, data_bytes, source));
    }
    check_tiling(header.tensors, data_bytes, source);
    return header;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the data, from a file or from memory

struct ByteSource {
    std::string name;    // for messages
    std::uint64_t size;  // total bytes
    // Copies bytes [offset, offset + count) into dest; offset + count <= size.
    std::function<void(std::uint64_t offset, std::size_t count, void* dest)> read;
};

Tensor load_tensor(const TensorEntry& entry, std::uint64_t data_start, const ByteSource& src) {
    Tensor t = Tensor::empty(entry.shape, entry.type->loads_as);
    const std::size_t bytes = static_cast<std::size_t>(entry.end - entry.begin);
    if (bytes == 0) return t;
    if (!entry.type->widen) {
        src.read(data_start + entry.begin, bytes, t.raw_data());
    } else {
        std::vector<unsigned char> raw(bytes);
        src.read(data_start + entry.begin, bytes, raw.data());
        entry.type->widen(raw.data(), t.numel(), t.raw_data());
    }
    return t;
}

SafetensorsContents load(const ByteSource& src) {
    if (src.size < 8)
        corrupt(src.name, "the file is ", src.size,
                " bytes long, too short to hold the 8-byte header length");
    unsigned char length_bytes[8];
    src.read(0, 8, length_bytes);
    const std::uint64_t header_bytes = decode_u64_le(length_bytes);
    check_header_length(header_bytes, src.size, src.name);

    std::string text(static_cast<std::size_t>(header_bytes), '\0');
    if (header_bytes > 0) src.read(8, text.size(), text.data());
    const std::uint64_t data_start = 8 + header_bytes;
    Header header = parse_header(text, src.size - data_start, src.name);

    SafetensorsContents contents;
    contents.metadata = std::move(header.metadata);
    for (const TensorEntry& entry : header.tensors)
        contents.tensors[entry.name] = load_tensor(entry, data_start, src);
    return contents;
}

// A file opened for reading, closed on every path out.
class InputFile {
public:
    explicit InputFile(const std::string& path) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) corrupt(path, "cannot open: ", std::strerror(errno));
        struct stat info {};
        if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
            ::close(fd_);  // the destructor does not run when the constructor throws
            corrupt(path, "not a regular file");
        }
        size_ = static_cast<std::uint64_t>(info.st_size);
    }
    ~InputFile() { ::close(fd_); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    std::uint64_t size() const { return size_; }

    void read_at(std::uint64_t offset, std::size_t count, void* dest) const {
        char* out = static_cast<char*>(dest);
        while (count > 0) {
            const ssize_t got = ::pread(fd_, out, count, static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) corrupt(path_, "read error: ", std::strerror(errno));
            if (got == 0) corrupt(path_, "the file ended early (did it change while being read?)");
            out += got;
            offset += static_cast<std::uint64_t>(got);
            count -= static_cast<std::size_t>(got);
        }
    }

private:
    std::string path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Saving

struct Layout {
    std::string prefix;  // the 8-byte header length and the padded header
    std::vector<const Tensor*> data_order;
};

void check_saveable(const std::string& name, const Tensor& t) {
    require(json::is_valid_utf8(name), "save_safetensors: tensor name ", quote_name(name),
            " is not valid UTF-8");
    require(name != "__metadata__", "save_safetensors: \"__metadata__\" is reserved for the "
            "metadata and cannot name a tensor");
    require(t.defined(), "save_safetensors: tensor ", quote_name(name), " is undefined");
    require(t.device().is_cpu(), "save_safetensors: tensor ", quote_name(name), " is on ",
            t.device().str(), "; move it to the CPU first");
}

Layout plan_layout(const std::map<std::string, Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata) {
    for (const auto& [name, t] : tensors) check_saveable(name, t);
    for (const auto& [key, value] : metadata)
        require(json::is_valid_utf8(key) && json::is_valid_utf8(value),
                "save_safetensors: metadata entry ", quote_name(key), " is not valid UTF-8");

    // data order: 8-byte types, then 4-byte types, each by name (std::map iterates sorted)
    std::vector<const std::pair<const std::string, Tensor>*> order;
    for (const auto& item : tensors) order.push_back(&item);
    std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
        return dtype_size(a->second.dtype()) > dtype_size(b->second.dtype());
    });
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> offsets;
    std::int64_t cursor = 0;
    Layout layout;
    for (const auto* item : order) {
        const Tensor& t = item->second;
        const std::int64_t bytes = t.numel() * static_cast<std::int64_t>(dtype_size(t.dtype()));
        offsets[item->first] = {cursor, cursor + bytes};
        cursor += bytes;
        layout.data_order.push_back(&t);
    }

    // header: "__metadata__" first, then the tensors by name
    json::Object root;
    if (!metadata.empty()) {
        json::Object meta;
        for (const auto& [key, value] : metadata) meta.push_back({key, value});
        root.push_back({"__metadata__", std::move(meta)});
    }
    for (const auto& [name, t] : tensors) {
        json::Array shape(t.shape().begin(), t.shape().end());
        const auto [begin, end] = offsets.at(name);
        json::Object entry{{"dtype", disk_name(t.dtype())},
                           {"shape", std::move(shape)},
                           {"data_offsets", json::Array{begin, end}}};
        root.push_back({name, std::move(entry)});
    }
    std::string header = json::dump(std::move(root));
    // pad with spaces (JSON whitespace) so the data area starts 8-byte aligned, as the
    // reference writer does
    header.append((8 - header.size() % 8) % 8, ' ');
    encode_u64_le(header.size(), layout.prefix);
    layout.prefix += header;
    return layout;
}

std::size_t data_bytes(const Tensor& t) {
    return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
}

// Writes a file under a temporary name and renames it over the target only when it is whole.
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(const std::string& path)
        : path_(path), temp_path_(path + ".tmp." + std::to_string(::getpid())) {
        fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) fail_io("create the temporary file", temp_path_);
    }
    // Unless commit() succeeded, the temporary file goes away and the target is untouched.
    ~AtomicFileWriter() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(temp_path_.c_str());
    }
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, std::size_t count) {
        const char* in = static_cast<const char*>(data);
        while (count > 0) {
            const ssize_t put = ::write(fd_, in, count);
            if (put < 0 && errno == EINTR) continue;
            if (put < 0) fail_io("write", temp_path_);
            in += put;
            count -= static_cast<std::size_t>(put);
        }
    }

    void commit() {
        // the data must be on disk before the rename makes it visible under the real name
        if (::fsync(fd_) != 0) fail_io("flush", temp_path_);
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) fail_io("close", temp_path_);
        if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
            fail_io("rename the temporary file to", path_);
        committed_ = true;
        sync_directory();
    }

private:
    std::string path_, temp_path_;
    int fd_ = -1;
    bool committed_ = false;

    [[noreturn]] void fail_io(const char* action, const std::string& file) const {
        const int err = errno;  // first, before anything else can change it
        fail("save_safetensors: cannot ", action, " ", quote_name(file), ": ", std::strerror(err));
    }

    // Makes the rename itself durable. Best effort: some file systems cannot sync a directory,
    // and the file is already complete either way.
    void sync_directory() const {
        std::string dir = std::filesystem::path(path_).parent_path().string();
        if (dir.empty()) dir = ".";
        const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return;
        ::fsync(fd);
        ::close(fd);
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

SafetensorsContents parse_safetensors(std::string_view bytes, const std::string& source) {
    auto copy = [bytes](std::uint64_t offset, std::size_t count, void* dest) {
        std::memcpy(dest, bytes.data() + offset, count);
    };
    return load(ByteSource{source, bytes.size(), copy});
}

SafetensorsContents read_safetensors(const std::string& path) {
    InputFile file(path);
    auto read = [&file](std::uint64_t offset, std::size_t count, void* dest) {
        file.read_at(offset, count, dest);
    };
    return load(ByteSource{path, file.size(), read});
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
    return read_safetensors(path).tensors;
}

namespace {
// The same tensors, those on a GPU copied to the CPU: a file holds host bytes.
std::map<std::string, Tensor> on_cpu(const std::map<std::string, Tensor>& tensors) {
    std::map<std::string, Tensor> out;
    for (const auto& [name, t] : tensors) out[name] = t.defined() ? t.to(Device::cpu()) : t;
    return out;
}
}  // namespace

std::string serialize_safetensors(const std::map<std::string, Tensor>& gpu_or_cpu,
                                  const std::map<std::string, std::string>& metadata) {
    const std::map<std::string, Tensor> tensors = on_cpu(gpu_or_cpu);
    const Layout layout = plan_layout(tensors, metadata);
    std::string out = layout.prefix;
    for (const Tensor* t : layout.data_order)
        if (data_bytes(*t) > 0) out.append(static_cast<const char*>(t->raw_data()), data_bytes(*t));
    return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& gpu_or_cpu,
                      const std::map<std::string, std::string>& metadata) {
    const std::map<std::string, Tensor> tensors = on_cpu(gpu_or_cpu);
    const Layout layout = plan_layout(tensors, metadata);
    AtomicFileWriter file(path);
    file.write(layout.prefix.data(), layout.prefix.size());
    for (const Tensor* t : layout.data_order)
        if (data_bytes(*t) > 0) file.write(t->raw_data(), data_bytes(*t));
    file.commit();
}

}  // namespace retort
