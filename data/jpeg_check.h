// data/jpeg_check.h: a check that keeps one hostile kind of JPEG away from stb_image.
//
// The stb_image that Debian ships (2.27) builds each Huffman table of a JPEG into arrays of 256
// symbols without checking that the table's 16 code-length counts add up to at most 256 (they must,
// by the JPEG standard: a byte has 256 values). A file whose counts add up to more makes stb write
// past those arrays, in stbi_info as well as in stbi_load. Later stb releases reject such tables;
// until then, retort walks the JPEG's markers the way stb does and refuses the file first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace retort {

// False when `bytes` is a JPEG with a Huffman table (DHT) that declares more than 256 symbols,
// anywhere stb_image would read one. True for every other input, including non-JPEG data and
// JPEGs that are damaged in other ways (stb reports those itself).
bool jpeg_huffman_tables_fit(const unsigned char* bytes, std::size_t size);

// The width and height in the first baseline, extended or progressive frame header (SOF0, SOF1,
// SOF2: the frames stb_image decodes) that the same walk meets; false when it meets none. Lets
// retort hold a JPEG's declared size against its limits before stb reads the file.
bool jpeg_frame_size(const unsigned char* bytes, std::size_t size, std::int64_t& width,
                     std::int64_t& height);

}  // namespace retort
