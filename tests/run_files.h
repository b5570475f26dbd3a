// tests/run_files.h: reading what a training run leaves on disk, for the tests that compare runs
// (distillation, mutual learning, strategies, crash safety, training).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace retort::testing {

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

inline void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// One line of a CSV file as cells; a line ending in ',' ends with an empty cell.
inline std::vector<std::string> csv_cells(const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream fields(line);
    std::string cell;
    while (std::getline(fields, cell, ',')) cells.push_back(cell);
    if (line.ends_with(",")) cells.emplace_back();
    return cells;
}

// metrics.csv as rows of cells under the header's names (every column, as text).
struct Csv {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;

    explicit Csv(const std::string& path) {
        std::istringstream in(read_text(path));
        std::string line;
        bool first = true;
        while (std::getline(in, line)) {
            (first ? header : rows.emplace_back()) = csv_cells(line);
            first = false;
        }
    }
    // The index of a column; fails the test when there is none.
    std::size_t at(const std::string& name) const {
        const auto i = static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
        REQUIRE_MESSAGE(i < header.size(), "no column ", name);
        return i;
    }
    // The column's cells on the rows of one split.
    std::vector<std::string> column(const std::string& split, const std::string& name) const {
        std::vector<std::string> cells;
        for (const auto& row : rows)
            if (row.at(at("split")) == split) cells.push_back(row.at(at(name)));
        return cells;
    }
    std::vector<double> numbers(const std::string& split, const std::string& name) const {
        std::vector<double> values;
        for (const std::string& cell : column(split, name)) values.push_back(std::stod(cell));
        return values;
    }
};

// metrics.csv without the seconds column (the 8th), which is wall time: what two runs that did
// the same work must agree on.
inline std::string without_seconds(const std::string& path) {
    std::istringstream in(read_text(path));
    std::string line, out;
    while (std::getline(in, line)) {
        std::vector<std::string> cells = csv_cells(line);
        if (cells.size() > 7) cells.erase(cells.begin() + 7);
        for (std::size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cells[i];
        out += "\n";
    }
    return out;
}

}  // namespace retort::testing
