// models/registry.cpp: the model table and the spec parser.
#include "models/registry.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "engine/error.h"

namespace retort {

namespace {
std::string trim(const std::string& s) {
    std::size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
}  // namespace

ModelSpec parse_model_spec(const std::string& spec) {
    ModelSpec out;
    std::size_t colon = spec.find(':');
    out.name = trim(spec.substr(0, colon));
    require(!out.name.empty(), "model spec '", spec, "': the model name is missing");
    if (colon == std::string::npos) return out;
    std::string rest = spec.substr(colon + 1);
    std::set<std::string> seen;
    std::size_t pos = 0;
    while (pos <= rest.size()) {
        std::size_t comma = rest.find(',', pos);
        std::string item = trim(rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        pos = comma == std::string::npos ? rest.size() + 1 : comma + 1;
        if (item.empty() && comma == std::string::npos && out.values.empty() && trim(rest).empty())
            break;  // "resnet18:" with nothing after the colon
        std::size_t eq = item.find('=');
        require(eq != std::string::npos, "model spec '", spec, "': '", item,
                "' is not key=value");
        std::string key = trim(item.substr(0, eq)), value = trim(item.substr(eq + 1));
        require(!key.empty(), "model spec '", spec, "': a key is empty in '", item, "'");
        require(!value.empty(), "model spec '", spec, "': key '", key, "' has no value");
        require(seen.insert(key).second, "model spec '", spec, "': key '", key, "' is given twice");
        out.values.emplace_back(key, value);
    }
    return out;
}

const std::string& ModelConfig::raw(const std::string& key) const {
    auto it = values_.find(key);
    internal_check(it != values_.end(), "a model factory read a key it did not declare");
    return it->second;
}

std::int64_t ModelConfig::get_int(const std::string& key, std::int64_t min, std::int64_t max) const {
    const std::string& v = raw(key);
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(v.c_str(), &end, 10);
    require(*end == '\0' && errno == 0, model_, ": key '", key, "' must be an integer, got '", v, "'");
    require(x >= min && x <= max, model_, ": key '", key, "' must be in [", min, ", ", max,
            "], got ", x);
    return x;
}

double ModelConfig::get_double(const std::string& key, double min, double max) const {
    const std::string& v = raw(key);
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    require(*end == '\0' && std::isfinite(x), model_, ": key '", key, "' must be a number, got '",
            v, "'");
    require(x >= min && x <= max, model_, ": key '", key, "' must be in [", min, ", ", max,
            "], got ", x);
    return x;
}

std::string ModelConfig::get_choice(const std::string& key,
                                    const std::vector<std::string>& allowed) const {
    const std::string& v = raw(key);
    std::string list;
    for (const std::string& a : allowed) {
        if (a == v) return v;
        list += (list.empty() ? "" : ", ") + a;
    }
    fail(model_, ": key '", key, "' must be one of ", list, ", got '", v, "'");
}

const std::vector<ModelEntry>& model_registry() {
    static const std::vector<ModelEntry> all = [] {
        std::vector<ModelEntry> out;
        for (auto family : {resnet_family, cifar_resnet_family, mobilenet_family, vit_family})
            for (ModelEntry& e : family()) out.push_back(std::move(e));
        return out;
    }();
    return all;
}

const ModelEntry& find_model(const std::string& name) {
    std::string list;
    for (const ModelEntry& e : model_registry()) {
        if (e.name == name) return e;
        list += (list.empty() ? "" : ", ") + e.name;
    }
    fail("unknown model '", name, "'; valid models: ", list);
}

ResolvedModelSpec resolve_model_spec(const std::string& spec) {
    ModelSpec parsed = parse_model_spec(spec);
    const ModelEntry& entry = find_model(parsed.name);
    std::map<std::string, std::string> values;
    for (const ModelKey& k : entry.keys) values[k.name] = k.default_value;
    for (const auto& [key, value] : parsed.values) {
        if (!values.count(key)) {
            std::string list;
            for (const ModelKey& k : entry.keys) list += (list.empty() ? "" : ", ") + k.name;
            fail("model '", entry.name, "' has no key '", key, "'; valid keys: ", list);
        }
        values[key] = value;
    }
    return {entry, ModelConfig(entry.name, std::move(values))};
}

std::shared_ptr<Model> create_model(const std::string& spec) {
    const ResolvedModelSpec resolved = resolve_model_spec(spec);
    return resolved.entry.make(resolved.config);
}

}  // namespace retort
