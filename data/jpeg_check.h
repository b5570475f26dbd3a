// data/jpeg_check.h: checks that keep two hostile kinds of JPEG away from stb_image.
//
// The stb_image that Debian ships (2.27) trusts two things a JPEG's markers declare:
//  - that each Huffman table's 16 code-length counts add up to at most 256 (they must, by the JPEG
//    standard: a byte has 256 values); a file whose counts add up to more makes stb write past
//    the arrays it builds the table in, in stbi_info as well as in stbi_load;
//  - that every Huffman table a scan decodes with was defined by a DHT segment before it; a scan
//    that names one that was not makes stb search a table it never built and read past the end
//    of its array of code lengths (found by fuzzing: tools/fuzz/fuzz_image).
// Later stb releases reject such files; until then, retort walks the JPEG's markers the way stb
// does and refuses the file first. The same walk reads the frame's declared size, so the size
// limits of data/image_folder.h apply before stb reads anything.
#pragma once

#include <cstddef>
#include <cstdint>

namespace retort {

// What one walk over a JPEG's markers finds. For input that is not a JPEG, every check passes and
// there is no frame.
struct JpegInspection {
    // False when a Huffman table (DHT) declares more than 256 symbols, anywhere stb would read one.
    bool huffman_tables_fit = true;
    // False when a scan decodes with a Huffman table no DHT segment before it defined (as Motion
    // JPEG frames do, which rely on the standard's example tables: stb has no such default).
    bool scan_tables_defined = true;
    // The first baseline, extended or progressive frame header (SOF0, SOF1, SOF2: the frames stb
    // decodes), if the walk meets one.
    bool has_frame = false;
    std::int64_t width = 0, height = 0;
};
JpegInspection inspect_jpeg(const unsigned char* bytes, std::size_t size);

// inspect_jpeg(bytes, size).huffman_tables_fit.
bool jpeg_huffman_tables_fit(const unsigned char* bytes, std::size_t size);

}  // namespace retort
