// data/synthetic.cpp: the seeded synthetic dataset (what it generates and why: synthetic.h).
// Shapes: samples (C, H, W) float32 in [0, 1]; prototypes (K, C, 4, 4) computed on demand.
//
// Philox keys: one 64-bit key per purpose (prototypes, labels, noise of each split), made by
// mixing the seed with the purpose, so the streams never share counters. Within a stream, element
// j of sample i uses counter block i * blocks_per_sample + j / 4, as engine/random.cpp does.
#include "data/synthetic.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <vector>

#include "engine/error.h"
#include "engine/math/philox.h"

namespace retort {

namespace {

constexpr std::int64_t kGrid = 4;  // prototype cells per side

// SplitMix64's finalizer: nearby seeds and purposes give unrelated keys.
std::uint64_t mix(std::uint64_t seed, std::uint64_t purpose) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (purpose + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

enum Purpose : std::uint64_t {
    kPrototypes = 1,
    kTrainLabels,
    kTrainNoise,
    kTestLabels,
    kTestNoise
};

struct SpecKey {
    const char* name;
    std::int64_t SyntheticOptions::*field;
    std::int64_t min, max;
};

constexpr SpecKey kSpecKeys[] = {
    {"num_classes", &SyntheticOptions::num_classes, 2, 1000},
    {"size", &SyntheticOptions::size, 1, 1'000'000'000},
    {"test_size", &SyntheticOptions::test_size, 1, 1'000'000'000},
    {"channels", &SyntheticOptions::channels, 1, 4},
    {"height", &SyntheticOptions::height, 1, 4096},
    {"width", &SyntheticOptions::width, 1, 4096},
};

std::string valid_keys() {
    std::string list;
    for (const SpecKey& k : kSpecKeys) list += (list.empty() ? "" : ", ") + std::string(k.name);
    return list;
}

std::string trim(const std::string& s) {
    const auto begin = s.find_first_not_of(" \t");
    if (begin == std::string::npos) return "";
    return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

void set_key(SyntheticOptions& options, const std::string& spec, const std::string& key,
             const std::string& value) {
    const SpecKey* found = nullptr;
    for (const SpecKey& k : kSpecKeys)
        if (key == k.name) found = &k;
    if (!found)
        fail("synthetic spec '", spec, "': unknown key '", key, "'; valid keys: ", valid_keys());
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(value.c_str(), &end, 10);
    require(!value.empty() && *end == '\0' && errno == 0, "synthetic spec '", spec, "': key '", key,
            "' must be an integer, got '", value, "'");
    require(x >= found->min && x <= found->max, "synthetic spec '", spec, "': key '", key,
            "' must be in [", found->min, ", ", found->max, "], got ", x);
    options.*(found->field) = x;
}

}  // namespace

bool is_synthetic_spec(const std::string& text) {
    return text == "synthetic" || text.starts_with("synthetic:");
}

SyntheticOptions parse_synthetic_spec(const std::string& spec) {
    require(is_synthetic_spec(spec), "synthetic spec '", spec,
            "' must be 'synthetic' or 'synthetic:key=value,...' (keys: ", valid_keys(), ")");
    SyntheticOptions options;
    if (spec == "synthetic") return options;
    std::map<std::string, bool> seen;
    std::string rest = spec.substr(spec.find(':') + 1);
    std::size_t pos = 0;
    while (pos <= rest.size()) {
        const std::size_t comma = std::min(rest.find(',', pos), rest.size());
        const std::string item = trim(rest.substr(pos, comma - pos));
        pos = comma + 1;
        if (item.empty()) continue;  // "synthetic:" or a trailing comma
        const std::size_t eq = item.find('=');
        require(eq != std::string::npos, "synthetic spec '", spec, "': '", item,
                "' is not key=value");
        const std::string key = trim(item.substr(0, eq));
        require(!seen[key], "synthetic spec '", spec, "': key '", key, "' is given twice");
        seen[key] = true;
        set_key(options, spec, key, trim(item.substr(eq + 1)));
    }
    return options;
}

SyntheticDataset::SyntheticDataset(const SyntheticOptions& options, std::uint64_t seed,
                                   const std::string& split)
    : options_(options) {
    require(split == "train" || split == "test", "synthetic dataset: split must be 'train' or ",
            "'test', got '", split, "'");
    const bool train = split == "train";
    size_ = train ? options.size : options.test_size;
    prototype_key_ = mix(seed, kPrototypes);
    label_key_ = mix(seed, train ? kTrainLabels : kTestLabels);
    noise_key_ = mix(seed, train ? kTrainNoise : kTestNoise);
    description_ = cat("synthetic ", split, ": ", size_, " images ", shape_str(image_shape()), ", ",
                       options.num_classes, " classes, seed ", seed);
}

std::vector<float> SyntheticDataset::prototype(std::int64_t label) const {
    std::vector<float> cells(static_cast<std::size_t>(options_.channels * kGrid * kGrid));
    const std::uint64_t first = static_cast<std::uint64_t>(label) * cells.size();
    for (std::size_t k = 0; k < cells.size(); ++k)
        cells[k] = philox::uniform_float(philox::bits(prototype_key_, 0, first + k));
    return cells;
}

Sample SyntheticDataset::get(std::int64_t index) const {
    check_sample_index(index, size_, description_);
    const std::uint64_t i = static_cast<std::uint64_t>(index);
    const std::int64_t label = static_cast<std::int64_t>(
        philox::bits(label_key_, 0, i) % static_cast<std::uint64_t>(options_.num_classes));
    const std::vector<float> cells = prototype(label);  // (C, 4, 4)

    Tensor image = Tensor::empty(image_shape(), DType::f32);
    float* out = image.data<float>();
    const std::int64_t C = options_.channels, H = options_.height, W = options_.width;
    const std::uint64_t first_block = i * static_cast<std::uint64_t>((C * H * W + 3) / 4);
    philox::Block block{};
    std::int64_t j = 0;  // element index in the sample: (c * H + y) * W + x
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t y = 0; y < H; ++y)
            for (std::int64_t x = 0; x < W; ++x, ++j) {
                if (j % 4 == 0) block = philox::block_at(noise_key_, first_block + j / 4);
                const double noise = philox::normal_from_block(block, static_cast<int>(j % 4));
                const float cell = cells[((c * kGrid) + y * kGrid / H) * kGrid + x * kGrid / W];
                out[j] = static_cast<float>(std::clamp(0.2 + 0.6 * cell + 0.15 * noise, 0.0, 1.0));
            }
    return {image, label};
}

}  // namespace retort
