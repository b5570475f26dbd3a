// tools/bench_report.h: what `retort bench` measures, and how it prints it.
//
// Every measurement is one record: ordered fields such as workload, batch, threads, img_per_s,
// gflops, pct_of_peak. With --json a record is one JSON object on one line (scripts and the
// README table read these); without, a line a person reads. Both come from the same record, so
// the two can never disagree.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace retort::cli {

class BenchRecord {
public:
    explicit BenchRecord(const std::string& workload) { text("workload", workload); }
    BenchRecord& text(const std::string& key, const std::string& value);
    BenchRecord& integer(const std::string& key, std::int64_t value);
    BenchRecord& number(const std::string& key, double value, int decimals = 1);

    std::string json() const;
    std::string human() const;  // "key value  key value ..."
    // Prints json() or human() on its own line and flushes (a long run shows progress).
    void print(bool as_json) const;

private:
    // (key, value as it is printed, whether the JSON value is a string)
    struct Field {
        std::string key, value;
        bool quoted;
    };
    std::vector<Field> fields_;
};

// Memory of this process, from /proc/self/status (Linux; 0 elsewhere), in MiB.
double resident_mib();       // VmRSS now
double peak_resident_mib();  // VmHWM: the high-water mark
// Resets the high-water mark to the current resident size (Linux's /proc/self/clear_refs), so
// a workload's peak can be measured above the idle baseline of the process. Returns false where
// the kernel does not allow it; the peak then includes what came before.
bool reset_peak_resident();

}  // namespace retort::cli
