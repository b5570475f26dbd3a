// engine/io/config.h: run configurations: `[section]` headers and `key = value` lines.
//
// A Config holds a declared schema (every section and key, with its type, default, allowed range or
// words, and a help line) and the values read for it. The text format:
//
//     # a comment: from '#' at the start of a line, or after a space or tab, to the line's end
//     [optim]
//     name = sgd
//     lr = 0.1          # trailing comments are fine
//     [data]
//     train_transforms = "random_crop:padding=4; flip"    # quotes are optional, and kept out
//
// A value in double quotes runs to the last double quote of its line, so it may hold '#' and '"';
// str() quotes every value that needs it, so what it writes reads back unchanged. Whitespace
// around sections, keys and values is trimmed. Values are typed: int (64-bit, no
// exponent), double (finite: nan and inf are refused), bool (true/false/1/0/yes/no/on/off),
// string (any text; a key may restrict it to a list of words). Overrides take the form
// "section.key=value" (the CLI's --set) and are applied after the file.
//
// Every mistake is a retort::Error that says where: "run.cfg:7: ..." for a file line, "--set
// optim.lr=x: ..." for an override. Unknown sections and keys list the valid ones; a key given
// twice in one file is an error (an override replaces a file's value, that is what it is for);
// a value out of range names the range. str() writes every key, defaults included, in the same
// format, so the resolved configuration of a run can be saved and read back unchanged.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace retort {

enum class ConfigType { integer, real, boolean, string };

// One declared key. Bounds apply to int keys (int_min, int_max) and double keys (min, max);
// `choices` to string keys (empty: any text).
struct ConfigKey {
    std::string section, key;
    ConfigType type = ConfigType::string;
    std::string default_value;  // as it would be written in a file
    std::string help;
    std::int64_t int_min = std::numeric_limits<std::int64_t>::min();
    std::int64_t int_max = std::numeric_limits<std::int64_t>::max();
    double min = -std::numeric_limits<double>::infinity();
    double max = std::numeric_limits<double>::infinity();
    bool min_exclusive = false;  // value > min rather than >= min (a learning rate must be > 0)
    std::vector<std::string> choices;
    bool required = false;  // no default: the file or an override must give it
    // Extra rules for the value's text (a list's syntax): returns what is wrong, "" when fine.
    std::function<std::string(const std::string& value)> validate;
};

class Config {
public:
    // ---- the schema ----
    void declare(ConfigKey key);
    void declare_int(const std::string& section, const std::string& key, std::int64_t default_value,
                     std::int64_t min, std::int64_t max, const std::string& help);
    void declare_double(const std::string& section, const std::string& key, double default_value,
                        double min, double max, const std::string& help, bool min_exclusive = false);
    void declare_bool(const std::string& section, const std::string& key, bool default_value,
                      const std::string& help);
    void declare_string(const std::string& section, const std::string& key,
                        const std::string& default_value, const std::string& help,
                        std::vector<std::string> choices = {});
    void declare_required(const std::string& section, const std::string& key, const std::string& help);
    // Changes the default of a declared key (a tool that extends a schema may want other defaults).
    void set_default(const std::string& name, const std::string& value);

    // ---- reading values ----
    // Parses config text; `source` (a file name) prefixes error messages.
    void parse(const std::string& text, const std::string& source);
    void load_file(const std::string& path);
    // Applies one "section.key=value" override.
    void apply_override(const std::string& assignment);
    // Sets a value directly; `where` says where it came from, for error messages.
    void set(const std::string& name, const std::string& value, const std::string& where);
    // Checks that every required key has a value (call after the file and the overrides).
    void check_complete() const;

    // ---- typed access by "section.key" (an undeclared name or a wrong type is an internal error) ----
    std::int64_t get_int(const std::string& name) const;
    double get_double(const std::string& name) const;
    bool get_bool(const std::string& name) const;
    const std::string& get_string(const std::string& name) const;
    // Was the key given in a file or an override (rather than left at its default)?
    bool is_set(const std::string& name) const;
    bool has(const std::string& name) const;

    // The resolved configuration: every section in declaration order, every key with its value.
    std::string str() const;
    // Writes str() to path through a temporary file and a rename (never a half-written file).
    void save(const std::string& path) const;
    // A listing of the schema for --help and the docs: one line per key with type, default, help.
    std::string reference() const;
    const std::vector<ConfigKey>& keys() const { return keys_; }

private:
    struct Value {
        std::string text;  // canonical text (what str() writes)
        std::int64_t i = 0;
        double d = 0;
        bool b = false;
        bool given = false;  // set by a file or an override, not left at the default
    };
    void check_section(const std::string& section, const std::string& where) const;
    std::size_t index_of(const std::string& section, const std::string& key,
                         const std::string& where) const;
    const ConfigKey& key_checked(const std::string& name, ConfigType type) const;
    Value convert(const ConfigKey& key, const std::string& text, const std::string& where) const;
    std::vector<std::string> sections() const;

    std::vector<ConfigKey> keys_;
    std::map<std::string, Value> values_;  // by "section.key"
};

}  // namespace retort
