// tests/test_teacher_cache.cpp: the teacher-output cache: transforms that number their variants,
// the loader's variants and the root index of a split, both kinds of cache (round trip, limits,
// a file reused, replaced when its fingerprint changes, a torn row recomputed), the fingerprint's
// sensitivity, the batch lookup against the plain teacher, and `retort distill` with a cache
// giving the run of the uncached teacher.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/loader.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "distill/checkpoint.h"
#include "distill/teacher_cache.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/gradcheck.h"

using namespace retort;
namespace fs = std::filesystem;
using retort::testing::CliRun;
using retort::testing::run_retort;
using retort::testing::TempDir;
using retort::testing::max_abs_diff;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() &&
           std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

TeacherCache::Layout small_layout() {
    TeacherCache::Layout layout;
    layout.names = {"logits", "layer1"};
    layout.shapes = {{3}, {2, 2}};
    return layout;
}

std::vector<float> row_of(float base) {
    std::vector<float> row(7);
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = base + static_cast<float>(i);
    return row;
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::shared_ptr<const Dataset> synthetic_set(std::int64_t size) {
    SyntheticOptions o;
    o.size = size;
    o.num_classes = 4;
    o.channels = 1;
    o.height = 8;
    o.width = 8;
    return std::make_shared<SyntheticDataset>(o, 1, "train");
}

// Image i of a batch, (C, H, W).
Tensor batch_image(const Batch& batch, std::int64_t i) {
    Shape shape = batch.images.shape();
    const Tensor one = narrow(batch.images, 0, i, 1);
    shape.erase(shape.begin());
    return one.reshape(shape);
}

}  // namespace

TEST_CASE("transforms number their variants: deterministic steps 1, flip 2, random crops too many") {
    CHECK(TransformPipeline("").variants() == 1);
    CHECK(TransformPipeline("normalize; resize:size=4; center_crop:size=4; repeat_channels").variants() == 1);
    CHECK(TransformPipeline("flip; normalize").variants() == 2);
    CHECK(TransformPipeline("flip; flip").variants() == 4);
    CHECK(TransformPipeline("flip:p=1").variants() == 1);
    CHECK(TransformPipeline("flip:p=0").variants() == 1);
    CHECK(TransformPipeline("random_crop:padding=1; flip").variants() == 0);
    CHECK(TransformPipeline("random_resized_crop").variants() == 0);

    // apply_variant makes the image apply makes, and says whether it flipped.
    const TransformPipeline flip("flip; normalize:mean=0.5,std=0.25");
    const TransformPipeline normalize("normalize:mean=0.5,std=0.25");
    const Tensor image = rand({1, 3, 5});
    int seen[2] = {0, 0};
    for (std::uint64_t index = 0; index < 32; ++index) {
        SampleRng a = SampleRng::for_sample(7, 1, index), b = SampleRng::for_sample(7, 1, index),
                  c = SampleRng::for_sample(0, 0, 0);
        std::int64_t variant = -1;
        const Tensor made = flip.apply_variant(image, a, variant);
        REQUIRE((variant == 0 || variant == 1));
        ++seen[variant];
        CHECK(same_bits(made, flip.apply(image, b)));
        const Tensor expected = normalize.apply(variant ? flip_image(image) : image, c);
        CHECK(same_bits(made, expected));
        CHECK(same_bits(flip.make_variant(image, variant), made));
    }
    // Two flips: variant = first * 2 + second; 3 is flipped twice, the original image.
    const TransformPipeline two("flip; flip");
    CHECK(same_bits(two.make_variant(image, 3), image));
    CHECK(same_bits(two.make_variant(image, 2), flip_image(image)));
    CHECK(same_bits(TransformPipeline("flip:p=1").make_variant(image, 0), flip_image(image)));
    CHECK_THROWS_WITH_AS(two.make_variant(image, 4), doctest::Contains("no variant 4 (they make 4)"),
                         Error);
    CHECK(seen[0] > 0);
    CHECK(seen[1] > 0);
    SampleRng rng = SampleRng::for_sample(7, 1, 0);
    std::int64_t variant = 0;
    CHECK_THROWS_WITH_AS(TransformPipeline("random_crop:padding=1").apply_variant(image, rng, variant),
                         doctest::Contains("make too many different images to number them"),
                         Error);
}

TEST_CASE("the loader says which variant each image is, and a split maps its samples to the root") {
    const std::shared_ptr<const Dataset> data = synthetic_set(40);
    LoaderOptions o;
    o.batch_size = 16;
    o.workers = 0;
    o.seed = 3;
    o.transforms = "flip";
    DataLoader loader(data, o);
    loader.start_epoch(0);
    Batch batch;
    REQUIRE(loader.next(batch));
    REQUIRE(batch.variants.size() == 16);
    for (std::size_t i = 0; i < 16; ++i) {
        const Tensor original = data->get(batch.indices[i]).image;
        const Tensor image = batch_image(batch, static_cast<std::int64_t>(i));
        CHECK(same_bits(image, batch.variants[i] ? flip_image(original) : original));
    }
    o.transforms = "random_crop:padding=1; flip";
    DataLoader cropping(data, o);
    cropping.start_epoch(0);
    REQUIRE(cropping.next(batch));
    CHECK(batch.variants.empty());

    auto [train, val] = split_off_validation(data, 10, 5);
    CHECK(&train->root() == data.get());
    std::set<std::int64_t> roots;
    for (std::int64_t i = 0; i < train->size(); ++i) {
        const std::int64_t r = train->root_index(i);
        CHECK(same_bits(train->get(i).image, data->get(r).image));
        roots.insert(r);
    }
    for (std::int64_t i = 0; i < val->size(); ++i) CHECK(roots.count(val->root_index(i)) == 0);
    CHECK(roots.size() == 30);
}

TEST_CASE("teacher cache in memory: rows round-trip, absent rows say so, limits refuse before allocating") {
    auto cache = TeacherCache::open(TeacherCache::Kind::memory, "", kGiB, 42, small_layout(), 10);
    std::vector<float> row(7);
    CHECK_FALSE(cache->read(3, row.data()));
    cache->write(3, row_of(1).data());
    cache->write(9, row_of(5).data());
    REQUIRE(cache->read(3, row.data()));
    CHECK(row == row_of(1));
    REQUIRE(cache->read(9, row.data()));
    CHECK(row == row_of(5));
    CHECK(cache->filled() == 2);

    // The same fingerprint and layout in the same process: the entries are still there.
    auto again = TeacherCache::open(TeacherCache::Kind::memory, "", kGiB, 42, small_layout(), 10);
    CHECK(again.get() == cache.get());
    auto other = TeacherCache::open(TeacherCache::Kind::memory, "", kGiB, 43, small_layout(), 10);
    CHECK(other->filled() == 0);

    // A trillion entries would be 28 TB: refused with the numbers, nothing allocated.
    CHECK_THROWS_WITH_AS(
        TeacherCache::open(TeacherCache::Kind::memory, "", 8 * kGiB, 1, small_layout(), 1'000'000'000'000),
        doctest::Contains("more than distill.teacher_cache_limit_gib = 8.00 GiB"), Error);
}

TEST_CASE("teacher cache in a file: reused with the same fingerprint, started afresh otherwise, torn rows recomputed") {
    TempDir dir;
    const std::string path = dir / "cache.bin";
    std::string note;
    {
        auto cache = TeacherCache::open(TeacherCache::Kind::file, path, kGiB, 42, small_layout(), 10, &note);
        CHECK(note.find(", new") != std::string::npos);
        cache->write(0, row_of(2).data());
        cache->write(7, row_of(3).data());
        cache->write(7, row_of(4).data());  // overwritten, still one entry
        CHECK(cache->filled() == 2);
    }
    std::vector<float> row(7);
    {
        auto cache = TeacherCache::open(TeacherCache::Kind::file, path, kGiB, 42, small_layout(), 10, &note);
        CHECK(note.find("reused (2 of 10 entries filled)") != std::string::npos);
        REQUIRE(cache->read(7, row.data()));
        CHECK(row == row_of(4));
        REQUIRE(cache->read(0, row.data()));
        CHECK(row == row_of(2));
        CHECK_FALSE(cache->read(1, row.data()));
    }
    {
        // A byte of row 7 changes on disk (a crash mid-write): the row is absent, not served.
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        const std::int64_t data_offset = 4096 + 4096;  // header, then the status words' page
        f.seekp(data_offset + 7 * 7 * 4 + 5);
        f.put('\x7f');
    }
    {
        auto cache = TeacherCache::open(TeacherCache::Kind::file, path, kGiB, 42, small_layout(), 10);
        CHECK_FALSE(cache->read(7, row.data()));
        CHECK(cache->stats().torn == 1);
        CHECK(cache->read(0, row.data()));
    }
    // Another fingerprint (another teacher, data or transforms): the file starts afresh.
    {
        auto cache = TeacherCache::open(TeacherCache::Kind::file, path, kGiB, 99, small_layout(), 10, &note);
        CHECK(note.find("started afresh") != std::string::npos);
        CHECK(cache->filled() == 0);
        CHECK_FALSE(cache->read(0, row.data()));
        cache->write(1, row_of(6).data());  // the new file replaces the old one here
    }
    {
        auto cache = TeacherCache::open(TeacherCache::Kind::file, path, kGiB, 99, small_layout(), 10, &note);
        CHECK(note.find("reused (1 of 10 entries filled)") != std::string::npos);
    }
    // A truncated file is not reused.
    fs::resize_file(path, 5000);
    {
        auto cache = TeacherCache::open(TeacherCache::Kind::file, path, kGiB, 99, small_layout(), 10, &note);
        CHECK(note.find("started afresh") != std::string::npos);
        CHECK_FALSE(cache->read(1, row.data()));
        cache->write(2, row_of(6).data());
        CHECK(fs::file_size(path) > 5000);
    }
    CHECK_FALSE(fs::exists(path + ".tmp"));
    CHECK_THROWS_WITH_AS(TeacherCache::open(TeacherCache::Kind::file, dir / "big.bin", 0.5 * kGiB, 1,
                                            small_layout(), 100'000'000),
                         doctest::Contains("more than distill.teacher_cache_limit_gib"), Error);
    CHECK_FALSE(fs::exists(dir / "big.bin"));
}

TEST_CASE("the cache's fingerprint changes with the teacher's weights, the data, the transforms and the taps") {
    manual_seed(1);
    std::shared_ptr<Model> teacher = create_model("resnet8:in_chans=1,num_classes=4");
    const std::shared_ptr<const Dataset> data = synthetic_set(24);
    const TeacherCache::Layout layout = small_layout();
    const std::uint64_t base = teacher_cache_fingerprint(*teacher, "resnet8", *data, "flip", layout);
    CHECK(base == teacher_cache_fingerprint(*teacher, "resnet8", *data, "flip", layout));
    CHECK(base != teacher_cache_fingerprint(*teacher, "resnet8", *data, "flip:p=0.4", layout));
    CHECK(base != teacher_cache_fingerprint(*teacher, "resnet8", *synthetic_set(25), "flip", layout));
    TeacherCache::Layout more = layout;
    more.names.push_back("layer2");
    more.shapes.push_back({1});
    CHECK(base != teacher_cache_fingerprint(*teacher, "resnet8", *data, "flip", more));
    // one weight nudged
    Tensor w = teacher->state_dict().front().second;
    w.data<float>()[0] += 1e-3f;
    CHECK(base != teacher_cache_fingerprint(*teacher, "resnet8", *data, "flip", layout));
    // the same samples through a split: same root, same fingerprint
    auto [train, val] = split_off_validation(data, 4, 9);
    const std::uint64_t nudged = teacher_cache_fingerprint(*teacher, "resnet8", *data, "flip", layout);
    CHECK(nudged == teacher_cache_fingerprint(*teacher, "resnet8", *train, "flip", layout));
}

TEST_CASE("the cached teacher gives the plain teacher's logits and taps, computing each entry once") {
  for (const bool ahead : {false, true}) {
    CAPTURE(ahead);
    manual_seed(2);
    std::shared_ptr<Model> teacher = create_model("resnet8:in_chans=1,num_classes=4");
    teacher->eval();
    const std::shared_ptr<const Dataset> data = synthetic_set(48);
    TeacherCache::Layout layout;
    layout.names = {"logits", "layer2"};
    layout.shapes = {{4}, {32, 4, 4}};
    auto cache = TeacherCache::open(TeacherCache::Kind::memory, "", kGiB, ahead ? 8 : 7, layout, 48 * 2);
    const TransformPipeline transforms("flip");
    VariantMaker make_variant = nullptr;
    if (ahead)
        make_variant = [&](std::int64_t index, std::int64_t variant) {
            return transforms.make_variant(data->get(index).image, variant);
        };
    LoaderOptions o;
    o.batch_size = 16;
    o.workers = 0;
    o.transforms = "flip";
    DataLoader loader(data, o);
    for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
        loader.start_epoch(epoch);
        Batch batch;
        while (loader.next(batch)) {
            Taps plain_taps({"layer2"}), cached_taps({"layer2"});
            Tensor plain;
            {
                NoGradGuard no_grad;
                plain = teacher->forward(batch.images, &plain_taps);
            }
            const Tensor cached =
                cached_teacher_forward(*cache, *teacher, batch, *data, 2, cached_taps, make_variant);
            CHECK(max_abs_diff(cached, plain) <= 1e-6);
            CHECK(max_abs_diff(cached_taps.at("layer2"), plain_taps.at("layer2")) <= 1e-6);
        }
    }
    // 3 epochs x 48 lookups; each (sample, variant) computed once.
    CHECK(cache->stats().hits + cache->stats().misses == 144);
    CHECK(cache->stats().misses + cache->stats().ahead == cache->filled());
    if (ahead) {
        // the first epoch computes both variants of every sample; later epochs only hit
        CHECK(cache->stats().misses == 48);
        CHECK(cache->stats().ahead == 48);
        CHECK(cache->filled() == 96);
    } else {
        CHECK(cache->filled() <= 96);
        CHECK(cache->stats().hits >= 48);
    }
  }
}

TEST_CASE("retort distill with a teacher cache trains as without one, and refuses what it cannot cache") {
    TempDir dir;
    const char* data = "synthetic:num_classes=4,size=96,test_size=32,channels=1,height=8,width=8";
    auto config = [&](const std::string& transforms, const std::string& extra) {
        return cat("[model]\nspec = resnet8:in_chans=1,num_classes=4\n[data]\npath = ", data,
                   "\nval_size = 16\nbatch_size = 16\nworkers = 0\ntrain_transforms = \"", transforms,
                   "\"\n[optim]\nlr = 0.05\n[run]\nepochs = 2\nlog_every = 2\nthreads = 1\n"
                   "[distill]\nteacher = resnet14:in_chans=1,num_classes=4\nteacher_weights = ",
                   dir / "teacher.safetensors", "\nobjectives = ce:0.5, kd:0.5, at:100\n", extra);
    };
    manual_seed(5);
    save_weights(dir / "teacher.safetensors", *create_model("resnet14:in_chans=1,num_classes=4"),
                 {{"model", "resnet14:in_chans=1,num_classes=4"}});

    write_file(dir / "off.cfg", config("flip", ""));
    write_file(dir / "memory.cfg", config("flip", "teacher_cache = memory\n"));
    write_file(dir / "file.cfg", config("flip", "teacher_cache = file\n"));
    CliRun off = run_retort("distill --config " + (dir / "off.cfg") + " --out " + (dir / "off"));
    REQUIRE_MESSAGE(off.status == 0, off.output);
    CliRun memory = run_retort("distill --config " + (dir / "memory.cfg") + " --out " + (dir / "memory"));
    REQUIRE_MESSAGE(memory.status == 0, memory.output);
    CHECK(memory.output.find("teacher cache: memory") != std::string::npos);
    CliRun file = run_retort("distill --config " + (dir / "file.cfg") + " --out " + (dir / "file"));
    REQUIRE_MESSAGE(file.status == 0, file.output);
    CHECK(fs::exists(dir / "file/teacher-cache.bin"));

    // The same losses and accuracies, row by row (the seconds column aside).
    auto without_seconds = [](const std::string& path) {
        std::istringstream in(read_text(path));
        std::string line, out;
        while (std::getline(in, line)) {
            std::vector<std::string> fields;
            std::stringstream cells(line);
            std::string cell;
            while (std::getline(cells, cell, ',')) fields.push_back(cell);
            if (fields.size() > 7) fields.erase(fields.begin() + 7);
            for (const std::string& f : fields) out += f + ",";
            out += "\n";
        }
        return out;
    };
    const std::string expected = without_seconds(dir / "off/metrics.csv");
    CHECK(without_seconds(dir / "memory/metrics.csv") == expected);
    CHECK(without_seconds(dir / "file/metrics.csv") == expected);

    // A second run reuses the file.
    write_file(dir / "file2.cfg", config("flip", cat("teacher_cache = file\nteacher_cache_file = ",
                                                     dir / "file/teacher-cache.bin", "\n")));
    CliRun reuse = run_retort("distill --config " + (dir / "file2.cfg") + " --out " + (dir / "file2"));
    REQUIRE_MESSAGE(reuse.status == 0, reuse.output);
    CHECK(reuse.output.find("reused") != std::string::npos);
    CHECK(without_seconds(dir / "file2/metrics.csv") == expected);

    write_file(dir / "crop.cfg", config("random_crop:padding=1; flip", "teacher_cache = memory\n"));
    CliRun crop = run_retort("distill --config " + (dir / "crop.cfg") + " --out " + (dir / "crop"));
    CHECK(crop.status != 0);
    CHECK(crop.output.find("makes too many to cache (a random crop?)") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "crop"));

    // No objective reads the teacher (a student trained alone through the same command): the
    // teacher is not run, so there is nothing to cache, even under a random crop.
    std::string alone = config("random_crop:padding=1; flip", "teacher_cache = file\n");
    const std::string objectives = "objectives = ce:0.5, kd:0.5, at:100";
    alone.replace(alone.find(objectives), objectives.size(), "objectives = ce:1");
    write_file(dir / "alone.cfg", alone);
    CliRun student = run_retort("distill --config " + (dir / "alone.cfg") + " --out " + (dir / "alone"));
    REQUIRE_MESSAGE(student.status == 0, student.output);
    CHECK(student.output.find("teacher: not run during training (no objective reads its logits or taps)") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(dir / "alone/teacher-cache.bin"));

    write_file(dir / "small.cfg", config("flip", "teacher_cache = memory\nteacher_cache_limit_gib = 0.001\n"));
    CliRun small = run_retort("distill --config " + (dir / "small.cfg") + " --out " + (dir / "small"));
    CHECK(small.status != 0);
    CHECK(small.output.find("more than distill.teacher_cache_limit_gib") != std::string::npos);
}
