// engine/io/config.cpp: the `[section]` / `key = value` run configuration (format: config.h).
//
// Parsing is line by line; each line is a comment, blank, a section header or an assignment.
// Every value is converted and range-checked the moment it is read, so the error can name the
// file and line (or the --set argument) it came from. Numbers are written back in their shortest
// exact form (std::to_chars), so str() followed by parse() gives the same values bit for bit.
#include "engine/io/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/error.h"
#include "engine/io/atomic_file.h"

namespace retort {

namespace {

std::string trim(const std::string& s) {
    const char* space = " \t\r\n";
    const std::size_t begin = s.find_first_not_of(space);
    if (begin == std::string::npos) return "";
    return s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

// Cuts text at its comment: a '#' at the start or after a space or tab.
std::string strip_comment(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i)
        if (text[i] == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t'))
            return text.substr(0, i);
    return text;
}

// The value of an assignment from the text after its '='. A value in double quotes runs to the
// last double quote of the line, so it may hold any '#' and '"' (only a comment may follow it);
// any other value ends where its comment starts. (Matching quotes in pairs across the line
// instead leaves values that no text reads back as: x" #y, for one.)
std::string parse_value(const std::string& text) {
    const std::string rest = trim(text);
    if (rest.size() >= 2 && rest.front() == '"') {
        const std::size_t close = rest.rfind('"');
        const std::string after = trim(rest.substr(close + 1));
        if (close > 0 && (after.empty() || after.front() == '#')) return rest.substr(1, close - 1);
    }
    return trim(strip_comment(rest));
}

std::string unquote(const std::string& value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        return value.substr(1, value.size() - 2);
    return value;
}

// A string value as it must be written so that parsing gives it back.
std::string quote_if_needed(const std::string& value) {
    const bool needs = value.empty() || value.find('#') != std::string::npos ||
                       value.front() == '"' || value.back() == '"' || trim(value) != value;
    return needs ? "\"" + value + "\"" : value;
}

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
    return out;
}

std::string shortest(double x) {
    char buffer[64];
    auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, x);
    internal_check(error == std::errc(), "formatting a double");
    return std::string(buffer, end);
}

const char* type_name(ConfigType type) {
    switch (type) {
        case ConfigType::integer: return "int";
        case ConfigType::real: return "double";
        case ConfigType::boolean: return "bool";
        case ConfigType::string: return "string";
    }
    return "?";
}

// "[1, 65536]", "> 0", ">= 0" or "" for a key's allowed values.
std::string range_text(const ConfigKey& k) {
    if (k.type == ConfigType::integer) {
        const bool low = k.int_min != std::numeric_limits<std::int64_t>::min();
        const bool high = k.int_max != std::numeric_limits<std::int64_t>::max();
        if (low && high) return cat("[", k.int_min, ", ", k.int_max, "]");
        if (low) return cat(">= ", k.int_min);
        if (high) return cat("<= ", k.int_max);
        return "";
    }
    if (k.type == ConfigType::real) {
        const bool low = std::isfinite(k.min), high = std::isfinite(k.max);
        const char* open = k.min_exclusive ? "(" : "[";
        if (low && high) return cat(open, shortest(k.min), ", ", shortest(k.max), "]");
        if (low) return cat(k.min_exclusive ? "> " : ">= ", shortest(k.min));
        if (high) return cat("<= ", shortest(k.max));
        return "";
    }
    if (k.type == ConfigType::string && !k.choices.empty()) return "one of " + join(k.choices, "|");
    return "";
}

ConfigKey make_key(const std::string& section, const std::string& key, ConfigType type,
                   const std::string& default_value, const std::string& help) {
    ConfigKey k;
    k.section = section;
    k.key = key;
    k.type = type;
    k.default_value = default_value;
    k.help = help;
    return k;
}

}  // namespace

// ---- the schema ----

void Config::declare(ConfigKey key) {
    const std::string name = key.section + "." + key.key;
    internal_check(!values_.count(name), "config key declared twice");
    internal_check(key.section.find_first_of(".[]= \t") == std::string::npos &&
                       key.key.find_first_of(".[]= \t") == std::string::npos,
                   "config section and key names are plain words");
    Value value;
    if (!key.required) value = convert(key, key.default_value, "default of " + name);
    keys_.push_back(std::move(key));
    values_[name] = value;
}

void Config::declare_int(const std::string& section, const std::string& key,
                         std::int64_t default_value, std::int64_t min, std::int64_t max,
                         const std::string& help) {
    ConfigKey k = make_key(section, key, ConfigType::integer, std::to_string(default_value), help);
    k.int_min = min;
    k.int_max = max;
    declare(std::move(k));
}

void Config::declare_double(const std::string& section, const std::string& key,
                            double default_value, double min, double max, const std::string& help,
                            bool min_exclusive) {
    ConfigKey k = make_key(section, key, ConfigType::real, shortest(default_value), help);
    k.min = min;
    k.max = max;
    k.min_exclusive = min_exclusive;
    declare(std::move(k));
}

void Config::declare_bool(const std::string& section, const std::string& key, bool default_value,
                          const std::string& help) {
    declare(make_key(section, key, ConfigType::boolean, default_value ? "true" : "false", help));
}

void Config::declare_string(const std::string& section, const std::string& key,
                            const std::string& default_value, const std::string& help,
                            std::vector<std::string> choices) {
    ConfigKey k = make_key(section, key, ConfigType::string, default_value, help);
    k.choices = std::move(choices);
    declare(std::move(k));
}

void Config::declare_required(const std::string& section, const std::string& key,
                              const std::string& help) {
    ConfigKey k = make_key(section, key, ConfigType::string, "", help);
    k.required = true;
    declare(std::move(k));
}

void Config::set_default(const std::string& name, const std::string& value) {
    for (ConfigKey& k : keys_) {
        if (k.section + "." + k.key != name) continue;
        Value v = convert(k, value, "default of " + name);
        k.default_value = value;
        k.required = false;
        if (!values_.at(name).given) values_[name] = v;
        return;
    }
    internal_check(false, "set_default of an undeclared config key");
}

// ---- reading values ----

std::vector<std::string> Config::sections() const {
    std::vector<std::string> out;
    for (const ConfigKey& k : keys_)
        if (std::find(out.begin(), out.end(), k.section) == out.end()) out.push_back(k.section);
    return out;
}

void Config::check_section(const std::string& section, const std::string& where) const {
    const std::vector<std::string> all = sections();
    if (std::find(all.begin(), all.end(), section) == all.end())
        fail(where, ": unknown section [", section, "]; valid sections: ", join(all));
}

std::size_t Config::index_of(const std::string& section, const std::string& key,
                             const std::string& where) const {
    check_section(section, where);
    std::vector<std::string> valid;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        if (keys_[i].section != section) continue;
        if (keys_[i].key == key) return i;
        valid.push_back(keys_[i].key);
    }
    fail(where, ": unknown key '", key, "' in [", section, "]; valid keys: ", join(valid));
}

Config::Value Config::convert(const ConfigKey& k, const std::string& text,
                              const std::string& where) const {
    const std::string name = k.section + "." + k.key;
    require(text.find_first_of("\r\n") == std::string::npos, where, ": ", name,
            " cannot contain a line break");
    Value v;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    switch (k.type) {
        case ConfigType::integer: {
            const char* digits = (!text.empty() && text[0] == '+') ? first + 1 : first;
            auto [end, error] = std::from_chars(digits, last, v.i);
            require(!text.empty() && error != std::errc::invalid_argument && end == last, where,
                    ": ", name, " must be an integer, got '", text, "'");
            require(error != std::errc::result_out_of_range && v.i >= k.int_min && v.i <= k.int_max,
                    where, ": ", name, " must be in ", range_text(k), ", got ", text);
            v.text = std::to_string(v.i);
            break;
        }
        case ConfigType::real: {
            const char* digits = (!text.empty() && text[0] == '+') ? first + 1 : first;
            auto [end, error] = std::from_chars(digits, last, v.d);
            require(!text.empty() && error == std::errc() && end == last && std::isfinite(v.d),
                    where, ": ", name, " must be a finite number, got '", text, "'");
            const bool low_ok = k.min_exclusive ? v.d > k.min : v.d >= k.min;
            require(low_ok && v.d <= k.max, where, ": ", name, " must be ",
                    range_text(k).starts_with(">") ? "" : "in ", range_text(k), ", got ", text);
            v.text = shortest(v.d);
            break;
        }
        case ConfigType::boolean: {
            static const std::set<std::string> yes = {"true", "1", "yes", "on"};
            static const std::set<std::string> no = {"false", "0", "no", "off"};
            require(yes.count(text) || no.count(text), where, ": ", name,
                    " must be true or false, got '", text, "'");
            v.b = yes.count(text) > 0;
            v.text = v.b ? "true" : "false";
            break;
        }
        case ConfigType::string:
            require(k.choices.empty() ||
                        std::find(k.choices.begin(), k.choices.end(), text) != k.choices.end(),
                    where, ": ", name, " must be one of ", join(k.choices), "; got '", text, "'");
            v.text = text;
            break;
    }
    if (k.validate) {
        const std::string problem = k.validate(v.text);
        require(problem.empty(), where, ": ", name, " ", problem);
    }
    return v;
}

void Config::set(const std::string& name, const std::string& value, const std::string& where) {
    const std::size_t dot = name.find('.');
    require(dot != std::string::npos, where, ": '", name, "' is not of the form section.key");
    const ConfigKey& k = keys_[index_of(name.substr(0, dot), name.substr(dot + 1), where)];
    Value v = convert(k, value, where);
    v.given = true;
    values_[name] = v;
}

void Config::parse(const std::string& text, const std::string& source) {
    std::istringstream in(text);
    std::string raw, section;
    std::map<std::string, int> seen_at;  // "section.key" -> line, within this text
    for (int line_no = 1; std::getline(in, raw); ++line_no) {
        const std::string where = cat(source, ":", line_no);
        // `line` without its comment is enough for everything but a quoted value (which may
        // hold " #"); the value is read from the whole line
        const std::string whole = trim(raw);
        const std::string line = trim(strip_comment(whole));
        if (line.empty()) continue;
        if (line.front() == '[') {
            require(line.back() == ']', where, ": a section header looks like [name], got '", line, "'");
            section = trim(line.substr(1, line.size() - 2));
            check_section(section, where);
            continue;
        }
        const std::size_t eq = line.find('=');
        require(eq != std::string::npos, where, ": expected 'key = value' or '[section]', got '", line, "'");
        const std::string key = trim(line.substr(0, eq));
        require(!key.empty(), where, ": an assignment needs a key before '='");
        require(!section.empty(), where, ": '", key, "' is outside any [section]");
        index_of(section, key, where);
        const std::string name = section + "." + key;
        if (auto it = seen_at.find(name); it != seen_at.end())
            fail(where, ": ", name, " is given twice (first at line ", it->second, ")");
        seen_at[name] = line_no;
        set(name, parse_value(whole.substr(eq + 1)), where);
    }
}

void Config::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    require(in.good(), "cannot open config file ", path);
    std::stringstream text;
    text << in.rdbuf();
    require(!in.bad(), "cannot read config file ", path);
    parse(text.str(), path);
}

void Config::apply_override(const std::string& assignment) {
    const std::string where = "--set " + assignment;
    const std::size_t eq = assignment.find('=');
    require(eq != std::string::npos && eq > 0, where, ": expected section.key=value");
    set(trim(assignment.substr(0, eq)), unquote(trim(assignment.substr(eq + 1))), where);
}

void Config::check_complete() const {
    for (const ConfigKey& k : keys_) {
        const std::string name = k.section + "." + k.key;
        require(!k.required || values_.at(name).given, name, " is required: set it in the [",
                k.section, "] section of the config (", k.key, " = ...) or with --set ", name, "=...");
    }
}

// ---- typed access ----

const ConfigKey& Config::key_checked(const std::string& name, ConfigType type) const {
    for (const ConfigKey& k : keys_)
        if (k.section + "." + k.key == name) {
            internal_check(k.type == type, "config key read as the wrong type");
            return k;
        }
    internal_check(false, "config key read but never declared");
    return keys_.front();
}

std::int64_t Config::get_int(const std::string& name) const {
    key_checked(name, ConfigType::integer);
    return values_.at(name).i;
}
double Config::get_double(const std::string& name) const {
    key_checked(name, ConfigType::real);
    return values_.at(name).d;
}
bool Config::get_bool(const std::string& name) const {
    key_checked(name, ConfigType::boolean);
    return values_.at(name).b;
}
const std::string& Config::get_string(const std::string& name) const {
    key_checked(name, ConfigType::string);
    return values_.at(name).text;
}
bool Config::is_set(const std::string& name) const {
    auto it = values_.find(name);
    return it != values_.end() && it->second.given;
}
bool Config::has(const std::string& name) const { return values_.count(name) > 0; }

// ---- writing ----

std::string Config::str() const {
    std::string out;
    for (const std::string& section : sections()) {
        out += (out.empty() ? "[" : "\n[") + section + "]\n";
        for (const ConfigKey& k : keys_) {
            if (k.section != section) continue;
            const Value& v = values_.at(section + "." + k.key);
            out += "# " + k.help + "\n" + k.key + " = ";
            out += (k.type == ConfigType::string ? quote_if_needed(v.text) : v.text) + "\n";
        }
    }
    return out;
}

void Config::save(const std::string& path) const {
    write_file_atomically(path, str());
}

std::string Config::reference() const {
    std::string out;
    for (const std::string& section : sections()) {
        out += "[" + section + "]\n";
        for (const ConfigKey& k : keys_) {
            if (k.section != section) continue;
            std::string facts = type_name(k.type);
            facts += k.required ? ", required" : ", default " + quote_if_needed(k.default_value);
            if (!range_text(k).empty()) facts += ", " + range_text(k);
            out += cat("  ", k.key, " (", facts, "): ", k.help, "\n");
        }
    }
    return out;
}

}  // namespace retort
