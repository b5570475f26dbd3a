// tools/options.h: `--name value` command-line options with declared names, defaults, help text
// and range checks. An unknown option, a missing value or a value out of range is an Error that
// says which option and what is allowed.
#pragma once

#include <string>
#include <vector>

namespace retort::cli {

struct OptionSpec {
    std::string name, default_value, help;
    bool flag = false;  // takes no value: `--json` means "true" (`--json=false` is allowed)
};

class Options {
public:
    // Parses args against specs; on --help prints the option table and help_requested() is true.
    Options(std::string command, const std::vector<std::string>& args,
            std::vector<OptionSpec> specs);
    bool help_requested() const { return help_; }
    std::string get(const std::string& name) const;
    long long get_int(const std::string& name, long long min, long long max) const;
    double get_double(const std::string& name, double min, double max) const;
    bool get_flag(const std::string& name) const;  // true / false (also 1 / 0, yes / no)

private:
    std::string command_;
    std::vector<OptionSpec> specs_;
    std::vector<std::string> values_;
    bool help_ = false;
};

// Takes every "--set X" / "--set=X" out of args and returns the X's in order (Options keeps one
// value per name, and --set repeats). `form` describes X in the message for a missing value
// ("section.key=value").
std::vector<std::string> take_overrides(std::vector<std::string>& args,
                                        const std::string& form = "section.key=value");

}  // namespace retort::cli
