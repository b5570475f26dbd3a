// tools/plot_canvas.cpp: the RGB canvas behind `retort plot`: anti-aliased lines and circles, a
// 5x8 bitmap font, PNG encoding with stb_image_write.
//
// Anti-aliasing by distance: a pixel whose centre lies d pixels from a line of width w is covered
// by about clamp(w/2 + 0.5 - d, 0, 1), which is exact for a pixel-wide band crossing the centre
// and smooth everywhere else. A polyline first collects, per pixel, the largest coverage any of its
// pieces gives and blends once, so the joints of a curve are not painted twice (which would make
// them darker than the rest).
//
// This file holds the one copy of stb_image_write's implementation in the `retort` binary.
#include "tools/plot_canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/error.h"
#include "engine/io/atomic_file.h"

#ifdef RETORT_HAVE_STB
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#endif

namespace retort::cli {

namespace {

// ---------------------------------------------------------------------------------------------
// The font: 5 columns x 8 rows per character, '#' is ink. Rows 0-6 hold capitals and digits
// (row 6 is the baseline), row 7 is for descenders (g, j, p, q, y, comma). Each character is
// drawn in a cell one column wider, so letters keep a column of space between them.
constexpr int kGlyphWidth = 5, kGlyphHeight = 8, kCellWidth = 6;

struct Glyph {
    char c;
    const char* rows;  // 8 rows of 5, separated by spaces
};

constexpr Glyph kFont[] = {
    {' ', "..... ..... ..... ..... ..... ..... ..... ....."},
    {'!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.. ....."},
    {'"', ".#.#. .#.#. ..... ..... ..... ..... ..... ....."},
    {'#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#. ....."},
    {'$', "..#.. .#### #.#.. .###. ..#.# ####. ..#.. ....."},
    {'%', "##... ##..# ...#. ..#.. .#... #..## ...## ....."},
    {'&', ".##.. #..#. #.#.. .#... #.#.# #..#. .##.# ....."},
    {'\'', "..#.. ..#.. ..... ..... ..... ..... ..... ....."},
    {'(', "...#. ..#.. .#... .#... .#... ..#.. ...#. ....."},
    {')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#... ....."},
    {'*', "..... ..#.. #.#.# .###. #.#.# ..#.. ..... ....."},
    {'+', "..... ..#.. ..#.. ##### ..#.. ..#.. ..... ....."},
    {',', "..... ..... ..... ..... ..... .##.. ..#.. .#..."},
    {'-', "..... ..... ..... ##### ..... ..... ..... ....."},
    {'.', "..... ..... ..... ..... ..... .##.. .##.. ....."},
    {'/', "..... ....# ...#. ..#.. .#... #.... ..... ....."},
    {'0', ".###. #...# #..## #.#.# ##..# #...# .###. ....."},
    {'1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###. ....."},
    {'2', ".###. #...# ....# ...#. ..#.. .#... ##### ....."},
    {'3', "##### ...#. ..#.. ...#. ....# #...# .###. ....."},
    {'4', "...#. ..##. .#.#. #..#. ##### ...#. ...#. ....."},
    {'5', "##### #.... ####. ....# ....# #...# .###. ....."},
    {'6', "..##. .#... #.... ####. #...# #...# .###. ....."},
    {'7', "##### ....# ...#. ..#.. .#... .#... .#... ....."},
    {'8', ".###. #...# #...# .###. #...# #...# .###. ....."},
    {'9', ".###. #...# #...# .#### ....# ...#. .##.. ....."},
    {':', "..... .##.. .##.. ..... .##.. .##.. ..... ....."},
    {';', "..... .##.. .##.. ..... .##.. .##.. ..#.. .#..."},
    {'<', "...#. ..#.. .#... #.... .#... ..#.. ...#. ....."},
    {'=', "..... ..... ##### ..... ##### ..... ..... ....."},
    {'>', ".#... ..#.. ...#. ....# ...#. ..#.. .#... ....."},
    {'?', ".###. #...# ....# ...#. ..#.. ..... ..#.. ....."},
    {'@', ".###. #...# ....# .##.# #.#.# #.#.# .###. ....."},
    {'A', ".###. #...# #...# ##### #...# #...# #...# ....."},
    {'B', "####. #...# #...# ####. #...# #...# ####. ....."},
    {'C', ".###. #...# #.... #.... #.... #...# .###. ....."},
    {'D', "###.. #..#. #...# #...# #...# #..#. ###.. ....."},
    {'E', "##### #.... #.... ####. #.... #.... ##### ....."},
    {'F', "##### #.... #.... ####. #.... #.... #.... ....."},
    {'G', ".###. #...# #.... #.### #...# #...# .#### ....."},
    {'H', "#...# #...# #...# ##### #...# #...# #...# ....."},
    {'I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ....."},
    {'J', "..### ...#. ...#. ...#. ...#. #..#. .##.. ....."},
    {'K', "#...# #..#. #.#.. ##... #.#.. #..#. #...# ....."},
    {'L', "#.... #.... #.... #.... #.... #.... ##### ....."},
    {'M', "#...# ##.## #.#.# #.#.# #...# #...# #...# ....."},
    {'N', "#...# #...# ##..# #.#.# #..## #...# #...# ....."},
    {'O', ".###. #...# #...# #...# #...# #...# .###. ....."},
    {'P', "####. #...# #...# ####. #.... #.... #.... ....."},
    {'Q', ".###. #...# #...# #...# #.#.# #..#. .##.# ....."},
    {'R', "####. #...# #...# ####. #.#.. #..#. #...# ....."},
    {'S', ".#### #.... #.... .###. ....# ....# ####. ....."},
    {'T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ....."},
    {'U', "#...# #...# #...# #...# #...# #...# .###. ....."},
    {'V', "#...# #...# #...# #...# #...# .#.#. ..#.. ....."},
    {'W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#. ....."},
    {'X', "#...# #...# .#.#. ..#.. .#.#. #...# #...# ....."},
    {'Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.. ....."},
    {'Z', "##### ....# ...#. ..#.. .#... #.... ##### ....."},
    {'[', ".###. .#... .#... .#... .#... .#... .###. ....."},
    {'\\', "..... #.... .#... ..#.. ...#. ....# ..... ....."},
    {']', ".###. ...#. ...#. ...#. ...#. ...#. .###. ....."},
    {'^', "..#.. .#.#. #...# ..... ..... ..... ..... ....."},
    {'_', "..... ..... ..... ..... ..... ..... ..... #####"},
    {'`', ".#... ..#.. ..... ..... ..... ..... ..... ....."},
    {'a', "..... ..... .###. ....# .#### #...# .#### ....."},
    {'b', "#.... #.... #.##. ##..# #...# #...# ####. ....."},
    {'c', "..... ..... .###. #.... #.... #...# .###. ....."},
    {'d', "....# ....# .##.# #..## #...# #...# .#### ....."},
    {'e', "..... ..... .###. #...# ##### #.... .###. ....."},
    {'f', "..##. .#..# .#... ###.. .#... .#... .#... ....."},
    {'g', "..... ..... .#### #...# #...# .#### ....# .###."},
    {'h', "#.... #.... #.##. ##..# #...# #...# #...# ....."},
    {'i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###. ....."},
    {'j', "...#. ..... ..##. ...#. ...#. ...#. #..#. .##.."},
    {'k', "#.... #.... #..#. #.#.. ##... #.#.. #..#. ....."},
    {'l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ....."},
    {'m', "..... ..... ##.#. #.#.# #.#.# #...# #...# ....."},
    {'n', "..... ..... #.##. ##..# #...# #...# #...# ....."},
    {'o', "..... ..... .###. #...# #...# #...# .###. ....."},
    {'p', "..... ..... ####. #...# #...# ####. #.... #...."},
    {'q', "..... ..... .#### #...# #...# .#### ....# ....#"},
    {'r', "..... ..... #.##. ##..# #.... #.... #.... ....."},
    {'s', "..... ..... .#### #.... .###. ....# ####. ....."},
    {'t', ".#... .#... ###.. .#... .#... .#..# ..##. ....."},
    {'u', "..... ..... #...# #...# #...# #..## .##.# ....."},
    {'v', "..... ..... #...# #...# #...# .#.#. ..#.. ....."},
    {'w', "..... ..... #...# #...# #.#.# #.#.# .#.#. ....."},
    {'x', "..... ..... #...# .#.#. ..#.. .#.#. #...# ....."},
    {'y', "..... ..... #...# #...# #...# .#### ....# .###."},
    {'z', "..... ..... ##### ...#. ..#.. .#... ##### ....."},
    {'{', "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#. ....."},
    {'|', "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ....."},
    {'}', ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#... ....."},
    {'~', "..... ..... .#... #.#.# ...#. ..... ..... ....."},
};

// The rows of `c`'s glyph; a character the font lacks is drawn as '?'.
const char* glyph_rows(char c) {
    for (const Glyph& g : kFont)
        if (g.c == c) return g.rows;
    return glyph_rows('?');
}

bool glyph_ink(const char* rows, int col, int row) {
    return rows[row * (kGlyphWidth + 1) + col] == '#';
}

// ---------------------------------------------------------------------------------------------
// Coverage of a shape before it is blended: the largest coverage seen per pixel of a box.
class CoverageMask {
public:
    CoverageMask(int x0, int y0, int x1, int y1)
        : x0_(x0), y0_(y0), w_(std::max(0, x1 - x0 + 1)), h_(std::max(0, y1 - y0 + 1)),
          cover_(static_cast<std::size_t>(w_) * h_, 0.0f) {}

    // Adds a capsule: every point within width/2 of the segment ab.
    void add_segment(Point a, Point b, double width) {
        const double reach = width / 2 + 1;
        const int xa = std::max(x0_, static_cast<int>(std::floor(std::min(a.x, b.x) - reach)));
        const int xb = std::min(x0_ + w_ - 1, static_cast<int>(std::ceil(std::max(a.x, b.x) + reach)));
        const int ya = std::max(y0_, static_cast<int>(std::floor(std::min(a.y, b.y) - reach)));
        const int yb = std::min(y0_ + h_ - 1, static_cast<int>(std::ceil(std::max(a.y, b.y) + reach)));
        const double dx = b.x - a.x, dy = b.y - a.y, length2 = dx * dx + dy * dy;
        for (int y = ya; y <= yb; ++y)
            for (int x = xa; x <= xb; ++x) {
                // the nearest point of the segment: the projection, clamped to the ends
                double t = length2 > 0 ? ((x - a.x) * dx + (y - a.y) * dy) / length2 : 0;
                t = std::clamp(t, 0.0, 1.0);
                const double d = std::hypot(x - (a.x + t * dx), y - (a.y + t * dy));
                cover(x, y, width / 2 + 0.5 - d);
            }
    }

    void blend_onto(Canvas& canvas, Rgb color) const {
        for (int y = 0; y < h_; ++y)
            for (int x = 0; x < w_; ++x)
                if (float c = cover_[static_cast<std::size_t>(y) * w_ + x]; c > 0)
                    canvas.blend(x0_ + x, y0_ + y, color, c);
    }

private:
    int x0_, y0_, w_, h_;
    std::vector<float> cover_;

    void cover(int x, int y, double amount) {
        float& c = cover_[static_cast<std::size_t>(y - y0_) * w_ + (x - x0_)];
        c = std::max(c, static_cast<float>(std::clamp(amount, 0.0, 1.0)));
    }
};

double distance(Point a, Point b) { return std::hypot(b.x - a.x, b.y - a.y); }

Point along(Point a, Point b, double s) {  // the point s pixels from a toward b
    const double length = distance(a, b);
    if (length == 0) return a;
    return {a.x + (b.x - a.x) * s / length, a.y + (b.y - a.y) * s / length};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Colours

Rgb mix(Rgb a, Rgb b, double t) {
    auto channel = [t](std::uint8_t x, std::uint8_t y) {
        return static_cast<std::uint8_t>(std::lround(x + (y - x) * std::clamp(t, 0.0, 1.0)));
    };
    return {channel(a.r, b.r), channel(a.g, b.g), channel(a.b, b.b)};
}

namespace {
// Saturated hues that stay apart from each other and from the grey of the axes.
constexpr Rgb kPalette[] = {
    {31, 110, 190}, {235, 110, 0},  {30, 150, 60},   {205, 35, 40},  {135, 85, 190},
    {140, 85, 60},  {215, 90, 170}, {0, 160, 170},  {165, 160, 20}, {90, 90, 90},
};
}  // namespace

std::size_t palette_size() { return std::size(kPalette); }
Rgb palette_color(std::size_t index) { return kPalette[index % std::size(kPalette)]; }

// ---------------------------------------------------------------------------------------------
// Canvas

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
    require(width > 0 && height > 0, "plot: canvas size must be positive, got ", width, "x", height);
    pixels_.resize(static_cast<std::size_t>(width) * height * 3);
    for (std::size_t i = 0; i < pixels_.size(); i += 3) {
        pixels_[i] = background.r;
        pixels_[i + 1] = background.g;
        pixels_[i + 2] = background.b;
    }
}

Rgb Canvas::pixel(int x, int y) const {
    internal_check(x >= 0 && x < width_ && y >= 0 && y < height_, "pixel inside the canvas");
    const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
    return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

void Canvas::blend(int x, int y, Rgb color, double coverage) {
    if (x < 0 || x >= width_ || y < 0 || y >= height_ || coverage <= 0) return;
    const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
    const Rgb mixed = mix({pixels_[i], pixels_[i + 1], pixels_[i + 2]}, color, coverage);
    pixels_[i] = mixed.r;
    pixels_[i + 1] = mixed.g;
    pixels_[i + 2] = mixed.b;
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Rgb color) {
    for (int y = std::max(0, y0); y <= std::min(height_ - 1, y1); ++y)
        for (int x = std::max(0, x0); x <= std::min(width_ - 1, x1); ++x) blend(x, y, color, 1);
}

void Canvas::draw_rect(int x0, int y0, int x1, int y1, Rgb color) {
    fill_rect(x0, y0, x1, y0, color);
    fill_rect(x0, y1, x1, y1, color);
    fill_rect(x0, y0, x0, y1, color);
    fill_rect(x1, y0, x1, y1, color);
}

void Canvas::fill_circle(Point centre, double radius, Rgb color) {
    draw_polyline({centre}, color, 2 * radius);  // a line of length zero is a disc
}

void Canvas::draw_line(Point a, Point b, Rgb color, double width) {
    draw_polyline({a, b}, color, width);
}

void Canvas::draw_polyline(const std::vector<Point>& points, Rgb color, double width, double dash,
                           double gap) {
    if (points.empty()) return;
    double left = points[0].x, right = left, top = points[0].y, bottom = top;
    for (const Point& p : points) {
        left = std::min(left, p.x), right = std::max(right, p.x);
        top = std::min(top, p.y), bottom = std::max(bottom, p.y);
    }
    const double reach = width / 2 + 1;
    CoverageMask mask(std::max(0, static_cast<int>(std::floor(left - reach))),
                      std::max(0, static_cast<int>(std::floor(top - reach))),
                      std::min(width_ - 1, static_cast<int>(std::ceil(right + reach))),
                      std::min(height_ - 1, static_cast<int>(std::ceil(bottom + reach))));
    if (points.size() == 1) mask.add_segment(points[0], points[0], width);
    const bool dashed = dash > 0 && gap > 0;
    const double period = dash + gap;
    double travelled = 0;  // path length before the current segment: where the dash pattern is
    for (std::size_t i = 1; i < points.size(); ++i) {
        const Point a = points[i - 1], b = points[i];
        const double length = distance(a, b);
        if (!dashed) {
            mask.add_segment(a, b, width);
        } else {
            // walk the segment from one dash boundary to the next
            for (double s = 0; s < length;) {
                const double t = travelled + s;
                const double period_start = std::floor(t / period) * period;
                const bool on = t < period_start + dash;
                const double next = std::max(on ? period_start + dash : period_start + period, t + 1e-6);
                const double e = std::min(length, next - travelled);
                if (on) mask.add_segment(along(a, b, s), along(a, b, e), width);
                s = e;
            }
        }
        travelled += length;
    }
    mask.blend_onto(*this, color);
}

int Canvas::text_width(const std::string& text, int scale) {
    if (text.empty()) return 0;
    return (static_cast<int>(text.size()) * kCellWidth - 1) * scale;
}

int Canvas::text_height(int scale) { return kGlyphHeight * scale; }

void Canvas::draw_text(int x, int y, const std::string& text, Rgb color, int scale) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char* rows = glyph_rows(text[i]);
        const int left = x + static_cast<int>(i) * kCellWidth * scale;
        for (int row = 0; row < kGlyphHeight; ++row)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (glyph_ink(rows, col, row))
                    fill_rect(left + col * scale, y + row * scale, left + (col + 1) * scale - 1,
                              y + (row + 1) * scale - 1, color);
    }
}

void Canvas::draw_text_up(int x, int y, const std::string& text, Rgb color, int scale) {
    // turned a quarter to the left: the glyph's columns run up the canvas, its rows to the right
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char* rows = glyph_rows(text[i]);
        const int bottom = y - static_cast<int>(i) * kCellWidth * scale;
        for (int row = 0; row < kGlyphHeight; ++row)
            for (int col = 0; col < kGlyphWidth; ++col)
                if (glyph_ink(rows, col, row))
                    fill_rect(x + row * scale, bottom - (col + 1) * scale + 1, x + (row + 1) * scale - 1,
                              bottom - col * scale, color);
    }
}

// ---------------------------------------------------------------------------------------------
// PNG output

bool can_write_png() {
#ifdef RETORT_HAVE_STB
    return true;
#else
    return false;
#endif
}

std::vector<std::uint8_t> encode_png(const Canvas& canvas) {
#ifdef RETORT_HAVE_STB
    std::vector<std::uint8_t> png;
    auto append = [](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<std::uint8_t>*>(context);
        const auto* bytes = static_cast<const std::uint8_t*>(data);
        out->insert(out->end(), bytes, bytes + size);
    };
    const int ok = stbi_write_png_to_func(append, &png, canvas.width(), canvas.height(), 3,
                                          canvas.rgb_bytes().data(), canvas.width() * 3);
    require(ok != 0 && !png.empty(), "plot: stb_image_write could not encode the ", canvas.width(),
            "x", canvas.height(), " image as PNG");
    return png;
#else
    (void)canvas;
    fail("plot: retort was built without stb (RETORT_STB=OFF or RETORT_MINIMAL=ON, or libstb-dev missing "
         "when it was configured; rebuild with libstb-dev installed and RETORT_STB=ON), "
         "so it cannot write PNG files");
#endif
}

void write_png(const Canvas& canvas, const std::string& path) {
    const std::vector<std::uint8_t> png = encode_png(canvas);
    try {
        write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
    } catch (const Error& e) {
        fail("plot: ", e.what());
    }
}

}  // namespace retort::cli
