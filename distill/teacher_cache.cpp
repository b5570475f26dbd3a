// distill/teacher_cache.cpp: the teacher-output cache's two kinds, its fingerprint, and the
// batch-level lookup (see teacher_cache.h).
#include "distill/teacher_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace retort {

namespace {

namespace fs = std::filesystem;

// ---- a 64-bit hash (non-cryptographic: a multiply-xorshift mix of 8-byte words) ----

constexpr std::uint64_t kHashSeed = 0x9e3779b97f4a7c15ull;

std::uint64_t mix(std::uint64_t h, std::uint64_t word) {
    h ^= word + kHashSeed + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t h = kHashSeed) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, bytes + i, 8);
        h = mix(h, word);
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes + i, size - i);
    return mix(mix(h, tail), size);
}

std::uint64_t hash_text(const std::string& text, std::uint64_t h) {
    return hash_bytes(text.data(), text.size(), h);
}

// ---- memory ----

class MemoryCache : public TeacherCache {
public:
    MemoryCache(std::uint64_t fingerprint, Layout layout, std::int64_t entries)
        : TeacherCache(Kind::memory, fingerprint, std::move(layout), entries),
          row_(this->layout().row_floats()),
          // new float[] leaves the memory untouched: the kernel maps pages as entries fill
          rows_(new float[static_cast<std::size_t>(entries * row_)]),
          filled_(static_cast<std::size_t>(entries), 0) {}

    bool read(std::int64_t key, float* row) override {
        check_key(key);
        if (!filled_[static_cast<std::size_t>(key)]) return false;
        std::memcpy(row, rows_.get() + key * row_, static_cast<std::size_t>(row_) * sizeof(float));
        return true;
    }
    void write(std::int64_t key, const float* row) override {
        check_key(key);
        std::memcpy(rows_.get() + key * row_, row, static_cast<std::size_t>(row_) * sizeof(float));
        if (!filled_[static_cast<std::size_t>(key)]) ++count_;
        filled_[static_cast<std::size_t>(key)] = 1;
    }
    std::int64_t filled() const override { return count_; }
    bool has(std::int64_t key) override {
        check_key(key);
        return filled_[static_cast<std::size_t>(key)] != 0;
    }

private:
    std::int64_t row_;
    std::unique_ptr<float[]> rows_;
    std::vector<unsigned char> filled_;
    std::int64_t count_ = 0;
};

// ---- file ----

constexpr char kMagic[8] = {'R', 'E', 'T', 'O', 'R', 'T', 'T', 'C'};
constexpr std::uint32_t kVersion = 1;
constexpr std::int64_t kHeaderBytes = 4096;
constexpr std::uint64_t kFilledBit = std::uint64_t{1} << 32;

// The header's fixed part; the layout's text follows it, zero-padded to kHeaderBytes.
struct FileHeader {
    char magic[8];
    std::uint32_t version;
    std::uint32_t header_bytes;
    std::uint64_t fingerprint;
    std::uint64_t entries;
    std::uint64_t row_floats;
};

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, const void* data, std::size_t size, std::int64_t offset, const std::string& path) {
    const auto* bytes = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::pwrite(fd, bytes, size, offset);
        if (n < 0 && errno == EINTR) continue;
        require(n > 0, "teacher cache: cannot write ", path, ": ", errno_text());
        bytes += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
}

// false at end of file (a short file is a corrupt one, handled by the caller).
bool read_all(int fd, void* data, std::size_t size, std::int64_t offset, const std::string& path) {
    auto* bytes = static_cast<char*>(data);
    while (size > 0) {
        const ssize_t n = ::pread(fd, bytes, size, offset);
        if (n < 0 && errno == EINTR) continue;
        require(n >= 0, "teacher cache: cannot read ", path, ": ", errno_text());
        if (n == 0) return false;
        bytes += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
    return true;
}

class FileCache : public TeacherCache {
public:
    FileCache(std::uint64_t fingerprint, Layout layout, std::int64_t entries, std::string path)
        : TeacherCache(Kind::file, fingerprint, std::move(layout), entries),
          path_(std::move(path)),
          row_bytes_(this->layout().row_floats() * static_cast<std::int64_t>(sizeof(float))) {
        data_offset_ = kHeaderBytes + round_up(entries * 8, 4096);
    }
    ~FileCache() override {
        if (fd_ >= 0) ::close(fd_);
    }

    std::int64_t file_bytes() const { return data_offset_ + entries() * row_bytes_; }

    // Opens an existing file; true when it is this cache (same header), which is then kept open.
    bool reuse() {
        const int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) return false;
        std::vector<char> header(kHeaderBytes, 0);
        struct stat st {};
        const bool same = ::fstat(fd, &st) == 0 && st.st_size == file_bytes() &&
                          read_all(fd, header.data(), header.size(), 0, path_) &&
                          header == make_header();
        if (!same) {
            ::close(fd);
            return false;
        }
        fd_ = fd;
        std::vector<std::uint64_t> status(static_cast<std::size_t>(entries()));
        require(read_all(fd_, status.data(), status.size() * 8, kHeaderBytes, path_),
                "teacher cache: ", path_, " is shorter than its header says");
        for (std::uint64_t s : status) count_ += (s & kFilledBit) ? 1 : 0;
        return true;
    }

    // Writes an empty cache (header, zero status words, a sparse data region) to a temporary
    // file, then renames it over `path`. Called at the first write, so that opening a cache
    // creates no file (a run directory must still be empty when the run starts).
    void create() {
        const std::string tmp = path_ + ".tmp";
        std::error_code ec;
        const fs::path parent = fs::path(path_).parent_path();
        if (!parent.empty()) fs::create_directories(parent, ec);
        const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        require(fd >= 0, "teacher cache: cannot create ", tmp, ": ", errno_text());
        try {
            const std::vector<char> header = make_header();
            write_all(fd, header.data(), header.size(), 0, tmp);
            require(::ftruncate(fd, file_bytes()) == 0, "teacher cache: cannot size ", tmp, " to ",
                    file_bytes(), " bytes: ", errno_text());
            require(::fsync(fd) == 0, "teacher cache: cannot sync ", tmp, ": ", errno_text());
        } catch (...) {
            ::close(fd);
            ::unlink(tmp.c_str());
            throw;
        }
        fs::rename(tmp, path_, ec);
        if (ec) {
            ::close(fd);
            ::unlink(tmp.c_str());
            fail("teacher cache: cannot rename ", tmp, " to ", path_, ": ", ec.message());
        }
        fd_ = fd;
    }

    bool read(std::int64_t key, float* row) override {
        check_key(key);
        if (fd_ < 0) return false;  // not created yet: empty
        std::uint64_t status = 0;
        require(read_all(fd_, &status, 8, kHeaderBytes + key * 8, path_), "teacher cache: ", path_,
                " was truncated");
        if (!(status & kFilledBit)) return false;
        require(read_all(fd_, row, static_cast<std::size_t>(row_bytes_), data_offset_ + key * row_bytes_,
                         path_),
                "teacher cache: ", path_, " was truncated");
        if (checksum(row) != (status & 0xffffffffull)) {  // a row torn by a crash: recompute it
            ++stats().torn;
            return false;
        }
        return true;
    }
    void write(std::int64_t key, const float* row) override {
        check_key(key);
        if (fd_ < 0) create();
        write_all(fd_, row, static_cast<std::size_t>(row_bytes_), data_offset_ + key * row_bytes_, path_);
        std::uint64_t status = 0;
        read_all(fd_, &status, 8, kHeaderBytes + key * 8, path_);
        if (!(status & kFilledBit)) ++count_;
        status = kFilledBit | checksum(row);
        write_all(fd_, &status, 8, kHeaderBytes + key * 8, path_);
    }
    std::int64_t filled() const override { return count_; }
    bool has(std::int64_t key) override {
        check_key(key);
        if (fd_ < 0) return false;
        std::uint64_t status = 0;
        require(read_all(fd_, &status, 8, kHeaderBytes + key * 8, path_), "teacher cache: ", path_,
                " was truncated");
        return (status & kFilledBit) != 0;
    }

private:
    static std::int64_t round_up(std::int64_t n, std::int64_t to) { return (n + to - 1) / to * to; }

    std::uint64_t checksum(const float* row) const {
        return hash_bytes(row, static_cast<std::size_t>(row_bytes_)) & 0xffffffffull;
    }

    std::vector<char> make_header() const {
        std::vector<char> header(kHeaderBytes, 0);
        FileHeader h{};
        std::memcpy(h.magic, kMagic, sizeof kMagic);
        h.version = kVersion;
        h.header_bytes = static_cast<std::uint32_t>(kHeaderBytes);
        h.fingerprint = fingerprint();
        h.entries = static_cast<std::uint64_t>(entries());
        h.row_floats = static_cast<std::uint64_t>(layout().row_floats());
        std::memcpy(header.data(), &h, sizeof h);
        const std::string text = layout().describe();
        std::memcpy(header.data() + sizeof h, text.data(),
                    std::min<std::size_t>(text.size(), header.size() - sizeof h - 1));
        return header;
    }

    std::string path_;
    std::int64_t row_bytes_;
    std::int64_t data_offset_ = 0;
    int fd_ = -1;
    std::int64_t count_ = 0;
};

// The last memory cache made in this process, kept for the next run with the same fingerprint
// (the seeds of a --seeds run).
std::mutex g_memory_mutex;
std::shared_ptr<TeacherCache> g_last_memory;

std::string gib_text(double bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
    return text;
}

}  // namespace

std::int64_t TeacherCache::Layout::row_floats() const {
    std::int64_t total = 0;
    for (const Shape& s : shapes) total += shape_numel(s);
    return total;
}

std::string TeacherCache::Layout::describe() const {
    std::string text;
    for (std::size_t i = 0; i < names.size(); ++i)
        text += cat(i ? ", " : "", names[i], " ", shape_str(shapes[i]));
    return text;
}

void TeacherCache::check_key(std::int64_t key) const {
    internal_check(key >= 0 && key < entries_, "teacher cache key out of range");
}

std::shared_ptr<TeacherCache> TeacherCache::open(Kind kind, const std::string& path,
                                                 double limit_bytes, std::uint64_t fingerprint,
                                                 const Layout& layout, std::int64_t entries,
                                                 std::string* note) {
    require(!layout.names.empty() && layout.names.size() == layout.shapes.size() && entries > 0,
            "teacher cache: nothing to cache");
    const double row_bytes = static_cast<double>(layout.row_floats()) * sizeof(float);
    const double total = row_bytes * static_cast<double>(entries);
    const std::string what = cat(entries, " entries of ", static_cast<std::int64_t>(row_bytes),
                                 " bytes (", layout.describe(), ")");
    require(total <= limit_bytes, "distill.teacher_cache: the teacher's outputs take ", gib_text(total),
            " (", what, "), more than distill.teacher_cache_limit_gib = ", gib_text(limit_bytes),
            "; raise the limit, cache fewer or smaller taps, or set distill.teacher_cache = off");
    std::string line;
    std::shared_ptr<TeacherCache> cache;
    if (kind == Kind::memory) {
        std::lock_guard<std::mutex> lock(g_memory_mutex);
        if (g_last_memory && g_last_memory->fingerprint() == fingerprint &&
            g_last_memory->layout() == layout && g_last_memory->entries() == entries) {
            cache = g_last_memory;
            line = cat("teacher cache: memory, reused (", cache->filled(), " of ", entries,
                       " entries filled)");
        } else {
            g_last_memory.reset();  // free the old one before allocating
            cache = std::make_shared<MemoryCache>(fingerprint, layout, entries);
            g_last_memory = cache;
            line = cat("teacher cache: memory, up to ", gib_text(total), " for ", what);
        }
    } else {
        require(!path.empty(), "distill.teacher_cache = file needs distill.teacher_cache_file");
        auto file = std::make_shared<FileCache>(fingerprint, layout, entries, path);
        if (file->reuse()) {
            line = cat("teacher cache: ", path, ", reused (", file->filled(), " of ", entries,
                       " entries filled)");
        } else {
            // the free space of the nearest existing folder on the way to the file
            std::error_code ec;
            fs::path parent = fs::absolute(path).parent_path();
            while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.parent_path())
                parent = parent.parent_path();
            const fs::space_info space = fs::space(parent, ec);
            require(ec || static_cast<double>(space.available) >= total, "distill.teacher_cache: ",
                    path, " would take up to ", gib_text(total), " but its disk has ",
                    gib_text(static_cast<double>(space.available)),
                    " free; set distill.teacher_cache_file elsewhere or teacher_cache = memory or off");
            const bool existed = fs::exists(path, ec);
            line = cat("teacher cache: ", path, existed ? ", made for another teacher, data or "
                                                          "transforms: started afresh"
                                                        : ", new",
                       "; up to ", gib_text(total), " for ", what);
        }
        cache = file;
    }
    if (note) *note = line;
    return cache;
}

std::uint64_t teacher_cache_fingerprint(const Model& teacher, const std::string& teacher_spec,
                                        const Dataset& train, const std::string& transforms,
                                        const TeacherCache::Layout& layout) {
    std::uint64_t h = hash_text("retort teacher cache 1", kHashSeed);
    h = hash_text(teacher_spec, h);
    for (const auto& [name, tensor] : teacher.state_dict()) {
        h = hash_text(name, h);
        h = hash_text(shape_str(tensor.shape()), h);
        h = hash_bytes(tensor.raw_data(), static_cast<std::size_t>(tensor.numel()) *
                                              dtype_size(tensor.dtype()), h);
    }
    h = hash_text(transforms, h);
    h = hash_text(layout.describe(), h);

    // Every sample of the underlying dataset: hashed one by one in parallel, then combined in
    // order, so the result does not depend on the thread count.
    const Dataset& root = train.root();
    std::vector<std::uint64_t> sample_hashes(static_cast<std::size_t>(root.size()));
    parallel_for(0, root.size(), 256, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const Sample s = root.get(i);
            std::uint64_t sh = hash_text(shape_str(s.image.shape()), kHashSeed);
            sh = hash_bytes(s.image.raw_data(),
                            static_cast<std::size_t>(s.image.numel()) * dtype_size(s.image.dtype()), sh);
            sample_hashes[static_cast<std::size_t>(i)] = mix(sh, static_cast<std::uint64_t>(s.label));
        }
    });
    h = hash_text(root.describe(), h);
    return hash_bytes(sample_hashes.data(), sample_hashes.size() * 8, h);
}

Tensor cached_teacher_forward(TeacherCache& cache, Model& teacher, const Batch& batch,
                              const Dataset& train, std::int64_t variants, Taps& taps,
                              const VariantMaker& make_variant) {
    const TeacherCache::Layout& layout = cache.layout();
    const auto B = static_cast<std::int64_t>(batch.indices.size());
    require(static_cast<std::int64_t>(batch.variants.size()) == B,
            "teacher cache: the batch does not say which transform variant each image is");

    // Outputs for the whole batch, filled row by row from the cache or the teacher.
    std::vector<Tensor> outputs;
    std::vector<std::int64_t> per_sample;
    for (const Shape& s : layout.shapes) {
        Shape full = s;
        full.insert(full.begin(), B);
        outputs.push_back(Tensor::empty(full));
        per_sample.push_back(shape_numel(s));
    }
    const std::int64_t row_floats = layout.row_floats();
    std::vector<float> row(static_cast<std::size_t>(row_floats));
    auto scatter_row = [&](std::int64_t b, const float* src) {
        for (std::size_t t = 0; t < outputs.size(); ++t) {
            std::memcpy(outputs[t].data<float>() + b * per_sample[t], src,
                        static_cast<std::size_t>(per_sample[t]) * sizeof(float));
            src += per_sample[t];
        }
    };

    std::vector<std::int64_t> keys(static_cast<std::size_t>(B)), missing;
    for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t variant = batch.variants[static_cast<std::size_t>(b)];
        internal_check(variant >= 0 && variant < variants, "teacher cache: variant out of range");
        keys[b] = train.root_index(batch.indices[static_cast<std::size_t>(b)]) * variants + variant;
        if (cache.read(keys[b], row.data())) {
            scatter_row(b, row.data());
            ++cache.stats().hits;
        } else {
            missing.push_back(b);
            ++cache.stats().misses;
        }
    }

    // What the teacher computes: the missed rows, and with make_variant the other variants of
    // their samples that the cache lacks.
    struct Job {
        std::int64_t key;
        std::int64_t batch_row;  // -1 for another variant's image
        Tensor image;            // (C, H, W) for another variant's image
    };
    std::vector<Job> jobs;
    for (std::int64_t b : missing) {
        jobs.push_back({keys[b], b, Tensor()});
        if (!make_variant) continue;
        const std::int64_t index = batch.indices[static_cast<std::size_t>(b)];
        const std::int64_t first_key = keys[b] - batch.variants[static_cast<std::size_t>(b)];
        for (std::int64_t v = 0; v < variants; ++v) {
            if (first_key + v == keys[b] || cache.has(first_key + v)) continue;
            jobs.push_back({first_key + v, -1, make_variant(index, v)});
            ++cache.stats().ahead;
        }
    }

    const Device device = batch.images.device();  // where the teacher runs; the cache is on the CPU
    if (!jobs.empty()) {
        // The jobs' images as one batch (the batch itself when every row missed and nothing more).
        Tensor images = batch.images;
        const auto M = static_cast<std::int64_t>(jobs.size());
        const bool whole_batch = M == B && static_cast<std::int64_t>(missing.size()) == B;
        if (!whole_batch) {
            Shape shape = batch.images.shape();
            shape[0] = M;
            images = Tensor::empty(shape);
            const Tensor host_images = batch.images.to(Device::cpu());
            const std::int64_t image_floats = batch.images.numel() / B;
            for (std::int64_t m = 0; m < M; ++m) {
                const Job& job = jobs[static_cast<std::size_t>(m)];
                const float* src = nullptr;
                if (job.batch_row >= 0) {
                    src = host_images.data<float>() + job.batch_row * image_floats;
                } else {
                    require(job.image.numel() == image_floats && job.image.dtype() == DType::f32,
                            "teacher cache: a variant of a sample has shape ",
                            shape_str(job.image.shape()), ", unlike the batch's images");
                    src = job.image.data<float>();
                }
                std::memcpy(images.data<float>() + m * image_floats, src,
                            static_cast<std::size_t>(image_floats) * sizeof(float));
            }
            images = images.to(device);
        }
        Taps computed(std::vector<std::string>(layout.names.begin() + 1, layout.names.end()));
        std::vector<Tensor> fresh;
        {
            NoGradGuard no_grad;
            fresh.push_back(teacher.forward(images, &computed));
        }
        for (std::size_t t = 1; t < layout.names.size(); ++t) fresh.push_back(computed.at(layout.names[t]));
        for (Tensor& f : fresh) f = f.to(Device::cpu());  // rows are written from host memory
        for (std::size_t t = 0; t < fresh.size(); ++t)
            require(fresh[t].dtype() == DType::f32 && fresh[t].numel() == M * per_sample[t],
                    "teacher cache: the teacher's ", layout.names[t], " has shape ",
                    shape_str(fresh[t].shape()), ", expected ", per_sample[t], " floats per sample");
        for (std::int64_t m = 0; m < M; ++m) {
            float* dst = row.data();
            for (std::size_t t = 0; t < fresh.size(); ++t) {
                std::memcpy(dst, fresh[t].data<float>() + m * per_sample[t],
                            static_cast<std::size_t>(per_sample[t]) * sizeof(float));
                dst += per_sample[t];
            }
            const Job& job = jobs[static_cast<std::size_t>(m)];
            cache.write(job.key, row.data());
            if (job.batch_row >= 0) scatter_row(job.batch_row, row.data());
        }
    }

    for (std::size_t t = 1; t < layout.names.size(); ++t) taps.put(layout.names[t], outputs[t].to(device));
    return outputs[0].to(device);
}

}  // namespace retort
