// tools/options.cpp: parsing and checking of `--name value` options.
#include "tools/options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/error.h"

namespace retort::cli {

Options::Options(std::string command, const std::vector<std::string>& args,
                 std::vector<OptionSpec> specs)
    : command_(std::move(command)), specs_(std::move(specs)) {
    for (const OptionSpec& s : specs_) values_.push_back(s.default_value);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
            std::printf("usage: retort %s [options]\n\noptions:\n", command_.c_str());
            for (const OptionSpec& s : specs_) {
                if (s.flag)
                    std::printf("  --%-10s %s\n", s.name.c_str(), s.help.c_str());
                else
                    std::printf("  --%-10s %s (default %s)\n", s.name.c_str(), s.help.c_str(),
                                s.default_value.c_str());
            }
            help_ = true;
            return;
        }
        require(a.rfind("--", 0) == 0, "unexpected argument '", a, "' (options look like --name value)");
        std::string name = a.substr(2), value;
        const auto eq = name.find('=');
        if (eq != std::string::npos) {  // --name=value
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const bool is_flag = std::any_of(specs_.begin(), specs_.end(), [&](const OptionSpec& s) {
            return s.name == name && s.flag;
        });
        if (eq == std::string::npos) {
            if (is_flag) {
                value = "true";
            } else {
                require(i + 1 < args.size(), "option --", name, " needs a value");
                value = args[++i];
            }
        }
        bool known = false;
        for (std::size_t k = 0; k < specs_.size(); ++k)
            if (specs_[k].name == name) {
                values_[k] = value;
                known = true;
            }
        if (!known) {
            std::string valid;
            for (const OptionSpec& s : specs_) valid += " --" + s.name;
            fail("unknown option --", name, " for 'retort ", command_, "'; valid options:", valid);
        }
    }
}

std::string Options::get(const std::string& name) const {
    for (std::size_t k = 0; k < specs_.size(); ++k)
        if (specs_[k].name == name) return values_[k];
    fail("internal error: option --", name, " was never declared");
}

long long Options::get_int(const std::string& name, long long min, long long max) const {
    const std::string v = get(name);
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(v.c_str(), &end, 10);
    require(!v.empty() && *end == '\0' && errno == 0, "option --", name,
            " must be an integer, got '", v, "'");
    require(x >= min && x <= max, "option --", name, " must be in [", min, ", ", max, "], got ", x);
    return x;
}

double Options::get_double(const std::string& name, double min, double max) const {
    const std::string v = get(name);
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    require(!v.empty() && *end == '\0' && std::isfinite(x), "option --", name,
            " must be a number, got '", v, "'");
    require(x >= min && x <= max, "option --", name, " must be in [", min, ", ", max, "], got ", x);
    return x;
}

std::vector<std::string> take_overrides(std::vector<std::string>& args, const std::string& form) {
    std::vector<std::string> overrides, rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--set") {
            require(i + 1 < args.size(), "option --set needs a value (", form, ")");
            overrides.push_back(args[++i]);
        } else if (args[i].starts_with("--set=")) {
            overrides.push_back(args[i].substr(6));
        } else {
            rest.push_back(args[i]);
        }
    }
    args = rest;
    return overrides;
}

bool Options::get_flag(const std::string& name) const {
    const std::string v = get(name);
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no" || v.empty()) return false;
    fail("option --", name, " is true or false, got '", v, "'");
}

}  // namespace retort::cli
