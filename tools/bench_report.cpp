// tools/bench_report.cpp: bench records as JSON or text; this process's memory figures.
#include "tools/bench_report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "engine/io/json.h"

namespace retort::cli {

BenchRecord& BenchRecord::text(const std::string& key, const std::string& value) {
    fields_.push_back({key, value, true});
    return *this;
}

BenchRecord& BenchRecord::integer(const std::string& key, std::int64_t value) {
    fields_.push_back({key, std::to_string(value), false});
    return *this;
}

BenchRecord& BenchRecord::number(const std::string& key, double value, int decimals) {
    char buf[64];
    if (std::isfinite(value))
        std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    else
        std::snprintf(buf, sizeof buf, "null");  // JSON has no NaN or infinity
    fields_.push_back({key, buf, false});
    return *this;
}

std::string BenchRecord::json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
        if (i) out += ", ";
        out += json::dump(json::Value(fields_[i].key)) + ": ";
        out += fields_[i].quoted ? json::dump(json::Value(fields_[i].value)) : fields_[i].value;
    }
    return out + "}";
}

std::string BenchRecord::human() const {
    std::string out;
    for (const Field& f : fields_) {
        if (!out.empty()) out += "  ";
        out += f.key + " " + f.value;
    }
    return out;
}

void BenchRecord::print(bool as_json) const {
    std::printf("%s\n", (as_json ? json() : human()).c_str());
    std::fflush(stdout);
}

namespace {

// The value of a "Name:   1234 kB" line of /proc/self/status, in MiB.
double status_mib(const std::string& name) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + ":", 0) != 0) continue;
        std::istringstream fields(line.substr(name.size() + 1));
        double kib = 0;
        fields >> kib;
        return kib / 1024.0;
    }
    return 0;
}

}  // namespace

double resident_mib() { return status_mib("VmRSS"); }
double peak_resident_mib() { return status_mib("VmHWM"); }

bool reset_peak_resident() {
    std::ofstream out("/proc/self/clear_refs");
    if (!out) return false;
    out << "5";  // 5: reset the peak resident set size to the current one
    out.flush();
    return static_cast<bool>(out);
}

}  // namespace retort::cli
