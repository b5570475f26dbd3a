// data/transform_spec.cpp: parsing "name:key=value,...; name" lists and reading typed values.
#include "data/transform_spec.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "engine/error.h"

namespace retort {

namespace {
std::string trim(const std::string& s) {
    const std::size_t b = s.find_first_not_of(" \t\n\r"), e = s.find_last_not_of(" \t\n\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char separator) {
    std::vector<std::string> parts;
    std::size_t begin = 0;
    for (;;) {
        const std::size_t end = s.find(separator, begin);
        parts.push_back(trim(s.substr(begin, end == std::string::npos ? std::string::npos : end - begin)));
        if (end == std::string::npos) return parts;
        begin = end + 1;
    }
}

// The whole string as a finite number, or false.
bool to_number(const std::string& text, double& out) {
    if (text.empty()) return false;
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return *end == '\0' && std::isfinite(out);
}
}  // namespace

std::string join_words(const std::vector<std::string>& words, const std::string& separator) {
    std::string out;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i > 0) out += separator;
        out += words[i];
    }
    return out;
}

std::vector<SpecItem> parse_spec_list(const std::string& spec, const std::string& what) {
    std::vector<SpecItem> items;
    for (const std::string& text : split(spec, ';')) {
        if (text.empty()) continue;  // "a;;b" and a trailing ';' are harmless
        SpecItem item;
        const std::size_t colon = text.find(':');
        item.name = trim(text.substr(0, colon));
        require(!item.name.empty(), what, " '", spec, "': '", text, "' has no name before the ':'");
        if (colon != std::string::npos) {
            for (const std::string& pair : split(text.substr(colon + 1), ',')) {
                if (pair.empty()) continue;  // "crop:" or "crop:size=3,"
                const std::size_t eq = pair.find('=');
                require(eq != std::string::npos, what, " '", spec, "': '", pair,
                        "' in transform '", item.name, "' is not key=value");
                std::string key = trim(pair.substr(0, eq)), value = trim(pair.substr(eq + 1));
                require(!key.empty(), what, " '", spec, "': a key is missing in '", pair, "'");
                require(!value.empty(), what, " '", spec, "': key '", key, "' of transform '",
                        item.name, "' has no value");
                item.values.emplace_back(std::move(key), std::move(value));
            }
        }
        items.push_back(std::move(item));
    }
    return items;
}

SpecKeys::SpecKeys(const SpecItem& item, const std::vector<std::string>& valid_keys)
    : name_(item.name) {
    for (const auto& [key, value] : item.values) {
        bool known = false;
        for (const std::string& k : valid_keys) known = known || k == key;
        require(known, "transform '", name_, "' has no key '", key, "'; valid keys: ",
                join_words(valid_keys, ", "));
        require(values_.emplace(key, value).second, "transform '", name_, "': key '", key,
                "' is given twice");
    }
}

const std::string& SpecKeys::raw(const std::string& key) const { return values_.at(key); }

double SpecKeys::number(const std::string& key, double fallback, double min, double max) const {
    if (!has(key)) return fallback;
    double x = 0;
    require(to_number(raw(key), x) && x >= min && x <= max, "transform '", name_, "': key '", key,
            "' must be a number in [", min, ", ", max, "], got '", raw(key), "'");
    return x;
}

std::int64_t SpecKeys::integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) const {
    if (!has(key)) return fallback;
    const std::string& text = raw(key);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(text.c_str(), &end, 10);
    require(*end == '\0' && errno == 0 && x >= min && x <= max, "transform '", name_, "': key '",
            key, "' must be an integer in [", min, ", ", max, "], got '", text, "'");
    return x;
}

std::vector<double> SpecKeys::numbers(const std::string& key, std::vector<double> fallback,
                                      double min, double max) const {
    if (!has(key)) return fallback;
    std::vector<double> out;
    for (const std::string& part : split(raw(key), '/')) {
        double x = 0;
        require(to_number(part, x) && x >= min && x <= max, "transform '", name_, "': key '", key,
                "' must be numbers in [", min, ", ", max, "] separated by '/', got '", raw(key), "'");
        out.push_back(x);
    }
    return out;
}

std::array<double, 2> SpecKeys::range(const std::string& key, std::array<double, 2> fallback,
                                      double min, double max) const {
    if (!has(key)) return fallback;
    const std::vector<double> v = numbers(key, {}, min, max);
    require(v.size() == 2 && v[0] <= v[1], "transform '", name_, "': key '", key,
            "' must be a range low/high with low <= high, got '", raw(key), "'");
    return {v[0], v[1]};
}

SizeValue SpecKeys::size(const std::string& key) const {
    const std::string& text = raw(key);
    const std::vector<std::string> parts = split(text, 'x');
    require(parts.size() <= 2, "transform '", name_, "': key '", key,
            "' must be a size N or HxW, got '", text, "'");
    std::vector<std::int64_t> sides;
    for (const std::string& part : parts) {
        char* end = nullptr;
        errno = 0;
        const long long x = part.empty() ? 0 : std::strtoll(part.c_str(), &end, 10);
        require(!part.empty() && *end == '\0' && errno == 0 && x >= 1,
                "transform '", name_, "': key '", key,
                "' must be a size N or HxW of positive integers, got '", text, "'");
        require(x <= kMaxSpecSide, "transform '", name_, "': key '", key, "' = '", text,
                "' has a side above the limit of ", kMaxSpecSide, " pixels");
        sides.push_back(x);
    }
    SizeValue out;
    out.single = sides.size() == 1;
    out.height = sides[0];
    out.width = sides.back();
    require(out.height * out.width <= kMaxSpecPixels, "transform '", name_, "': key '", key,
            "' = '", text, "' asks for ", out.height * out.width, " pixels, above the limit of ",
            kMaxSpecPixels);
    return out;
}

}  // namespace retort
