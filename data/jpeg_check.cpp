// data/jpeg_check.cpp: finding oversized or missing Huffman tables and the declared frame size of
// a JPEG before stb_image reads it (why: jpeg_check.h).
//
// A JPEG is a sequence of markers (0xFF, then a code), most followed by a 16-bit big-endian length
// that counts itself. After a start-of-scan (SOS) segment come entropy-coded bytes, in which 0xFF
// is always followed by 0x00 (stuffing) or a restart marker 0xD0..0xD7; the first other marker ends
// the scan. A DHT segment holds tables of [class/id byte, 16 counts, sum-of-counts symbols].
//
// The walk reads the bytes as stb_image does (past the end, every byte reads as 0) and visits at
// least every DHT table stb would build: where stb gives up on a damaged file, the walk goes on
// looking, so it can only check more tables and scans than stb reads, never fewer. The same walk
// records the first frame header (SOF0..SOF2) it passes.
#include "data/jpeg_check.h"

#include <algorithm>

namespace retort {

namespace {

class Cursor {
public:
    Cursor(const unsigned char* bytes, std::size_t size) : bytes_(bytes), size_(size) {}
    bool at_end() const { return pos_ >= size_; }
    std::size_t pos() const { return pos_; }
    void seek(std::size_t pos) { pos_ = std::min(pos, size_); }
    unsigned get8() { return pos_ < size_ ? bytes_[pos_++] : 0u; }
    unsigned get16() {
        const unsigned high = get8();
        return (high << 8) | get8();
    }

private:
    const unsigned char* bytes_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

constexpr int kEnd = -1;

bool is_restart(int code) { return code >= 0xD0 && code <= 0xD7; }

// The code of the next marker: skips to the next 0xFF, then over 0xFF fill bytes.
int next_marker(Cursor& in) {
    while (!in.at_end()) {
        if (in.get8() != 0xFF) continue;
        while (!in.at_end()) {
            const unsigned code = in.get8();
            if (code != 0xFF) return static_cast<int>(code);
        }
    }
    return kEnd;
}

// The marker that ends entropy-coded data (stuffed 0xFF00 and restart markers belong to it).
int marker_after_scan(Cursor& in) {
    for (;;) {
        const int code = next_marker(in);
        if (code == kEnd || (code != 0x00 && !is_restart(code))) return code;
    }
}

enum class Tables { fit, too_many_symbols, malformed };

// defined[class][id]: whether a DHT segment has defined the table (class 0 DC, 1 AC; id 0..3).
using DefinedTables = bool[2][4];

// A DHT segment, table by table, while its remaining length is positive (as stb reads it).
Tables check_dht(Cursor& in, DefinedTables& defined) {
    long remaining = static_cast<long>(in.get16()) - 2;
    while (remaining > 0) {
        const unsigned class_and_id = in.get8();
        if ((class_and_id >> 4) > 1 || (class_and_id & 15) > 3) return Tables::malformed;
        long symbols = 0;
        for (int length = 0; length < 16; ++length) symbols += in.get8();
        if (symbols > 256) return Tables::too_many_symbols;
        defined[class_and_id >> 4][class_and_id & 15] = true;
        in.seek(in.pos() + static_cast<std::size_t>(symbols));
        remaining -= 17 + symbols;
    }
    return remaining == 0 ? Tables::fit : Tables::malformed;
}

// A scan header (after its length): whether every table its components decode with is defined.
// stb decodes a baseline scan with both tables of each component; a progressive scan with the DC
// table only in a first DC scan (spectral start 0, successive approximation high 0), with the AC
// table only in an AC scan (spectral start above 0), and with none in a DC refinement scan.
bool scan_tables_defined(Cursor& in, bool progressive, const DefinedTables& defined) {
    const unsigned components = in.get8();
    if (components < 1 || components > 4) return true;  // stb refuses the scan itself
    unsigned selectors[4] = {};
    for (unsigned c = 0; c < components; ++c) {
        in.get8();  // component id
        selectors[c] = in.get8();
    }
    const unsigned spectral_start = in.get8();
    in.get8();  // spectral end
    const unsigned approximation_high = in.get8() >> 4;
    const bool uses_dc = !progressive || (spectral_start == 0 && approximation_high == 0);
    const bool uses_ac = !progressive || spectral_start > 0;
    for (unsigned c = 0; c < components; ++c) {
        const unsigned dc = selectors[c] >> 4, ac = selectors[c] & 15;
        if (dc > 3 || ac > 3) return true;  // stb refuses the scan itself
        if ((uses_dc && !defined[0][dc]) || (uses_ac && !defined[1][ac])) return false;
    }
    return true;
}

bool is_decoded_frame(int code) { return code == 0xC0 || code == 0xC1 || code == 0xC2; }

}  // namespace

JpegInspection inspect_jpeg(const unsigned char* bytes, std::size_t size) {
    JpegInspection found;
    if (size < 2 || bytes[0] != 0xFF) return found;  // not a JPEG: stb needs 0xFF first
    Cursor in(bytes, size);
    if (next_marker(in) != 0xD8) return found;  // no start-of-image: stb refuses it
    DefinedTables defined = {};
    bool progressive = false;
    int code = next_marker(in);
    while (code != kEnd && code != 0xD9) {  // until the end-of-image marker
        if (code == 0xC4) {
            const Tables tables = check_dht(in, defined);
            if (tables == Tables::too_many_symbols) found.huffman_tables_fit = false;
            if (tables != Tables::fit) return found;  // stb stops reading here
            code = next_marker(in);
        } else if (code == 0x00 || code == 0x01 || code == 0xD8 || is_restart(code)) {
            code = next_marker(in);  // no length follows
        } else {
            const std::size_t start = in.pos();
            const unsigned length = in.get16();
            if (length < 2) return found;  // stb refuses a length that does not count itself
            if (is_decoded_frame(code) && !found.has_frame) {
                in.get8();  // sample precision
                found.has_frame = true;
                found.height = in.get16();
                found.width = in.get16();
                progressive = code == 0xC2;
            }
            if (code == 0xDA && !scan_tables_defined(in, progressive, defined))
                found.scan_tables_defined = false;  // and on: later DHT segments are checked too
            in.seek(start + length);
            code = code == 0xDA ? marker_after_scan(in) : next_marker(in);
        }
    }
    return found;
}

bool jpeg_huffman_tables_fit(const unsigned char* bytes, std::size_t size) {
    return inspect_jpeg(bytes, size).huffman_tables_fit;
}

}  // namespace retort
