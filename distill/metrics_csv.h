// distill/metrics_csv.h: metrics.csv, the per-run table of losses and accuracies: the writer the
// training loop appends to, and the one reader every consumer goes through.
//
// Columns the writer puts down, always in this order:
//     epoch,step,split,loss,top1,top5,lr,seconds
//   epoch    completed epochs as a fraction for train rows (1.5: half way through the second),
//            the epoch just finished for val / test rows
//   step     optimizer steps taken so far
//   split    train | val | test
//   loss     train: mean of the batch losses since the previous train row; val / test: the mean
//            cross-entropy over the split
//   top1, top5   accuracy in percent (train: on the batches since the previous train row)
//   lr       the learning rate of the last step
//   seconds  wall time since the run started (a resumed run continues the count)
// A run may add columns after these (a distillation run: `stage` when it has a pre-training stage,
// and one `loss.<objective>` per objective); the writer is told their names when it opens the
// file, and each row brings one cell per extra column ("" where it has no value: "not measured").
// Each row is flushed as it is written, so a crash loses at most the row being written; a resumed
// run drops that torn row with the rows written after its checkpoint.
//
// Reading comes in two strengths on one parser. The table reader (read_metrics_table) takes any
// metrics.csv a person or another tool may hand to `retort plot`: the first line names the
// columns, found by name, in any order, and any may be missing. `split` holds text; the known
// numeric columns (metrics_numeric_columns) must hold numbers, an empty cell meaning "not
// measured" (NaN); any other column is kept by name but not read. The row reader
// (read_metrics_csv) is for files this library wrote: exactly the columns above, every cell
// filled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace retort {

inline constexpr const char* kMetricsColumns = "epoch,step,split,loss,top1,top5,lr,seconds";

struct MetricsRow {
    double epoch = 0;
    std::int64_t step = 0;
    std::string split;
    double loss = 0, top1 = 0, top5 = 0, lr = 0, seconds = 0;
    std::vector<std::string> extra;  // one cell per extra column of the writer, already formatted
};

class MetricsCsv {
public:
    MetricsCsv() = default;
    // Opens `path` for appending, writing the header (kMetricsColumns, then extra_columns) if the
    // file is new or empty. With keep_through_step >= 0 (a resumed run), rows with a larger step,
    // written after the checkpoint the run resumes from, are dropped first, and the file's header
    // must be the one this writer would write (else an Error: the rows would not line up). A last
    // line without its newline (a row torn by a kill) is dropped too.
    explicit MetricsCsv(const std::string& path, std::int64_t keep_through_step = -1,
                        std::vector<std::string> extra_columns = {});
    ~MetricsCsv();
    MetricsCsv(const MetricsCsv&) = delete;
    MetricsCsv& operator=(const MetricsCsv&) = delete;
    MetricsCsv(MetricsCsv&& other) noexcept;
    MetricsCsv& operator=(MetricsCsv&& other) noexcept;

    void append(const MetricsRow& row);
    // Puts the rows appended so far on disk (fsync). The trainer calls it before it saves a
    // checkpoint, so a power cut cannot keep a checkpoint and lose the rows that precede it.
    void sync();
    bool is_open() const { return file_ != nullptr; }

private:
    std::FILE* file_ = nullptr;
    std::string path_;
    std::vector<std::string> extra_columns_;
};

// ---- reading ----

struct MetricsTable {
    std::string source;                // the file it came from, for messages
    int header_line = 0;               // the line of the file that named the columns
    std::vector<std::string> columns;  // every column of the header, lower case, in file order
    std::vector<std::string> split;    // one per row, lower case ("" without a split column)
    std::map<std::string, std::vector<double>> numbers;  // known numeric column -> one per row

    std::size_t rows() const { return split.size(); }
    bool has(const std::string& column) const { return numbers.count(column) != 0; }
};

// What an empty cell in a column the reader reads means: "not measured" (NaN in a numeric
// column, "" as the split), or a broken file.
enum class EmptyCells { not_measured, refused };

// The numeric columns the reader knows and checks. Columns named "loss.<name>" (a distillation
// run's per-objective losses) are read as numbers too.
const std::vector<std::string>& metrics_numeric_columns();

// Parses CSV text; `source` names it in messages ("run/metrics.csv:7: ..."). Throws a
// retort::Error for a missing header, a row with the wrong number of fields, a cell of a numeric
// column that is not a number, or (with EmptyCells::refused) an empty cell in a column it reads.
// The one exception: a last line without its newline that does not read as a row (a row torn by
// a kill, or still being written) is left out.
MetricsTable parse_metrics_table(std::istream& in, const std::string& source,
                                 EmptyCells empty = EmptyCells::not_measured);
// Reads and parses a file; a file that cannot be opened is an Error naming it.
MetricsTable read_metrics_table(const std::string& path,
                                EmptyCells empty = EmptyCells::not_measured);

// The rows of a metrics.csv this library wrote: an Error naming the file and line if the header
// is not exactly kMetricsColumns, or a row lacks a value or holds a field that is not a number.
std::vector<MetricsRow> read_metrics_csv(const std::string& path);

}  // namespace retort
