// distill/teacher_cache.h: the frozen teacher's outputs, computed once per training sample and
// input variant and reused in later epochs (`distill.teacher_cache = memory | file`).
//
// Why it is correct: the teacher is frozen and runs in eval mode, so its logits and taps depend
// only on its input image. When the training transforms can make only a few different images of
// a sample (deterministic steps, and flips: TransformPipeline::variants), the pair (sample,
// variant) names the input exactly, and the teacher needs to see each pair once. A random crop
// makes too many variants (81 offsets for padding 4) to ever fill a cache, so it is refused.
//
// Entries are keyed by the sample's index in the underlying dataset (Dataset::root_index), not in
// the training split, so runs whose validation split differs (the seeds of a --seeds run) share a
// cache. An entry is one row of floats: the teacher's logits (K) followed by each requested tap
// (its shape without the batch dimension), in the order of Layout.
//
// Invalidation: the cache carries a fingerprint of everything the outputs depend on: the teacher's
// spec and every byte of its weights, the dataset's samples and labels, the training transforms,
// the taps and their shapes. A file cache whose fingerprint differs is started afresh, so a new
// teacher, changed data or a changed transform can never be served stale outputs. (The hash is a
// 64-bit non-cryptographic one: it guards against mistakes, not against an adversary.)
//
// The two kinds:
//   memory  one block of entries in RAM (pages are touched only as entries fill). It outlives its
//           run within the process, so the seeds of `retort distill --seeds` reuse it.
//   file    a sparse file: a 4 KiB header (magic, version, fingerprint, the layout), a status word
//           per entry (filled flag + a checksum of the row), then the rows. A row is written
//           before its status word, and a row whose checksum does not match is treated as absent,
//           so a run killed mid-write never serves a torn entry. Reused across runs and resumes.
//           A new file is made (temporary file, then rename) when the first entry is written.
// Both refuse, before allocating anything, a cache larger than distill.teacher_cache_limit_gib,
// and the file kind one larger than the free space of its disk.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "models/model.h"

namespace retort {

class TeacherCache {
public:
    enum class Kind { memory, file };

    // What one entry holds: "logits" and the taps, each with its per-sample shape.
    struct Layout {
        std::vector<std::string> names;
        std::vector<Shape> shapes;
        std::int64_t row_floats() const;
        std::string describe() const;  // "logits (10), layer1 (16, 28, 28)"
        bool operator==(const Layout& other) const = default;
    };

    struct Stats {
        std::int64_t hits = 0, misses = 0;  // lookups of a batch's rows
        std::int64_t ahead = 0;  // entries computed for the other variants of a missed sample
        std::int64_t torn = 0;   // file rows failing their checksum (recomputed)
    };

    // A cache of `entries` rows (samples of the root dataset x variants). `kind`, `path` (file
    // only) and `limit_bytes` as configured. A file with the same fingerprint and layout is
    // reused; anything else at `path` is replaced (atomically, through a temporary file).
    // `note` receives one line for the console (what was opened or started).
    static std::shared_ptr<TeacherCache> open(Kind kind, const std::string& path,
                                              double limit_bytes, std::uint64_t fingerprint,
                                              const Layout& layout, std::int64_t entries,
                                              std::string* note = nullptr);
    virtual ~TeacherCache() = default;

    // Copies entry `key` into `row` (layout.row_floats() floats); false when it is absent.
    virtual bool read(std::int64_t key, float* row) = 0;
    virtual void write(std::int64_t key, const float* row) = 0;
    // Whether entry `key` is filled (a file's torn row still counts until it is read).
    virtual bool has(std::int64_t key) = 0;
    // How many entries are filled (file: counted when opened, then kept up to date).
    virtual std::int64_t filled() const = 0;

    const Layout& layout() const { return layout_; }
    std::uint64_t fingerprint() const { return fingerprint_; }
    std::int64_t entries() const { return entries_; }
    Kind kind() const { return kind_; }
    Stats& stats() { return stats_; }

protected:
    TeacherCache(Kind kind, std::uint64_t fingerprint, Layout layout, std::int64_t entries)
        : kind_(kind), fingerprint_(fingerprint), layout_(std::move(layout)), entries_(entries) {}
    void check_key(std::int64_t key) const;

private:
    Kind kind_;
    std::uint64_t fingerprint_;
    Layout layout_;
    std::int64_t entries_;
    Stats stats_;
};

// The fingerprint of the teacher's outputs on the training data (see the top of this file). Reads
// every sample of train.root() once (in parallel; its value does not depend on the thread count).
std::uint64_t teacher_cache_fingerprint(const Model& teacher, const std::string& teacher_spec,
                                        const Dataset& train, const std::string& transforms,
                                        const TeacherCache::Layout& layout);

// Makes the image of variant v of training sample i (the training transforms applied with the
// variant's choices; TransformPipeline::make_variant).
using VariantMaker = std::function<Tensor(std::int64_t index, std::int64_t variant)>;

// The teacher's logits and taps for a batch, served from the cache where it has them: the rows it
// lacks go through the teacher (eval mode, no graph) as one smaller batch and are stored. Keys
// are root_index * variants + variant. `taps` holds the names of layout.names[1..].
// Given `make_variant`, a missed sample's other variants go through the teacher in the same
// batch, so one epoch fills the cache (a flip would otherwise leave 1/2^e of it empty after e
// epochs). Needs batch.variants (an Error otherwise).
Tensor cached_teacher_forward(TeacherCache& cache, Model& teacher, const Batch& batch,
                              const Dataset& train, std::int64_t variants, Taps& taps,
                              const VariantMaker& make_variant = nullptr);

}  // namespace retort
