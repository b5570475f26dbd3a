// engine/io/json.cpp: the strict JSON parser and the compact writer of engine/io/json.h.
//
// The parser is plain recursive descent over the grammar of RFC 8259. Recursion happens only
// when an array or object opens, and depth is counted there, so the stack use is bounded by
// max_depth whatever the input. Offsets in error messages count bytes from the start of the text.
#include "engine/io/json.h"

#include <charconv>
#include <cmath>
#include <set>
#include <utility>

#include "engine/error.h"

namespace retort::json {

// ---------------------------------------------------------------------------------------------
// Value

Value::Value() = default;
Value::Value(std::nullptr_t) {}
Value::Value(bool b) : data_(b) {}
Value::Value(int i) : data_(static_cast<std::int64_t>(i)) {}
Value::Value(std::int64_t i) : data_(i) {}
Value::Value(double d) : data_(d) {}
Value::Value(const char* s) : data_(std::string(s)) {}
Value::Value(std::string s) : data_(std::move(s)) {}
Value::Value(Array a) : data_(std::move(a)) {}
Value::Value(Object o) : data_(std::move(o)) {}
Value::Value(const Value&) = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(const Value&) = default;
Value& Value::operator=(Value&&) noexcept = default;
Value::~Value() = default;

bool operator==(const Value& a, const Value& b) { return a.data_ == b.data_; }

const char* type_name(Value::Type type) {
    switch (type) {
        case Value::Type::null: return "null";
        case Value::Type::boolean: return "boolean";
        case Value::Type::integer: return "integer";
        case Value::Type::real: return "number";
        case Value::Type::string: return "string";
        case Value::Type::array: return "array";
        case Value::Type::object: return "object";
    }
    return "unknown";
}

namespace {

[[noreturn]] void wrong_type(Value::Type wanted, Value::Type got) {
    fail("JSON: expected ", type_name(wanted), ", got ", type_name(got));
}

}  // namespace

bool Value::as_bool() const {
    if (!is_bool()) wrong_type(Type::boolean, type());
    return std::get<bool>(data_);
}

std::int64_t Value::as_int() const {
    if (!is_integer()) wrong_type(Type::integer, type());
    return std::get<std::int64_t>(data_);
}

double Value::as_double() const {
    if (is_integer()) return static_cast<double>(std::get<std::int64_t>(data_));
    if (type() != Type::real) wrong_type(Type::real, type());
    return std::get<double>(data_);
}

const std::string& Value::as_string() const {
    if (!is_string()) wrong_type(Type::string, type());
    return std::get<std::string>(data_);
}

const Array& Value::as_array() const {
    if (!is_array()) wrong_type(Type::array, type());
    return std::get<Array>(data_);
}

const Object& Value::as_object() const {
    if (!is_object()) wrong_type(Type::object, type());
    return std::get<Object>(data_);
}

Array& Value::as_array() { return const_cast<Array&>(std::as_const(*this).as_array()); }
Object& Value::as_object() { return const_cast<Object&>(std::as_const(*this).as_object()); }

const Value* Value::find(std::string_view key) const {
    for (const Member& m : as_object())
        if (m.key == key) return &m.value;
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// UTF-8

namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence that starts at text[pos], or 0 if it is not one.
// The ranges for the second byte are those of the Unicode standard's table 3-7: they exclude
// overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16 surrogates (ED A0..BF) and code
// points above U+10FFFF (F4 90.., F5..FF).
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
    auto byte = [&](std::size_t i) -> unsigned char {
        return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0;
    };
    const unsigned char lead = byte(0);
    if (lead < 0x80) return 1;
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return 0;
    }
    if (byte(1) < low || byte(1) > high) return 0;
    for (std::size_t i = 2; i < length; ++i)
        if (!is_continuation(byte(i))) return 0;
    return length;
}

void append_utf8(std::string& out, std::uint32_t code_point) {
    auto put = [&](std::uint32_t bits) { out.push_back(static_cast<char>(bits)); };
    if (code_point < 0x80) {
        put(code_point);
    } else if (code_point < 0x800) {
        put(0xC0 | (code_point >> 6));
        put(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        put(0xE0 | (code_point >> 12));
        put(0x80 | ((code_point >> 6) & 0x3F));
        put(0x80 | (code_point & 0x3F));
    } else {
        put(0xF0 | (code_point >> 18));
        put(0x80 | ((code_point >> 12) & 0x3F));
        put(0x80 | ((code_point >> 6) & 0x3F));
        put(0x80 | (code_point & 0x3F));
    }
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t n = utf8_sequence_length(text, pos);
        if (n == 0) return false;
        pos += n;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Parser

namespace {

class Parser {
public:
    Parser(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

    Value parse_document() {
        skip_whitespace();
        Value v = parse_value(0);
        skip_whitespace();
        if (pos_ != text_.size()) error("unexpected text after the JSON value");
        return v;
    }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
    int max_depth_;

    [[noreturn]] void error(const std::string& what) const { error_at(what, pos_); }
    [[noreturn]] void error_at(const std::string& what, std::size_t offset) const {
        fail("invalid JSON: ", what, " at byte ", offset);
    }

    bool at_end() const { return pos_ >= text_.size(); }
    // At the end peek() gives '\0', which matches no token, so callers need no separate check.
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    void skip_whitespace() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
            ++pos_;
    }

    void expect(char c) {
        if (peek() != c) error(cat("expected '", c, "'", found()));
        ++pos_;
    }

    // ", found 'x'" or ", found the end of the text": the tail of most syntax errors.
    std::string found() const {
        if (at_end()) return ", found the end of the text";
        const unsigned char c = static_cast<unsigned char>(peek());
        if (c >= 0x20 && c < 0x7F) return cat(", found '", static_cast<char>(c), "'");
        return cat(", found byte 0x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    }

    Value parse_value(int depth) {
        switch (peek()) {
            case '{': return parse_object(depth + 1);
            case '[': return parse_array(depth + 1);
            case '"': return Value(parse_string());
            case 't': parse_literal("true"); return Value(true);
            case 'f': parse_literal("false"); return Value(false);
            case 'n': parse_literal("null"); return Value();
            default: break;
        }
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        error(cat("expected a JSON value", found()));
    }

    void enter(int depth) const {
        if (depth > max_depth_) error(cat("nesting deeper than ", max_depth_, " levels"));
    }

    Value parse_array(int depth) {
        enter(depth);
        expect('[');
        Array items;
        skip_whitespace();
        if (peek() == ']') {
            ++pos_;
            return Value(std::move(items));
        }
        while (true) {
            skip_whitespace();
            items.push_back(parse_value(depth));
            skip_whitespace();
            if (peek() == ']') break;
            if (peek() != ',') error(cat("expected ',' or ']' in an array", found()));
            ++pos_;
        }
        ++pos_;
        return Value(std::move(items));
    }

    Value parse_object(int depth) {
        enter(depth);
        expect('{');
        Object members;
        std::set<std::string, std::less<>> keys;
        skip_whitespace();
        if (peek() == '}') {
            ++pos_;
            return Value(std::move(members));
        }
        while (true) {
            skip_whitespace();
            const std::size_t key_at = pos_;
            if (peek() != '"') error(cat("expected a string key in an object", found()));
            std::string key = parse_string();
            if (!keys.insert(key).second) error_at(cat("duplicate key \"", key, "\""), key_at);
            skip_whitespace();
            expect(':');
            skip_whitespace();
            members.push_back({std::move(key), parse_value(depth)});
            skip_whitespace();
            if (peek() == '}') break;
            if (peek() != ',') error(cat("expected ',' or '}' in an object", found()));
            ++pos_;
        }
        ++pos_;
        return Value(std::move(members));
    }

    void parse_literal(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) error(cat("invalid literal, expected ", word));
        pos_ += word.size();
    }

    std::string parse_string() {
        const std::size_t start = pos_;
        expect('"');
        std::string out;
        while (true) {
            if (at_end()) error_at("unterminated string", start);
            const unsigned char c = static_cast<unsigned char>(peek());
            if (c == '"') break;
            if (c < 0x20) error("control character in a string (it must be escaped)");
            if (c == '\\') {
                parse_escape(out);
            } else if (c < 0x80) {
                out.push_back(static_cast<char>(c));
                ++pos_;
            } else {
                const std::size_t n = utf8_sequence_length(text_, pos_);
                if (n == 0) error("invalid UTF-8 in a string");
                out.append(text_.substr(pos_, n));
                pos_ += n;
            }
        }
        ++pos_;
        return out;
    }

    void parse_escape(std::string& out) {
        const std::size_t start = pos_;
        ++pos_;  // the backslash
        const char c = peek();
        if (at_end()) error_at("unterminated string", start);
        ++pos_;
        switch (c) {
            case '"': out.push_back('"'); return;
            case '\\': out.push_back('\\'); return;
            case '/': out.push_back('/'); return;
            case 'b': out.push_back('\b'); return;
            case 'f': out.push_back('\f'); return;
            case 'n': out.push_back('\n'); return;
            case 'r': out.push_back('\r'); return;
            case 't': out.push_back('\t'); return;
            case 'u': break;
            default: error_at("invalid escape sequence in a string", start);
        }
        std::uint32_t code = parse_hex4(start);
        if (code >= 0xDC00 && code <= 0xDFFF) error_at("lone low surrogate in \\u escape", start);
        if (code >= 0xD800 && code <= 0xDBFF) {
            // a high surrogate must be followed by a \u escape holding the low half of the pair
            const char* unpaired = "high surrogate not followed by a low one";
            const std::size_t low_at = pos_;
            if (text_.substr(pos_, 2) != "\\u") error_at(unpaired, start);
            pos_ += 2;
            const std::uint32_t low = parse_hex4(low_at);
            if (low < 0xDC00 || low > 0xDFFF) error_at(unpaired, start);
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, code);
    }

    std::uint32_t parse_hex4(std::size_t escape_start) {
        std::uint32_t code = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = peek();
            int digit = -1;
            if (c >= '0' && c <= '9') digit = c - '0';
            if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
            if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
            if (digit < 0) error_at("\\u escape needs four hex digits", escape_start);
            code = code * 16 + static_cast<std::uint32_t>(digit);
            ++pos_;
        }
        return code;
    }

    // number = [-] (0 | [1-9][0-9]*) [. [0-9]+] [(e|E) [+-] [0-9]+]
    // Integers (no fraction, no exponent) become int64; anything else a double.
    Value parse_number() {
        const std::size_t start = pos_;
        auto digits = [&] {
            const std::size_t from = pos_;
            while (peek() >= '0' && peek() <= '9') ++pos_;
            return pos_ - from;
        };
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
            if (peek() >= '0' && peek() <= '9') error_at("number with a leading zero", start);
        } else if (digits() == 0) {
            error_at("'-' is not followed by a digit", start);
        }
        bool integer = true;
        if (peek() == '.') {
            ++pos_;
            integer = false;
            if (digits() == 0) error("a decimal point must be followed by a digit");
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            integer = false;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (digits() == 0) error("an exponent needs a digit");
        }
        const char* first = text_.data() + start;
        const char* last = text_.data() + pos_;
        const std::string_view literal(first, pos_ - start);
        if (integer) {
            std::int64_t value = 0;
            if (std::from_chars(first, last, value).ec != std::errc())
                error_at(cat("integer ", literal, " does not fit in 64 bits"), start);
            return Value(value);
        }
        double value = 0;
        const auto result = std::from_chars(first, last, value);
        if (result.ec != std::errc() || !std::isfinite(value))
            error_at(cat("number ", literal, " is out of range for a double"), start);
        return Value(value);
    }
};

}  // namespace

Value parse(std::string_view text, int max_depth) {
    return Parser(text, max_depth).parse_document();
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

void dump_string(std::string& out, const std::string& s) {
    require(is_valid_utf8(s), "JSON: cannot write a string that is not valid UTF-8");
    out.push_back('"');
    for (char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back("0123456789abcdef"[c >> 4]);
                    out.push_back("0123456789abcdef"[c & 15]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

void dump_value(std::string& out, const Value& v) {
    switch (v.type()) {
        case Value::Type::null: out += "null"; return;
        case Value::Type::boolean: out += v.as_bool() ? "true" : "false"; return;
        case Value::Type::integer: out += std::to_string(v.as_int()); return;
        case Value::Type::real: {
            const double d = v.as_double();
            require(std::isfinite(d), "JSON: cannot write the non-finite number ", d);
            char buffer[32];
            // shortest text that reads back to the same double
            const auto result = std::to_chars(buffer, buffer + sizeof(buffer), d);
            std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
            out += text;
            // keep it a real on the way back in: "2" would parse as an integer
            if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
            return;
        }
        case Value::Type::string: dump_string(out, v.as_string()); return;
        case Value::Type::array: {
            out.push_back('[');
            bool first = true;
            for (const Value& item : v.as_array()) {
                if (!first) out.push_back(',');
                first = false;
                dump_value(out, item);
            }
            out.push_back(']');
            return;
        }
        case Value::Type::object: {
            out.push_back('{');
            bool first = true;
            for (const Member& m : v.as_object()) {
                if (!first) out.push_back(',');
                first = false;
                dump_string(out, m.key);
                out.push_back(':');
                dump_value(out, m.value);
            }
            out.push_back('}');
            return;
        }
    }
}

}  // namespace

std::string dump(const Value& value) {
    std::string out;
    dump_value(out, value);
    return out;
}

}  // namespace retort::json
