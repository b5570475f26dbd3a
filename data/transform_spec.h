// data/transform_spec.h: the text form of transforms, shared by the per-sample and batch ones.
//
//   spec  := item (';' item)*          whitespace around any part is ignored; empty items too
//   item  := name | name ':' key '=' value (',' key '=' value)*
//   value := a number, a list "a/b/c" (per channel, or a range "low/high"), or a size "N" / "HxW"
// e.g. "random_crop:padding=4; flip; normalize:mean=0.4914/0.4822/0.4465,std=0.247/0.243/0.261".
// Lists use '/' because ',' already separates keys. SpecKeys reads the values of one item with
// range checks; every mistake is a retort::Error that names the transform, the key and what is
// valid.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace retort {

struct SpecItem {
    std::string name;
    std::vector<std::pair<std::string, std::string>> values;  // in the order written
};

// "a, b, c" from {"a", "b", "c"} and ", ": how lists of valid names appear in messages.
std::string join_words(const std::vector<std::string>& words, const std::string& separator);

// Splits a spec into its items; `what` names the option in messages ("transforms").
std::vector<SpecItem> parse_spec_list(const std::string& spec, const std::string& what);

// The largest size a spec may ask for: the limits of the images retort decodes
// (data/image_folder.h), so that no transform can be told to make an image larger than any input
// could be. A typo such as resize:size=1000000 (4 TB of pixels) is refused when the spec is read.
inline constexpr std::int64_t kMaxSpecSide = 16384;          // pixels, height or width
inline constexpr std::int64_t kMaxSpecPixels = 64ll << 20;   // height * width (N * N for "N")

// A size as written: "N" (single) or "HxW".
struct SizeValue {
    std::int64_t height = 0, width = 0;
    bool single = false;  // written as one number (its meaning depends on the transform)
};

// Typed access to the values of one item. The constructor rejects keys that are not in
// `valid_keys` (listing the valid ones) and keys given twice.
class SpecKeys {
public:
    SpecKeys(const SpecItem& item, const std::vector<std::string>& valid_keys);
    bool has(const std::string& key) const { return values_.count(key) > 0; }
    double number(const std::string& key, double fallback, double min, double max) const;
    std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                         std::int64_t max) const;
    // "a/b/c": numbers in [min, max]; `fallback` when the key is absent.
    std::vector<double> numbers(const std::string& key, std::vector<double> fallback, double min,
                                double max) const;
    // "low/high" with low <= high, both in [min, max].
    std::array<double, 2> range(const std::string& key, std::array<double, 2> fallback, double min,
                                double max) const;
    SizeValue size(const std::string& key) const;  // the key must be present (see has())

private:
    const std::string& raw(const std::string& key) const;
    std::string name_;
    std::map<std::string, std::string> values_;
};

}  // namespace retort
