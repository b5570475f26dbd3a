// tools/plot_canvas.h: a small RGB drawing surface for `retort plot`: anti-aliased lines of any
// width (solid or dashed), filled rectangles and circles, and text in a built-in 5x8 bitmap font
// (printable ASCII), plus PNG output through stb_image_write.
//
// Coordinates are in pixels, x to the right and y down; the centre of pixel (x, y) is the point
// (x, y), so a line between integer points covers exactly the pixels it passes through. Anything
// drawn outside the canvas is clipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace retort::cli {

struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;
    bool operator==(const Rgb&) const = default;
};

struct Point {
    double x = 0, y = 0;
};

// Mixes `a` toward `b`: t = 0 gives a, t = 1 gives b.
Rgb mix(Rgb a, Rgb b, double t);

// Distinguishable colours, one per curve set; the index wraps around after the last.
Rgb palette_color(std::size_t index);
std::size_t palette_size();

class Canvas {
public:
    Canvas(int width, int height, Rgb background);

    int width() const { return width_; }
    int height() const { return height_; }
    Rgb pixel(int x, int y) const;
    const std::vector<std::uint8_t>& rgb_bytes() const { return pixels_; }  // row-major, 3 per pixel

    // Covers the pixel by `coverage` (0..1) of `color` over what is there.
    void blend(int x, int y, Rgb color, double coverage);
    // Every pixel with x0 <= x <= x1 and y0 <= y <= y1.
    void fill_rect(int x0, int y0, int x1, int y1, Rgb color);
    void draw_rect(int x0, int y0, int x1, int y1, Rgb color);  // a one-pixel outline
    void fill_circle(Point centre, double radius, Rgb color);
    // A line `width` pixels wide with round ends; pixels along its centre get the full colour.
    void draw_line(Point a, Point b, Rgb color, double width);
    // Consecutive points joined by lines. With dash > 0 the path is drawn `dash` pixels on, `gap`
    // off, measured along the path so the pattern runs on smoothly through the corners.
    void draw_polyline(const std::vector<Point>& points, Rgb color, double width, double dash = 0,
                       double gap = 0);

    // Text with its top-left corner at (x, y); each font pixel becomes a scale x scale block.
    void draw_text(int x, int y, const std::string& text, Rgb color, int scale = 1);
    // The same text turned a quarter to the left, read bottom to top, starting at (x, y) which
    // is the bottom-left corner of the first letter as it appears on the canvas.
    void draw_text_up(int x, int y, const std::string& text, Rgb color, int scale = 1);

    static int text_width(const std::string& text, int scale = 1);
    static int text_height(int scale = 1);  // a line's height, descenders included

private:
    int width_, height_;
    std::vector<std::uint8_t> pixels_;
};

// True when this binary was built with stb_image_write and so can write PNG files.
bool can_write_png();
// The canvas as a PNG file's bytes. Throws a retort::Error when built without stb.
std::vector<std::uint8_t> encode_png(const Canvas& canvas);
// Writes the PNG through write_file_atomically (engine/io/atomic_file.h), so `path` is either
// untouched or the whole image.
void write_png(const Canvas& canvas, const std::string& path);

}  // namespace retort::cli
