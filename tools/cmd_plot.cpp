// tools/cmd_plot.cpp: `retort plot`: draws the loss and accuracy curves of one or more training
// runs into one PNG, to compare runs at a glance.
//
//   retort plot RUN_DIR [RUN_DIR ...] -o curves.png
//
// Each RUN_DIR holds the metrics.csv its training run wrote (format in distill/metrics_csv.h). The
// image has two panels side by side: loss against epoch (training and validation) and top-1
// accuracy in percent against epoch (validation and test). Each run has its own colour; the
// split is told by the line: training thin and pale (it is measured every few steps and noisy),
// validation thick with round markers, test dashed with square markers. The legend below names
// the runs. A column missing from a file only leaves out the curves that need it; top-1 written
// as a fraction (every value at most 1) is shown as a percentage.
//
// Every run is read and checked before anything is drawn; on any error no image is written, and
// the image appears atomically (temporary file, then rename).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "distill/metrics_csv.h"
#include "engine/error.h"
#include "tools/commands.h"
#include "tools/plot_canvas.h"

namespace retort::cli {

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The data: each run's curves in data units (x in epochs or steps, y in loss or percent).

struct Curve {
    std::string split;          // train, val, test, or "" for a file without a split column
    std::vector<Point> points;  // sorted by x
};

struct Run {
    std::string name;  // as the legend shows it
    std::vector<Curve> loss, accuracy;
};

// The rows of one split where both x and y were measured, in x order.
Curve read_curve(const MetricsTable& table, const std::string& split, const std::string& x_column,
                 const std::string& y_column, double y_scale) {
    Curve curve{split, {}};
    if (!table.has(x_column) || !table.has(y_column)) return curve;
    const std::vector<double>& xs = table.numbers.at(x_column);
    const std::vector<double>& ys = table.numbers.at(y_column);
    for (std::size_t row = 0; row < table.rows(); ++row)
        if (table.split[row] == split && std::isfinite(xs[row]) && std::isfinite(ys[row]))
            curve.points.push_back({xs[row], ys[row] * y_scale});
    std::stable_sort(curve.points.begin(), curve.points.end(),
                     [](const Point& a, const Point& b) { return a.x < b.x; });
    return curve;
}

// Top-1 may be written as a fraction or as a percentage; a run whose every value is at most 1
// is taken to be in fractions (no real run stays below 1% accuracy throughout).
double accuracy_scale(const MetricsTable& table) {
    if (!table.has("top1")) return 1;
    double largest = 0;
    for (double v : table.numbers.at("top1"))
        if (std::isfinite(v)) largest = std::max(largest, v);
    return largest <= 1 ? 100 : 1;
}

std::string display_name(const std::string& dir) {
    fs::path p(dir);
    if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();  // "runs/a/" -> "runs/a"
    std::string name = p.string();
    constexpr std::size_t kLongest = 48;
    if (name.size() > kLongest) name = "..." + name.substr(name.size() - (kLongest - 3));
    return name;
}

MetricsTable load_run(const std::string& dir) {
    require(fs::is_directory(dir), "plot: run directory '", dir, "' does not exist");
    const fs::path file = fs::path(dir) / "metrics.csv";
    require(fs::is_regular_file(file), "plot: run directory '", dir, "' has no metrics.csv");
    return read_metrics_table(file.string());
}

// ---------------------------------------------------------------------------------------------
// Axes with "nice" ticks: steps of 1, 2 or 5 times a power of ten, bounds on a multiple of the
// step, so every tick label is short and round.

struct Axis {
    double lo = 0, hi = 1, step = 0.2;
    int decimals = 1;  // enough to tell neighbouring ticks apart

    std::vector<double> ticks() const {
        std::vector<double> out;
        const long long first = std::llround(lo / step), last = std::llround(hi / step);
        for (long long k = first; k <= last; ++k) out.push_back(k * step);
        return out;
    }
    std::string label(double v) const {
        char text[32];
        if (std::fabs(v) < step * 1e-6) v = 0;  // no "-0.0"
        if (std::max(std::fabs(lo), std::fabs(hi)) >= 1e6 || step < 1e-4)
            std::snprintf(text, sizeof text, "%.3g", v);
        else
            std::snprintf(text, sizeof text, "%.*f", decimals, v);
        return text;
    }
};

Axis nice_axis(double lo, double hi, int target_ticks) {
    // values near the limits of double would overflow hi - lo (and every tick after it)
    require(std::isfinite(lo) && std::isfinite(hi) && std::fabs(lo) < 1e150 && std::fabs(hi) < 1e150,
            "plot: values out of the range that can be drawn (", lo, " to ", hi, ")");
    if (!(hi > lo)) {  // one value: open a window around it
        const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }
    const double raw = (hi - lo) / target_ticks;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double mantissa = raw / magnitude;
    const double step = (mantissa < 1.5 ? 1 : mantissa < 3 ? 2 : mantissa < 7 ? 5 : 10) * magnitude;
    Axis axis;
    axis.step = step;
    axis.lo = std::floor(lo / step + 1e-9) * step;
    axis.hi = std::ceil(hi / step - 1e-9) * step;
    axis.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    return axis;
}

struct Extent {
    double lo = INFINITY, hi = -INFINITY;
    void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
    bool empty() const { return lo > hi; }
};

// ---------------------------------------------------------------------------------------------
// Drawing

constexpr int kWidth = 1400, kPanelsHeight = 540, kMargin = 24;
constexpr int kText = 2, kTitleText = 3;  // font scales of labels and of panel titles
const Rgb kWhite{255, 255, 255}, kInk{40, 40, 40}, kGrid{228, 228, 228}, kMuted{120, 120, 120};

// How a split's curve is drawn; the colour comes from the run.
struct Style {
    double width, dash, gap;
    double pale;   // how far the run's colour is mixed toward white
    char marker;   // 'o' circle, 's' square, or 0 for none
};

Style style_of(const std::string& split) {
    if (split == "train") return {1.5, 0, 0, 0.35, 0};
    if (split == "val") return {2.5, 0, 0, 0, 'o'};
    if (split == "test") return {2.5, 9, 6, 0, 's'};
    return {2, 0, 0, 0, 0};
}

void draw_marker(Canvas& canvas, Point p, char marker, Rgb color) {
    constexpr double kRadius = 4;
    if (marker == 'o') canvas.fill_circle(p, kRadius, color);
    const int x = static_cast<int>(std::lround(p.x)), y = static_cast<int>(std::lround(p.y));
    if (marker == 's') canvas.fill_rect(x - 3, y - 3, x + 3, y + 3, color);
}

void draw_curve(Canvas& canvas, const std::vector<Point>& pixels, const Style& style, Rgb color) {
    const Rgb ink = mix(color, kWhite, style.pale);
    canvas.draw_polyline(pixels, ink, style.width, style.dash, style.gap);
    constexpr std::size_t kMostMarkers = 60;  // beyond that they merge into a blur
    if (style.marker && pixels.size() <= kMostMarkers)
        for (const Point& p : pixels) draw_marker(canvas, p, style.marker, ink);
}

// One panel: a frame in pixels and the data ranges it shows.
struct Panel {
    int left, top, right, bottom;  // the plotting area inside the axes
    Axis x, y;

    Point to_pixel(Point data) const {
        return {left + (data.x - x.lo) / (x.hi - x.lo) * (right - left),
                bottom - (data.y - y.lo) / (y.hi - y.lo) * (bottom - top)};
    }
};

int widest_label(const Axis& axis) {
    int widest = 0;
    for (double t : axis.ticks()) widest = std::max(widest, Canvas::text_width(axis.label(t), kText));
    return widest;
}

// Frame, grid, ticks and labels of a panel occupying [x0, x1] across the canvas.
Panel draw_axes(Canvas& canvas, int x0, int x1, const Axis& x, const Axis& y, const std::string& title,
                const std::string& x_label, const std::string& y_label) {
    const int line = Canvas::text_height(kText);
    Panel p{};
    p.x = x, p.y = y;
    p.left = x0 + line + 10 + widest_label(y) + 10;
    p.right = x1;
    p.top = kMargin + Canvas::text_height(kTitleText) + 10;
    p.bottom = kPanelsHeight - (line + 8 + line + 16);

    canvas.draw_text((p.left + p.right - Canvas::text_width(title, kTitleText)) / 2, kMargin, title, kInk,
                     kTitleText);
    for (double t : x.ticks()) {
        const int px = static_cast<int>(std::lround(p.to_pixel({t, y.lo}).x));
        canvas.fill_rect(px, p.top, px, p.bottom, kGrid);
        canvas.fill_rect(px, p.bottom, px, p.bottom + 5, kInk);
        const std::string text = x.label(t);
        canvas.draw_text(px - Canvas::text_width(text, kText) / 2, p.bottom + 9, text, kInk, kText);
    }
    for (double t : y.ticks()) {
        const int py = static_cast<int>(std::lround(p.to_pixel({x.lo, t}).y));
        canvas.fill_rect(p.left, py, p.right, py, kGrid);
        canvas.fill_rect(p.left - 5, py, p.left, py, kInk);
        const std::string text = y.label(t);
        canvas.draw_text(p.left - 9 - Canvas::text_width(text, kText), py - 7 * kText / 2, text, kInk, kText);
    }
    canvas.draw_rect(p.left, p.top, p.right, p.bottom, kInk);
    canvas.draw_text((p.left + p.right - Canvas::text_width(x_label, kText)) / 2,
                     p.bottom + 9 + line + 8, x_label, kInk, kText);
    canvas.draw_text_up(x0, (p.top + p.bottom + Canvas::text_width(y_label, kText)) / 2, y_label, kInk, kText);
    return p;
}

// The panel of one metric: `curves_of` picks each run's curves for it.
void draw_panel(Canvas& canvas, int x0, int x1, const std::vector<Run>& runs, const Axis& x_axis,
                std::vector<Curve> Run::*curves_of, const std::string& title,
                const std::string& x_label, const std::string& y_label) {
    Extent y_range;
    for (const Run& run : runs)
        for (const Curve& c : run.*curves_of)
            for (const Point& pt : c.points) y_range.add(pt.y);
    const Axis y_axis = y_range.empty() ? nice_axis(0, 1, 5) : nice_axis(y_range.lo, y_range.hi, 6);
    const Panel panel = draw_axes(canvas, x0, x1, x_axis, y_axis, title, x_label, y_label);
    if (y_range.empty()) {
        const std::string text = "no data";
        canvas.draw_text((panel.left + panel.right - Canvas::text_width(text, kText)) / 2,
                         (panel.top + panel.bottom) / 2, text, kMuted, kText);
        return;
    }
    for (std::size_t r = 0; r < runs.size(); ++r)
        for (const Curve& c : runs[r].*curves_of) {
            std::vector<Point> pixels;
            for (const Point& pt : c.points) pixels.push_back(panel.to_pixel(pt));
            draw_curve(canvas, pixels, style_of(c.split), palette_color(r));
        }
}

// ---------------------------------------------------------------------------------------------
// The legend: the line styles first, then one entry per run, flowing left to right in rows.

struct LegendEntry {
    std::string text;
    Style style;
    Rgb color;
};

constexpr int kSwatch = 44, kRowHeight = 30;

int entry_width(const LegendEntry& e) { return kSwatch + 10 + Canvas::text_width(e.text, kText) + 36; }

// The top-left corner of each entry, wrapping at the right margin.
std::vector<std::pair<int, int>> legend_layout(const std::vector<LegendEntry>& entries, int top) {
    std::vector<std::pair<int, int>> at;
    int x = kMargin, y = top;
    for (const LegendEntry& e : entries) {
        if (x > kMargin && x + entry_width(e) > kWidth - kMargin) x = kMargin, y += kRowHeight;
        at.push_back({x, y});
        x += entry_width(e);
    }
    return at;
}

void draw_legend(Canvas& canvas, const std::vector<LegendEntry>& entries,
                 const std::vector<std::pair<int, int>>& at) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto [x, y] = at[i];
        const double mid = y + Canvas::text_height(kText) / 2.0 - 2;
        const std::vector<Point> swatch = {{x + 2.0, mid}, {x + kSwatch / 2.0, mid}, {x + kSwatch - 2.0, mid}};
        draw_curve(canvas, swatch, entries[i].style, entries[i].color);
        canvas.draw_text(x + kSwatch + 10, y, entries[i].text, kInk, kText);
    }
}

std::vector<LegendEntry> legend_entries(const std::vector<Run>& runs) {
    std::set<std::string> splits;
    for (const Run& run : runs)
        for (const auto* curves : {&run.loss, &run.accuracy})
            for (const Curve& c : *curves)
                if (!c.points.empty()) splits.insert(c.split);
    std::vector<LegendEntry> entries;
    for (const char* split : {"train", "val", "test"})
        if (splits.count(split)) entries.push_back({split, style_of(split), kMuted});
    for (std::size_t r = 0; r < runs.size(); ++r)
        entries.push_back({runs[r].name, {3, 0, 0, 0, 0}, palette_color(r)});  // colour alone names a run
    return entries;
}

// ---------------------------------------------------------------------------------------------
// The command

struct PlotArgs {
    std::vector<std::string> run_dirs;
    std::string output;
    bool help = false;
};

PlotArgs parse_args(const std::vector<std::string>& args) {
    PlotArgs parsed;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
            parsed.help = true;
        } else if (a == "-o" || a == "--output") {
            require(i + 1 < args.size(), "plot: ", a, " needs a file name");
            parsed.output = args[++i];
        } else if (a.rfind("--output=", 0) == 0) {
            parsed.output = a.substr(9);
        } else if (a.size() > 1 && a[0] == '-') {
            fail("plot: unknown option '", a, "'; valid options: -o/--output FILE.png");
        } else {
            parsed.run_dirs.push_back(a);
        }
    }
    return parsed;
}

// Epochs on the x axis when every run has them, else steps when every run has those.
std::string choose_x_column(const std::vector<MetricsTable>& tables) {
    for (const char* column : {"epoch", "step"})
        if (std::all_of(tables.begin(), tables.end(), [&](const MetricsTable& t) { return t.has(column); }))
            return column;
    for (const MetricsTable& t : tables)
        require(t.has("epoch") || t.has("step"), "plot: ", t.source,
                " has neither an 'epoch' nor a 'step' column to put on the x axis");
    fail("plot: some runs count only epochs and others only steps, so they share no x axis");
}

}  // namespace

int run_plot(const std::vector<std::string>& args) {
    const PlotArgs parsed = parse_args(args);
    if (parsed.help) {
        std::printf("usage: retort plot RUN_DIR [RUN_DIR ...] -o curves.png\n\n"
                    "Draws loss and top-1 accuracy against epoch from each RUN_DIR/metrics.csv.\n\n"
                    "options:\n  -o, --output FILE  the PNG to write (required)\n");
        return 0;
    }
    require(!parsed.run_dirs.empty(),
            "plot: give at least one run directory (retort plot RUN_DIR [RUN_DIR ...] -o curves.png)");
    require(!parsed.output.empty(), "plot: -o/--output is required (the PNG file to write)");
    require(can_write_png(), "plot: retort was built without stb (install libstb-dev and rebuild "
            "with RETORT_STB=ON), so it cannot write PNG files");

    std::vector<MetricsTable> tables;
    for (const std::string& dir : parsed.run_dirs) tables.push_back(load_run(dir));
    const std::string x_column = choose_x_column(tables);

    std::vector<Run> runs;
    Extent x_range;
    for (std::size_t r = 0; r < tables.size(); ++r) {
        const MetricsTable& t = tables[r];
        Run run{display_name(parsed.run_dirs[r]), {}, {}};
        const double percent = accuracy_scale(t);
        for (const char* split : {"train", "val", ""}) run.loss.push_back(read_curve(t, split, x_column, "loss", 1));
        for (const char* split : {"val", "test", ""})
            run.accuracy.push_back(read_curve(t, split, x_column, "top1", percent));
        for (const auto* curves : {&run.loss, &run.accuracy})
            for (const Curve& c : *curves)
                for (const Point& p : c.points) x_range.add(p.x);
        runs.push_back(std::move(run));
    }
    const Axis x_axis = x_range.empty() ? nice_axis(0, 1, 5) : nice_axis(x_range.lo, x_range.hi, 8);

    const std::vector<LegendEntry> legend = legend_entries(runs);
    const std::vector<std::pair<int, int>> legend_at = legend_layout(legend, kPanelsHeight + 4);
    const int height = legend_at.back().second + kRowHeight + kMargin / 2;
    Canvas canvas(kWidth, height, kWhite);
    const int middle = kWidth / 2;
    draw_panel(canvas, kMargin, middle - kMargin, runs, x_axis, &Run::loss, "loss", x_column, "loss");
    draw_panel(canvas, middle + kMargin, kWidth - 2 * kMargin, runs, x_axis, &Run::accuracy,
               "top-1 accuracy", x_column, "top-1 (%)");
    draw_legend(canvas, legend, legend_at);

    write_png(canvas, parsed.output);
    std::printf("wrote %s (%dx%d): %zu run%s\n", parsed.output.c_str(), canvas.width(), canvas.height(),
                runs.size(), runs.size() == 1 ? "" : "s");
    return 0;
}

}  // namespace retort::cli
