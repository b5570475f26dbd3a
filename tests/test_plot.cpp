// tests/test_plot.cpp: `retort plot` and its parts: the metrics.csv reader (columns by name,
// missing cells, every kind of bad file refused with file and line), the canvas (lines and text
// land on the pixels they should) and the command end to end (a PNG of the right size in which
// every run's colour appears; on any error a message, a non-zero exit and no file).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "distill/metrics_csv.h"
#include "engine/error.h"
#include "tests/cli_run.h"
#include "tools/plot_canvas.h"

#ifdef RETORT_HAVE_STB
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#endif

using namespace retort;
using namespace retort::cli;
namespace fs = std::filesystem;
using retort::testing::run_retort;
using retort::testing::TempDir;
using retort::testing::CliRun;

namespace {

MetricsTable parse(const std::string& text, const std::string& source = "run/metrics.csv") {
    std::istringstream in(text);
    return parse_metrics_table(in, source);
}

void write_text(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
}

// A metrics.csv like the training loop writes: training rows four times per epoch, validation
// once per epoch, a test row at the end. `percent` says how top-1 is written.
std::string make_metrics(int epochs, double speed, bool percent) {
    std::ostringstream out;
    out << "epoch,step,split,loss,top1,top5,lr,seconds\n";
    const double unit = percent ? 100 : 1;
    int step = 0;
    for (int e = 1; e <= epochs; ++e) {
        for (int q = 1; q <= 4; ++q) {
            step += 25;
            const double t = e - 1 + q / 4.0;
            out << t << "," << step << ",train," << 2.3 * std::exp(-speed * t) + 0.05 * (q % 2) << ","
                << unit * (0.9 - 0.8 * std::exp(-speed * t)) << ",,0.1," << step * 0.01 << "\n";
        }
        out << e << "," << step << ",val," << 2.3 * std::exp(-speed * e) + 0.1 << ","
            << unit * (0.85 - 0.75 * std::exp(-speed * e)) << "," << unit * 0.95 << ",0.1," << step * 0.01 << "\n";
    }
    out << epochs << "," << step << ",test,0.5," << unit * 0.8 << "," << unit * 0.95 << ",0.1,9\n";
    return out.str();
}

int count_pixels(const Canvas& c, Rgb color) {
    int n = 0;
    for (int y = 0; y < c.height(); ++y)
        for (int x = 0; x < c.width(); ++x) n += c.pixel(x, y) == color;
    return n;
}

const Rgb kBackground{255, 255, 255}, kRed{200, 0, 0};

}  // namespace

// ---------------------------------------------------------------------------------------------
// metrics.csv

TEST_CASE("plot: metrics.csv is read by column name, with empty cells as not measured") {
    // columns out of the usual order, an unknown column, a Windows line end, a blank line, spaces
    const MetricsTable t = parse("split, Loss ,epoch,note,top1\r\n"
                                 "train,2.5,0.25,warmup,\n"
                                 "\n"
                                 " VAL ,1.75,1,x,61.5\n"
                                 "test,,1,,nan\n");
    CHECK(t.columns == std::vector<std::string>{"split", "loss", "epoch", "note", "top1"});
    REQUIRE(t.rows() == 3);
    CHECK(t.split == std::vector<std::string>{"train", "val", "test"});
    CHECK(t.has("loss"));
    CHECK(t.has("epoch"));
    CHECK(t.has("top1"));
    CHECK_FALSE(t.has("step"));  // missing columns are simply absent
    CHECK_FALSE(t.has("note"));  // an unknown column is not read
    CHECK(t.numbers.at("loss")[0] == 2.5);
    CHECK(t.numbers.at("loss")[1] == 1.75);
    CHECK(std::isnan(t.numbers.at("loss")[2]));
    CHECK(t.numbers.at("epoch") == std::vector<double>{0.25, 1, 1});
    CHECK(std::isnan(t.numbers.at("top1")[0]));
    CHECK(t.numbers.at("top1")[1] == 61.5);
    CHECK(std::isnan(t.numbers.at("top1")[2]));  // a diverged value, as printf writes it

    // a header alone is a run that has not measured anything yet
    CHECK(parse("epoch,step,split,loss\n").rows() == 0);
}

TEST_CASE("plot: metrics.csv without a header is refused") {
    CHECK_THROWS_WITH_AS(parse("0.5,100,train,2.3\n1,200,val,2.0\n"),
                         doctest::Contains("run/metrics.csv:1: the first line must be a header naming the columns"),
                         Error);
    CHECK_THROWS_WITH_AS(parse("\n\nepoch,,loss\n"), doctest::Contains("run/metrics.csv:3: the first line must be a header"),
                         Error);
    CHECK_THROWS_WITH_AS(parse(""), doctest::Contains("run/metrics.csv: the file is empty; expected a header line"), Error);
    CHECK_THROWS_WITH_AS(parse("epoch,loss,epoch\n"), doctest::Contains("column 'epoch' is named twice"), Error);
}

TEST_CASE("plot: a bad row in metrics.csv names the file, the line and the cell") {
    const std::string header = "epoch,step,split,loss,top1\n";
    CHECK_THROWS_WITH_AS(parse(header + "1,10,train,2.0,5\n2,20,train,abc,6\n"),
                         doctest::Contains("run/metrics.csv:3: column 'loss' holds 'abc', which is not a number"),
                         Error);
    CHECK_THROWS_WITH_AS(parse(header + "1,10,train,2.0,5%\n", "b.csv"),
                         doctest::Contains("b.csv:2: column 'top1' holds '5%', which is not a number"), Error);
    CHECK_THROWS_WITH_AS(parse(header + "1,10,train,2.0\n"),
                         doctest::Contains("run/metrics.csv:2: the row has 4 fields but the header names 5 columns"),
                         Error);
}

TEST_CASE("plot: a missing metrics file is an error naming it") {
    CHECK_THROWS_WITH_AS(read_metrics_table("/nonexistent/run/metrics.csv"),
                         doctest::Contains("cannot open metrics file '/nonexistent/run/metrics.csv'"), Error);
    TempDir dir;
    write_text(dir / "metrics.csv", "epoch,split,loss\n1,val,0.5\n");
    CHECK(read_metrics_table(dir / "metrics.csv").numbers.at("loss") == std::vector<double>{0.5});
}

// ---------------------------------------------------------------------------------------------
// The canvas

TEST_CASE("plot: a line covers the pixels along it and nothing beyond its width") {
    Canvas c(20, 20, kBackground);
    c.draw_line({2, 5}, {12, 5}, kRed, 1);  // horizontal, one pixel wide
    for (int x = 0; x < 20; ++x)
        for (int y = 0; y < 20; ++y) {
            CAPTURE(x);
            CAPTURE(y);
            CHECK(c.pixel(x, y) == ((y == 5 && x >= 2 && x <= 12) ? kRed : kBackground));
        }

    Canvas d(20, 20, kBackground);
    d.draw_line({3, 3}, {15, 15}, kRed, 2);  // diagonal: the centre pixels are fully covered
    for (int i = 3; i <= 15; ++i) CHECK(d.pixel(i, i) == kRed);
    CHECK(d.pixel(10, 6) == kBackground);  // far off the line
    CHECK(d.pixel(1, 1) == kBackground);   // beyond its end
    const Rgb edge = d.pixel(9, 8);        // one pixel off the centre: partly covered, a blend
    CHECK(edge.r > 200);
    CHECK(edge.g > 0);
    CHECK(edge.g < 255);

    Canvas e(40, 5, kBackground);
    e.draw_polyline({{0, 2}, {39, 2}}, kRed, 1, 5, 5);  // dashed: 5 on, 5 off
    CHECK(e.pixel(2, 2) == kRed);
    CHECK(e.pixel(8, 2) == kBackground);
    CHECK(e.pixel(12, 2) == kRed);
    CHECK(e.pixel(18, 2) == kBackground);
}

TEST_CASE("plot: text is drawn inside its box and every letter leaves ink") {
    const std::string text = "Ab1%.-q";
    const int scale = 2, x0 = 7, y0 = 11;
    Canvas c(120, 40, kBackground);
    c.draw_text(x0, y0, text, kRed, scale);
    const int w = Canvas::text_width(text, scale), h = Canvas::text_height(scale);
    CHECK(w == (6 * 7 - 1) * 2);
    CHECK(h == 16);
    for (int y = 0; y < c.height(); ++y)
        for (int x = 0; x < c.width(); ++x) {
            const bool inside = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
            if (!inside) CHECK(c.pixel(x, y) == kBackground);
        }
    for (std::size_t i = 0; i < text.size(); ++i) {  // each letter's cell has some ink
        int ink = 0;
        for (int y = y0; y < y0 + h; ++y)
            for (int x = x0 + static_cast<int>(i) * 12; x < x0 + static_cast<int>(i) * 12 + 10; ++x)
                ink += c.pixel(x, y) == kRed;
        CAPTURE(text[i]);
        CHECK(ink > 0);
    }
    // '1' at scale 1 is exactly its glyph: the stem in the middle column, the foot three wide
    Canvas one(5, 8, kBackground);
    one.draw_text(0, 0, "1", kRed);
    CHECK(one.pixel(2, 0) == kRed);
    CHECK(one.pixel(0, 0) == kBackground);
    CHECK(one.pixel(1, 6) == kRed);
    CHECK(one.pixel(3, 6) == kRed);
    CHECK(one.pixel(0, 6) == kBackground);
    CHECK(count_pixels(one, kRed) == 10);

    // turned text keeps to its turned box: h wide, w tall, above its starting point
    Canvas up(40, 120, kBackground);
    up.draw_text_up(5, 100, text, kRed, scale);
    int ink = 0;
    for (int y = 0; y < up.height(); ++y)
        for (int x = 0; x < up.width(); ++x) {
            const bool red = up.pixel(x, y) == kRed;
            ink += red;
            if (red) CHECK((x >= 5 && x < 5 + h && y <= 100 && y > 100 - w));
        }
    CHECK(ink == count_pixels(c, kRed));
}

TEST_CASE("plot: drawing off the canvas is clipped") {
    Canvas c(10, 10, kBackground);
    c.draw_line({-50, -50}, {60, 60}, kRed, 3);
    c.draw_text(-3, 8, "W", kRed, 3);
    c.fill_circle({12, 5}, 4, kRed);
    c.fill_rect(-5, -5, 2, 2, kRed);
    CHECK(c.pixel(5, 5) == kRed);
    CHECK(c.pixel(0, 0) == kRed);
}

#ifdef RETORT_HAVE_STB
TEST_CASE("plot: the PNG encoding keeps every pixel") {
    Canvas c(31, 17, {10, 20, 30});
    c.draw_line({0, 0}, {30, 16}, kRed, 2.5);
    c.draw_text(2, 2, "x=1", {0, 200, 50});
    const std::vector<std::uint8_t> png = encode_png(c);
    int w = 0, h = 0, channels = 0;
    unsigned char* decoded = stbi_load_from_memory(png.data(), static_cast<int>(png.size()), &w, &h, &channels, 3);
    REQUIRE(decoded != nullptr);
    CHECK(w == 31);
    CHECK(h == 17);
    CHECK(std::equal(c.rgb_bytes().begin(), c.rgb_bytes().end(), decoded));
    stbi_image_free(decoded);
}
#endif

// ---------------------------------------------------------------------------------------------
// The command end to end

TEST_CASE("plot: two runs become one PNG in which both runs' colours appear") {
    TempDir dir;
    write_text(dir / "runs/fast/metrics.csv", make_metrics(6, 0.6, true));
    // the second run writes top-1 as a fraction and lacks some columns
    std::string slow = make_metrics(4, 0.3, false);
    write_text(dir / "runs/slow/metrics.csv", slow);
    const std::string png = dir / "curves.png";
    const CliRun r = run_retort("plot " + (dir / "runs/fast") + " " + (dir / "runs/slow/") + " -o " + png);
#ifdef RETORT_HAVE_STB
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("wrote " + png) != std::string::npos);
    int w = 0, h = 0, channels = 0;
    unsigned char* image = stbi_load(png.c_str(), &w, &h, &channels, 3);
    REQUIRE(image != nullptr);
    CHECK(w == 1400);
    CHECK(h > 540);
    CHECK(h < 700);
    int seen[2] = {0, 0};
    for (int i = 0; i < w * h; ++i) {
        const Rgb p{image[3 * i], image[3 * i + 1], image[3 * i + 2]};
        for (int run = 0; run < 2; ++run) seen[run] += p == palette_color(run);
    }
    stbi_image_free(image);
    CHECK(seen[0] > 500);  // curves and markers, not just the legend swatch
    CHECK(seen[1] > 500);
    for (const auto& entry : fs::directory_iterator(dir.path))  // no temporary file left behind
        CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);

    // --output= works too, and a single run with only some columns still plots
    write_text(dir / "runs/lossonly/metrics.csv", "step,loss\n0,2.3\n100,1.2\n200,0.9\n");
    const CliRun one = run_retort("plot --output=" + png + " " + (dir / "runs/lossonly"));
    CHECK_MESSAGE(one.status == 0, one.output);
#else
    CHECK(r.status != 0);
    CHECK(r.output.find("built without stb") != std::string::npos);
    CHECK_FALSE(fs::exists(png));
#endif
}

TEST_CASE("plot: bad arguments or bad runs give a message, a non-zero exit and no PNG") {
    TempDir dir;
    write_text(dir / "good/metrics.csv", make_metrics(2, 0.5, true));
    write_text(dir / "bad/metrics.csv", "epoch,split,loss\n1,train,0.5\n2,train,oops\n");
    write_text(dir / "headless/metrics.csv", "1,train,0.5\n");
    write_text(dir / "nox/metrics.csv", "split,loss\ntrain,0.5\n");
    fs::create_directories(dir / "empty");
    const std::string png = dir / "out.png";
    const std::string good = dir / "good";
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {run_retort("plot -o " + png), "give at least one run directory"},
        {run_retort("plot " + good), "-o/--output is required"},
        {run_retort("plot " + good + " -o"), "-o needs a file name"},
        {run_retort("plot " + good + " --colour red -o " + png), "unknown option '--colour'"},
#ifdef RETORT_HAVE_STB
        {run_retort("plot " + good + " " + (dir / "bad") + " -o " + png),
         (dir / "bad/metrics.csv") + ":3: column 'loss' holds 'oops', which is not a number"},
        {run_retort("plot " + (dir / "headless") + " -o " + png), "headless/metrics.csv:1: the first line must be a header"},
        {run_retort("plot " + good + " " + (dir / "empty") + " -o " + png),
         "run directory '" + (dir / "empty") + "' has no metrics.csv"},
        {run_retort("plot " + (dir / "missing") + " -o " + png), "run directory '" + (dir / "missing") + "' does not exist"},
        {run_retort("plot " + (dir / "nox") + " -o " + png), "has neither an 'epoch' nor a 'step' column"},
        {run_retort("plot " + good + " -o " + (dir / "no/such/dir/out.png")), "cannot create"},
#else
        {run_retort("plot " + good + " -o " + png), "built without stb"},
#endif
    };
    for (const auto& [r, expected] : cases) {
        CAPTURE(r.output);
        CHECK(r.status != 0);
        CHECK(r.output.find(expected) != std::string::npos);
        CHECK_FALSE(fs::exists(png));
    }
    CHECK(run_retort("plot --help").status == 0);
}
