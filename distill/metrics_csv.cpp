// distill/metrics_csv.cpp: writing and reading metrics.csv (columns and the two ways of reading
// it in metrics_csv.h).
//
// Appends go through a FILE* in append mode and are flushed per row (to the kernel: a killed
// process loses nothing flushed), and synced to disk before each checkpoint (sync()). Dropping the
// rows of an interrupted epoch rewrites the file with write_file_atomically, so a crash during the
// rewrite leaves the old file whole; a last line without its newline, torn by a kill, is dropped
// then too.
//
// The parser reads plain comma-separated fields without quoting, which is what the writer puts
// down; spaces around a field, a Windows line end and a UTF-8 byte-order mark are tolerated,
// blank lines are skipped. Line numbers in messages count every line of the file from 1, as an
// editor shows them. The strict row reader is the table reader plus checks, so both read a file
// the same way.
#include "distill/metrics_csv.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "engine/error.h"
#include "engine/io/atomic_file.h"

namespace retort {

namespace {

// ---------------------------------------------------------------------------------------------
// Fields and numbers, shared by the reader and the resume rewrite.

std::string trim(const std::string& s) {
    const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
    auto begin = std::find_if_not(s.begin(), s.end(), is_space);
    auto end = std::find_if_not(s.rbegin(), s.rend(), is_space).base();
    return begin < end ? std::string(begin, end) : std::string();
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::vector<std::string> split_fields(const std::string& line) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = line.find(',', start);
        fields.push_back(trim(line.substr(start, comma - start)));
        if (comma == std::string::npos) return fields;
        start = comma + 1;
    }
}

// The whole field as a number (strtod's syntax, so "nan" and "inf" too, as printf writes them).
bool parse_number(const std::string& field, double& value) {
    if (field.empty()) return false;
    char* end = nullptr;
    errno = 0;
    value = std::strtod(field.c_str(), &end);
    // ERANGE with a tiny result is an underflow to about zero, which is fine for a metric
    return *end == '\0' && !(errno == ERANGE && std::fabs(value) > 1);
}

std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
    return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

// Rewrites the file keeping the header and the rows whose step is <= keep_through_step.
void drop_rows_after(const std::string& path, std::int64_t keep_through_step) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream contents;
    contents << in.rdbuf();
    require(!in.bad(), "cannot read ", path);
    const std::string text = contents.str();
    std::size_t width = 0;  // the header's, so extra columns count
    std::string kept;
    std::size_t start = 0;
    for (int line_no = 1;; ++line_no) {
        const std::size_t end = text.find('\n', start);
        // Text after the last newline is a row a kill cut short (rows are written whole, newline
        // last); even if its fields look complete, its last number may be cut, so it goes.
        if (end == std::string::npos) break;
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty()) continue;
        if (line_no == 1) {
            width = split_fields(line).size();
            kept += line + "\n";
            continue;
        }
        const std::vector<std::string> f = split_fields(line);
        double step = 0;
        if (f.size() == width && parse_number(f[1], step) &&
            step <= static_cast<double>(keep_through_step))
            kept += line + "\n";
    }
    write_file_atomically(path, kept);
}

// ---------------------------------------------------------------------------------------------
// Reading

// The fixed numeric columns, and a distillation run's per-objective "loss.<name>" columns.
bool is_known_numeric(const std::string& name) {
    const auto& known = metrics_numeric_columns();
    return std::find(known.begin(), known.end(), name) != known.end() ||
           (name.starts_with("loss.") && name.size() > 5);
}

// Checks the header and sets up the table's columns.
void read_header(const std::vector<std::string>& names, int line_number, MetricsTable& table) {
    const std::string where = cat(table.source, ":", line_number, ": ");
    for (const std::string& name : names) {
        double ignored;
        require(!name.empty() && !parse_number(name, ignored), where,
                "the first line must be a header naming the columns (e.g. ", kMetricsColumns,
                "), but it has ",
                name.empty() ? std::string("an empty name") : "the value '" + name + "'");
        require(std::count(names.begin(), names.end(), name) == 1, where, "column '", name,
                "' is named twice in the header");
        if (is_known_numeric(name)) table.numbers[name];
    }
    table.header_line = line_number;
    table.columns = names;
}

void read_row(const std::vector<std::string>& fields, int line_number, EmptyCells empty,
              MetricsTable& table) {
    const std::string where = cat(table.source, ":", line_number, ": ");
    require(fields.size() == table.columns.size(), where, "the row has ", fields.size(),
            " fields but the header names ", table.columns.size(), " columns");
    table.split.emplace_back();
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const std::string& name = table.columns[i];
        const bool known = name == "split" || is_known_numeric(name);
        require(!(known && fields[i].empty() && empty == EmptyCells::refused), where, "column '",
                name, "' is empty");
        if (name == "split") table.split.back() = lower(fields[i]);
        if (!is_known_numeric(name)) continue;
        double value = std::numeric_limits<double>::quiet_NaN();  // an empty cell: not measured
        require(fields[i].empty() || parse_number(fields[i], value), where, "column '", name,
                "' holds '", fields[i], "', which is not a number");
        table.numbers[name].push_back(value);
    }
}

}  // namespace

MetricsCsv::MetricsCsv(const std::string& path, std::int64_t keep_through_step,
                       std::vector<std::string> extra_columns)
    : path_(path), extra_columns_(std::move(extra_columns)) {
    namespace fs = std::filesystem;
    std::string header = kMetricsColumns;
    for (const std::string& column : extra_columns_) header += "," + column;
    if (keep_through_step >= 0 && fs::exists(path) && fs::file_size(path) > 0) {
        std::ifstream in(path);
        std::string first;
        std::getline(in, first);
        if (!first.empty() && first.back() == '\r') first.pop_back();
        require(first == header, path, " has the columns ", first, ", but this run writes ", header,
                "; it was written by another kind of run");
        in.close();
        drop_rows_after(path, keep_through_step);
    }
    const bool fresh = !fs::exists(path) || fs::file_size(path) == 0;
    file_ = std::fopen(path.c_str(), "a");
    require(file_ != nullptr, "cannot open ", path, " for writing");
    if (fresh) {
        std::fprintf(file_, "%s\n", header.c_str());
        std::fflush(file_);
    }
}

MetricsCsv::~MetricsCsv() {
    if (file_) std::fclose(file_);
}

MetricsCsv::MetricsCsv(MetricsCsv&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)),
      path_(std::move(other.path_)),
      extra_columns_(std::move(other.extra_columns_)) {}

MetricsCsv& MetricsCsv::operator=(MetricsCsv&& other) noexcept {
    if (this != &other) {
        if (file_) std::fclose(file_);
        file_ = std::exchange(other.file_, nullptr);
        path_ = std::move(other.path_);
        extra_columns_ = std::move(other.extra_columns_);
    }
    return *this;
}

void MetricsCsv::append(const MetricsRow& r) {
    internal_check(file_ != nullptr, "metrics.csv append before open");
    internal_check(r.extra.size() <= extra_columns_.size(), "metrics.csv row with too many cells");
    // A window of only skipped steps has no loss: printf shows the NaN of 0.0 / 0.0 as "-nan",
    // its sign bit being set; the sign of a NaN means nothing, so it is written as "nan".
    auto plain = [](double x) { return std::isnan(x) ? std::numeric_limits<double>::quiet_NaN() : x; };
    std::fprintf(file_, "%.4f,%lld,%s,%.6f,%.3f,%.3f,%.6g,%.2f", r.epoch,
                 static_cast<long long>(r.step), r.split.c_str(), plain(r.loss), plain(r.top1),
                 plain(r.top5), r.lr, r.seconds);
    for (std::size_t i = 0; i < extra_columns_.size(); ++i)
        std::fprintf(file_, ",%s", i < r.extra.size() ? r.extra[i].c_str() : "");
    std::fprintf(file_, "\n");
    require(std::fflush(file_) == 0, "cannot write to ", path_);
}

void MetricsCsv::sync() {
    internal_check(file_ != nullptr, "metrics.csv sync before open");
    require(std::fflush(file_) == 0, "cannot write to ", path_);
    // Best effort, as for a directory: a file system that cannot fsync still has the rows in the
    // kernel, which is all a killed process needs; only a power cut could lose them.
    ::fsync(::fileno(file_));
}

const std::vector<std::string>& metrics_numeric_columns() {
    static const std::vector<std::string> columns = {"epoch", "step", "loss", "top1",
                                                     "top5",  "lr",   "seconds"};
    return columns;
}

MetricsTable parse_metrics_table(std::istream& in, const std::string& source, EmptyCells empty) {
    MetricsTable table;
    table.source = source;
    bool have_header = false;
    std::string line;
    for (int line_number = 1; std::getline(in, line); ++line_number) {
        if (line_number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (trim(line).empty()) continue;
        std::vector<std::string> fields = split_fields(line);
        if (!have_header) {
            for (std::string& name : fields) name = lower(name);
            read_header(fields, line_number, table);
            have_header = true;
        } else if (in.eof()) {
            // The last line, without its newline: a row being written by a live run, or cut
            // short by a kill. If it does not read as a row, it is left out rather than refused,
            // so a killed run can still be plotted (a resume drops it, see drop_rows_after).
            MetricsTable with_row = table;
            try {
                read_row(fields, line_number, empty, with_row);
                table = std::move(with_row);
            } catch (const Error&) {
            }
        } else {
            read_row(fields, line_number, empty, table);
        }
    }
    require(have_header, source, ": the file is empty; expected a header line naming the columns "
            "(e.g. ", kMetricsColumns, ")");
    return table;
}

MetricsTable read_metrics_table(const std::string& path, EmptyCells empty) {
    std::ifstream in(path);
    if (!in) fail("cannot open metrics file '", path, "': ", std::strerror(errno));
    return parse_metrics_table(in, path, empty);
}

std::vector<MetricsRow> read_metrics_csv(const std::string& path) {
    const MetricsTable table = read_metrics_table(path, EmptyCells::refused);
    require(table.columns == split_fields(kMetricsColumns), path, ":", table.header_line,
            ": the header must be exactly ", kMetricsColumns, ", but it is ", join(table.columns));
    const auto column = [&](const char* name) -> const std::vector<double>& {
        return table.numbers.at(name);
    };
    std::vector<MetricsRow> rows(table.rows());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        MetricsRow& r = rows[i];
        r.epoch = column("epoch")[i];
        const double step = column("step")[i];
        require(std::isfinite(step) && step >= 0 && step <= 9.0e15 && step == std::floor(step),
                path, ": row ", i + 1, ": step must be a whole number >= 0, got ", step);
        r.step = static_cast<std::int64_t>(step);
        r.split = table.split[i];
        r.loss = column("loss")[i];
        r.top1 = column("top1")[i];
        r.top5 = column("top5")[i];
        r.lr = column("lr")[i];
        r.seconds = column("seconds")[i];
    }
    return rows;
}

}  // namespace retort
