// tests/test_safetensors.cpp: the strict JSON parser and writer (engine/io/json.h) and the
// safetensors reader and writer (engine/io/safetensors.h): round trips, a file written from
// PyTorch, the widening of F16/BF16/BOOL/U8/I8/I16, every kind of corrupt file, and saves that
// fail or replace a file.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "tests/fixture.h"

using namespace retort;
namespace fs = std::filesystem;
using doctest::Contains;

namespace {

// A safetensors buffer with the given header text and data area.
std::string with_header(const std::string& header, const std::string& data = "") {
    std::string out;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
    return out + header + data;
}

std::string zero_bytes(std::size_t n) { return std::string(n, '\0'); }

template <class T>
std::string bytes_of(const std::vector<T>& values) {
    std::string out(values.size() * sizeof(T), '\0');
    std::memcpy(out.data(), values.data(), out.size());
    return out;
}

// Same shape, dtype and bits (so NaN payloads and -0 count too).
bool identical(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() &&
           std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}

// A scratch directory, removed with everything in it when the test ends.
class TempDir {
public:
    TempDir() {
        static int counter = 0;
        path_ =
            fs::temp_directory_path() / ("retort_test_safetensors_" + std::to_string(::getpid()) +
                                         "_" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(path_))
            names.push_back(entry.path().filename());
        std::sort(names.begin(), names.end());
        return names;
    }

private:
    fs::path path_;
};

std::string read_all(std::istream& in) {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::map<std::string, Tensor> every_native_dtype() {
    const float inf = std::numeric_limits<float>::infinity();
    return {
        {"f32", from_vector<float>({1.5f, -0.0f, 1e-40f, inf, std::nanf(""), 3.0f}, {2, 3})},
        {"f64", from_vector<double>({0.1, -1e300, 5e-324, 42.0}, {4})},
        {"i32", from_vector<std::int32_t>({std::numeric_limits<std::int32_t>::min(), 0,
                                            std::numeric_limits<std::int32_t>::max()}, {3, 1})},
        {"i64", from_vector<std::int64_t>({std::numeric_limits<std::int64_t>::min(),
                                            std::numeric_limits<std::int64_t>::max()}, {2})},
        {"scalar", scalar_tensor(2.5, DType::f32)},
        {"empty.f64", Tensor::empty({0, 5}, DType::f64)},
        {"empty.i32", Tensor::empty({3, 0, 2}, DType::i32)},
    };
}

void check_same_tensors(const std::map<std::string, Tensor>& got,
                        const std::map<std::string, Tensor>& want) {
    REQUIRE(got.size() == want.size());
    for (const auto& item : want) {  // (not a structured binding: INFO captures the name)
        const std::string& name = item.first;
        const Tensor& t = item.second;
        INFO("tensor ", name);
        REQUIRE(got.count(name) == 1);
        CHECK(identical(got.at(name), t));
    }
}

}  // namespace

// =============================================================================================
// JSON

TEST_CASE("json: parses literals, numbers, strings, arrays and objects") {
    CHECK(json::parse("null").is_null());
    CHECK(json::parse(" true ").as_bool() == true);
    CHECK(json::parse("\t\r\nfalse\n").as_bool() == false);
    CHECK(json::parse("0").as_int() == 0);
    CHECK(json::parse("-0").as_int() == 0);
    CHECK(json::parse("123456789012").as_int() == 123456789012);
    CHECK(json::parse("9223372036854775807").as_int() == std::numeric_limits<std::int64_t>::max());
    CHECK(json::parse("-9223372036854775808").as_int() == std::numeric_limits<std::int64_t>::min());
    CHECK(json::parse("1.5").as_double() == 1.5);
    CHECK(json::parse("-2.5e-3").as_double() == -2.5e-3);
    CHECK(json::parse("1E3").type() == json::Value::Type::real);
    CHECK(json::parse("1E3").as_double() == 1000.0);
    CHECK(json::parse("7").as_double() == 7.0);  // integers convert to double on request

    const json::Value v = json::parse(R"( {"a": [1, 2.5, "x", null, true, {}], "b": {"c": []}} )");
    REQUIRE(v.is_object());
    REQUIRE(v.as_object().size() == 2);
    CHECK(v.as_object()[0].key == "a");  // document order is kept
    const json::Array& a = v.find("a")->as_array();
    REQUIRE(a.size() == 6);
    CHECK(a[0].as_int() == 1);
    CHECK(a[1].as_double() == 2.5);
    CHECK(a[2].as_string() == "x");
    CHECK(a[3].is_null());
    CHECK(a[4].as_bool());
    CHECK(a[5].as_object().empty());
    CHECK(v.find("b")->find("c")->as_array().empty());
    CHECK(v.find("missing") == nullptr);
    CHECK_THROWS_WITH_AS(v.find("a")->as_int(), Contains("expected integer, got array"), Error);
    CHECK_THROWS_WITH_AS(a[2].as_double(), Contains("expected number, got string"), Error);
}

TEST_CASE("json: decodes escapes, including \\u and surrogate pairs, to UTF-8") {
    CHECK(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string() == "a\"b\\c/d\b\f\n\r\t");
    CHECK(json::parse(R"("\u0041")").as_string() == "A");
    CHECK(json::parse(R"("\u00e9")").as_string() == "\xC3\xA9");
    CHECK(json::parse(R"("\u20AC")").as_string() == "\xE2\x82\xAC");
    CHECK(json::parse(R"("\uD83D\uDE00")").as_string() == "\xF0\x9F\x98\x80");
    CHECK(json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));
    CHECK(json::parse("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"").as_string() ==
          "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

TEST_CASE("json: rejects malformed strings") {
    auto bad = [](const std::string& text) { return json::parse(text); };
    CHECK_THROWS_WITH_AS(bad(R"("\ud83d")"),
                         Contains("high surrogate not followed by a low one at byte 1"), Error);
    CHECK_THROWS_WITH_AS(bad(R"("\ud83dx")"), Contains("high surrogate not followed"), Error);
    CHECK_THROWS_WITH_AS(bad(R"("\ud83d\u0041")"), Contains("high surrogate not followed"), Error);
    CHECK_THROWS_WITH_AS(bad(R"("\ude00")"), Contains("lone low surrogate"), Error);
    CHECK_THROWS_WITH_AS(bad(R"("ab\x")"),
                         Contains("invalid escape sequence in a string at byte 3"), Error);
    CHECK_THROWS_WITH_AS(bad(R"("\u12")"), Contains("four hex digits"), Error);
    CHECK_THROWS_WITH_AS(bad(R"("\u12G4")"), Contains("four hex digits"), Error);
    CHECK_THROWS_WITH_AS(bad("\"a\tb\""), Contains("control character in a string"), Error);
    CHECK_THROWS_WITH_AS(bad("\"a\nb\""),
                         Contains("control character in a string (it must be escaped) at byte 2"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("\"\xFF\""), Contains("invalid UTF-8 in a string at byte 1"), Error);
    CHECK_THROWS_WITH_AS(bad("\"\xC0\x80\""), Contains("invalid UTF-8"), Error);      // overlong
    CHECK_THROWS_WITH_AS(bad("\"\xED\xA0\x80\""), Contains("invalid UTF-8"), Error);  // surrogate
    CHECK_THROWS_WITH_AS(bad("\"\xF4\x90\x80\x80\""), Contains("invalid UTF-8"), Error);  // >U+10FFFF
    CHECK_THROWS_WITH_AS(bad("\"\xE2\x82\""), Contains("invalid UTF-8"), Error);          // cut short
    CHECK_THROWS_WITH_AS(bad("\"abc"), Contains("unterminated string at byte 0"), Error);
    CHECK_THROWS_WITH_AS(bad("\"abc\\"), Contains("unterminated string"), Error);

    CHECK(json::is_valid_utf8("plain \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
    CHECK_FALSE(json::is_valid_utf8("\x80"));
    CHECK_FALSE(json::is_valid_utf8("\xE0\x80\x80"));
    CHECK_FALSE(json::is_valid_utf8("\xF0\x9F\x98"));
}

TEST_CASE("json: numbers follow the JSON grammar and must fit") {
    auto bad = [](const std::string& text) { return json::parse(text); };
    CHECK_THROWS_WITH_AS(bad("9223372036854775808"),
                         Contains("integer 9223372036854775808 does not fit in 64 bits at byte 0"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("[-99999999999999999999]"),
                         Contains("does not fit in 64 bits at byte 1"), Error);
    CHECK_THROWS_WITH_AS(bad("1e999"), Contains("number 1e999 is out of range for a double"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("01"), Contains("leading zero"), Error);
    CHECK_THROWS_WITH_AS(bad("-"), Contains("'-' is not followed by a digit"), Error);
    CHECK_THROWS_WITH_AS(bad("-a"), Contains("'-' is not followed by a digit"), Error);
    CHECK_THROWS_WITH_AS(bad("1."), Contains("decimal point must be followed by a digit"), Error);
    CHECK_THROWS_WITH_AS(bad("1e"), Contains("exponent needs a digit"), Error);
    CHECK_THROWS_WITH_AS(bad("1e+"), Contains("exponent needs a digit"), Error);
    CHECK_THROWS_WITH_AS(bad(".5"), Contains("expected a JSON value, found '.'"), Error);
    CHECK_THROWS_WITH_AS(bad("+1"), Contains("expected a JSON value"), Error);
    CHECK_THROWS_WITH_AS(bad("NaN"), Contains("expected a JSON value"), Error);
    CHECK_THROWS_WITH_AS(bad("0x10"), Contains("unexpected text after the JSON value at byte 1"),
                         Error);
}

TEST_CASE("json: nesting is limited, and deep input fails without exhausting the stack") {
    auto nested_arrays = [](int depth) {
        return std::string(depth, '[') + std::string(depth, ']');
    };
    CHECK(json::parse(nested_arrays(64)).is_array());
    CHECK_THROWS_WITH_AS(json::parse(nested_arrays(65)),
                         Contains("nesting deeper than 64 levels at byte 64"), Error);
    CHECK_THROWS_WITH_AS(json::parse(std::string(1000000, '[')), Contains("nesting deeper"), Error);
    std::string objects;
    for (int i = 0; i < 65; ++i) objects += "{\"a\":";
    objects += "1" + std::string(65, '}');
    CHECK_THROWS_WITH_AS(json::parse(objects), Contains("nesting deeper than 64 levels"), Error);
    CHECK(json::parse("[[1]]", 2).is_array());
    CHECK_THROWS_WITH_AS(json::parse("[[1]]", 1),
                         Contains("nesting deeper than 1 levels at byte 1"), Error);
}

TEST_CASE("json: rejects duplicate keys, trailing text and syntax errors, naming the byte") {
    auto bad = [](const std::string& text) { return json::parse(text); };
    CHECK_THROWS_WITH_AS(bad(R"({"a":1,"b":2,"a":3})"), Contains("duplicate key \"a\" at byte 13"),
                         Error);
    CHECK_THROWS_WITH_AS(bad(R"({"a":1,"\u0061":2})"), Contains("duplicate key \"a\""), Error);
    CHECK_THROWS_WITH_AS(bad("{} x"), Contains("unexpected text after the JSON value at byte 3"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("[1] [2]"), Contains("unexpected text after the JSON value at byte 4"),
                         Error);
    CHECK_THROWS_WITH_AS(bad(std::string("1\0", 2)),
                         Contains("unexpected text after the JSON value at byte 1"), Error);
    CHECK_THROWS_WITH_AS(
        bad(""), Contains("expected a JSON value, found the end of the text at byte 0"), Error);
    CHECK_THROWS_WITH_AS(bad("   "), Contains("at byte 3"), Error);
    CHECK_THROWS_WITH_AS(bad("[1,]"), Contains("expected a JSON value, found ']' at byte 3"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("[1, 2,, 3]"), Contains("expected a JSON value, found ',' at byte 6"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("[1 2]"),
                         Contains("expected ',' or ']' in an array, found '2' at byte 3"), Error);
    CHECK_THROWS_WITH_AS(
        bad("[1"), Contains("expected ',' or ']' in an array, found the end of the text"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"a" 1})"), Contains("expected ':', found '1' at byte 5"), Error);
    CHECK_THROWS_WITH_AS(
        bad("{a:1}"), Contains("expected a string key in an object, found 'a' at byte 1"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"a":1,})"),
                         Contains("expected a string key in an object, found '}'"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"a":1 "b":2})"), Contains("expected ',' or '}' in an object"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("tru"), Contains("invalid literal, expected true at byte 0"), Error);
    CHECK_THROWS_WITH_AS(bad("nul"), Contains("invalid literal, expected null"), Error);
    // a byte-order mark is not JSON whitespace
    CHECK_THROWS_WITH_AS(bad("\xEF\xBB\xBF{}"), Contains("found byte 0xef at byte 0"), Error);
}

TEST_CASE("json: dump writes compact text that parses back to the same value") {
    json::Object inner{{"x", 1}, {"y", json::Array{true, false, nullptr}}};
    json::Value v(
        json::Object{{"name", "a\"b\\c\n\x01 \xC3\xA9"},
                     {"ints", json::Array{0, -7, std::numeric_limits<std::int64_t>::max()}},
                     {"reals", json::Array{0.1, 2.0, -1.5e-300}},
                     {"inner", std::move(inner)},
                     {"empty", json::Object{}}});
    const std::string text = json::dump(v);
    CHECK(text ==
          "{\"name\":\"a\\\"b\\\\c\\n\\u0001 \xC3\xA9\",\"ints\":[0,-7,9223372036854775807],"
          "\"reals\":[0.1,2.0,-1.5e-300],\"inner\":{\"x\":1,\"y\":[true,false,null]},"
          "\"empty\":{}}");
    CHECK(json::parse(text) == v);
    CHECK(json::parse(text).find("reals")->as_array()[1].type() == json::Value::Type::real);
    CHECK_THROWS_WITH_AS(json::dump(json::Value("\xFF")), Contains("not valid UTF-8"), Error);
    CHECK_THROWS_WITH_AS(json::dump(json::Value(std::nan(""))), Contains("non-finite"), Error);
}

// =============================================================================================
// safetensors: round trips and the layout of written files

TEST_CASE("safetensors: every native dtype, 0-dim and empty tensors and metadata round-trip") {
    const auto tensors = every_native_dtype();
    const std::map<std::string, std::string> metadata{{"format", "pt"},
                                                      {"note", "\xC3\xBCn\"quoted\"\n"}};
    const std::string bytes = serialize_safetensors(tensors, metadata);
    SafetensorsContents from_memory = parse_safetensors(bytes);
    check_same_tensors(from_memory.tensors, tensors);
    CHECK(from_memory.metadata == metadata);

    TempDir dir;
    const std::string path = dir.file("all.safetensors");
    save_safetensors(path, tensors, metadata);
    std::ifstream in(path, std::ios::binary);
    CHECK(read_all(in) == bytes);  // the file holds exactly the serialized bytes
    SafetensorsContents from_file = read_safetensors(path);
    check_same_tensors(from_file.tensors, tensors);
    CHECK(from_file.metadata == metadata);
    check_same_tensors(load_safetensors(path), tensors);
    CHECK(dir.listing() == std::vector<std::string>{"all.safetensors"});

    // no tensors at all is a valid file too
    SafetensorsContents nothing = parse_safetensors(serialize_safetensors({}));
    CHECK(nothing.tensors.empty());
    CHECK(nothing.metadata.empty());
}

TEST_CASE("safetensors: the header is sorted and space-padded - 8-byte types come first") {
    const std::map<std::string, Tensor> tensors{
        {"b", from_vector<float>({1, 2, 3})},
        {"a", from_vector<std::int64_t>({4})},
        {"c", from_vector<double>({5})},
    };
    const std::string bytes = serialize_safetensors(tensors, {{"k", "v"}});
    const std::string header =
        R"({"__metadata__":{"k":"v"},)"
        R"("a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]},)"
        R"("c":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})";
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data(), 8);
    CHECK(length % 8 == 0);
    CHECK(length == header.size() + (8 - header.size() % 8) % 8);
    CHECK(bytes.substr(8, header.size()) == header);
    CHECK(bytes.substr(8 + header.size(), length - header.size()) ==
          std::string(length - header.size(), ' '));
    CHECK(bytes.size() == 8 + length + 28);
    std::int64_t a = 0;
    double c = 0;
    std::memcpy(&a, bytes.data() + 8 + length, 8);
    std::memcpy(&c, bytes.data() + 8 + length + 8, 8);
    CHECK(a == 4);
    CHECK(c == 5.0);
}

TEST_CASE("safetensors: loads a file written from PyTorch") {
    const std::string path = std::string(RETORT_FIXTURES_DIR) + "/torch_tensors.safetensors";
    const SafetensorsContents file = read_safetensors(path);
    const retort::testing::Fixture expected("torch_tensors.txt");
    CHECK(file.metadata == std::map<std::string, std::string>{{"format", "pt"}});
    const std::map<std::string, DType> dtypes{
        {"fc.weight", DType::f32}, {"fc.bias", DType::f64}, {"labels", DType::i64},
        {"half", DType::f32},      {"bfloat", DType::f32},  {"scalar", DType::f32},
        {"empty", DType::f32}};
    REQUIRE(file.tensors.size() == dtypes.size());
    for (const auto& item : dtypes) {
        const std::string& name = item.first;
        const DType dtype = item.second;
        INFO("tensor ", name);
        REQUIRE(file.tensors.count(name) == 1);
        const Tensor& got = file.tensors.at(name);
        CHECK(got.dtype() == dtype);
        CHECK(got.shape() == expected[name].shape());
        // every value is exact: F16 and BF16 widen to float32 without rounding
        if (dtype == DType::i64)
            CHECK(got.to_vector<std::int64_t>() == expected[name].to_vector<std::int64_t>());
        else
            CHECK(got.to_vector<double>() == expected[name].to_vector<double>());
    }
    CHECK(std::signbit(file.tensors.at("half").to_vector<float>()[2]));  // -0 stays negative
}

TEST_CASE("safetensors: F16 and BF16 widen to float32 exactly, with inf, NaN and subnormals") {
    const std::vector<std::uint16_t> half{0x3C00, 0xC000, 0x7C00, 0xFC00, 0x7E00,
                                          0x0001, 0x03FF, 0x0400, 0x7BFF, 0x8000};
    const std::vector<std::uint16_t> bf16{0x3F80, 0xC040, 0x7F80, 0x7FC0, 0x0001, 0x8000};
    const std::string bytes = with_header(
        R"({"h":{"dtype":"F16","shape":[10],"data_offsets":[0,20]},)"
        R"("b":{"dtype":"BF16","shape":[2,3],"data_offsets":[20,32]}})",
        bytes_of(half) + bytes_of(bf16));
    const SafetensorsContents file = parse_safetensors(bytes);
    const Tensor h = file.tensors.at("h"), b = file.tensors.at("b");
    CHECK(h.dtype() == DType::f32);
    CHECK(b.dtype() == DType::f32);
    CHECK(b.shape() == Shape{2, 3});
    const std::vector<float> hv = h.to_vector<float>(), bv = b.to_vector<float>();
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(hv[0] == 1.0f);
    CHECK(hv[1] == -2.0f);
    CHECK(hv[2] == inf);
    CHECK(hv[3] == -inf);
    CHECK(std::isnan(hv[4]));
    CHECK(hv[5] == std::ldexp(1.0f, -24));     // smallest subnormal
    CHECK(hv[6] == std::ldexp(1023.0f, -24));  // largest subnormal
    CHECK(hv[7] == std::ldexp(1.0f, -14));     // smallest normal
    CHECK(hv[8] == 65504.0f);                  // largest finite
    CHECK((hv[9] == 0.0f && std::signbit(hv[9])));
    CHECK(bv[0] == 1.0f);
    CHECK(bv[1] == -3.0f);
    CHECK(bv[2] == inf);
    CHECK(std::isnan(bv[3]));
    CHECK(bv[4] == std::ldexp(1.0f, -133));
    CHECK((bv[5] == 0.0f && std::signbit(bv[5])));
}

TEST_CASE("safetensors: BOOL, U8, I8 and I16 widen to int32") {
    const std::vector<std::int16_t> i16{-32768, -1, 0, 32767};
    const std::string bytes = with_header(
        R"({"bool":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]},)"
        R"("u8":{"dtype":"U8","shape":[3],"data_offsets":[3,6]},)"
        R"("i8":{"dtype":"I8","shape":[3],"data_offsets":[6,9]},)"
        R"("pad":{"dtype":"U8","shape":[1],"data_offsets":[9,10]},)"
        R"("i16":{"dtype":"I16","shape":[2,2],"data_offsets":[10,18]}})",
        std::string("\x00\x01\x01" "\x00\x7F\xFF" "\x80\xFF\x7F" "\x00", 10) + bytes_of(i16));
    const SafetensorsContents file = parse_safetensors(bytes);
    for (const char* name : {"bool", "u8", "i8", "i16"})
        CHECK(file.tensors.at(name).dtype() == DType::i32);
    CHECK(file.tensors.at("bool").to_vector<int>() == std::vector<int>{0, 1, 1});
    CHECK(file.tensors.at("u8").to_vector<int>() == std::vector<int>{0, 127, 255});
    CHECK(file.tensors.at("i8").to_vector<int>() == std::vector<int>{-128, -1, 127});
    CHECK(file.tensors.at("i16").to_vector<int>() == std::vector<int>{-32768, -1, 0, 32767});
    CHECK(file.tensors.at("i16").shape() == Shape{2, 2});
}

// =============================================================================================
// safetensors: corrupt input, each with the message that names the problem

TEST_CASE("safetensors: files too short, or with a header length that cannot be, are refused") {
    CHECK_THROWS_WITH_AS(parse_safetensors(""),
                         Contains("0 bytes long, too short to hold the 8-byte header length"),
                         Error);
    CHECK_THROWS_WITH_AS(parse_safetensors("1234567"), Contains("7 bytes long, too short"), Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(std::string("\x10\0\0\0\0\0\0\0{}", 10)),
                         Contains("header length 16 is larger than the 2 bytes that follow it"),
                         Error);
    CHECK_THROWS_WITH_AS(
        parse_safetensors(std::string("\0\0\0\0\0\0\0\x80{}", 10)),
        Contains("header length 9223372036854775808 exceeds the limit of 100000000 bytes"), Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(std::string(8, '\xFF') + "{}"),
                         Contains("exceeds the limit"), Error);
    CHECK_THROWS_WITH_AS(
        parse_safetensors(std::string("\0\0\0\0\0\0\0\0", 8)),
        Contains("header: invalid JSON: expected a JSON value, found the end of the text"), Error);

    // a real file cut short: inside the data, and inside the header
    const std::string whole = serialize_safetensors(every_native_dtype());
    CHECK_NOTHROW(parse_safetensors(whole));
    CHECK_THROWS_WITH_AS(parse_safetensors(whole.substr(0, whole.size() - 3)),
                         Contains("reach past the end of the data area"), Error);
    CHECK_THROWS_WITH_AS(
        parse_safetensors(whole.substr(0, 40)),
        Contains("is larger than the 32 bytes that follow it; the file may be truncated"), Error);
}

TEST_CASE("safetensors: a header that is not valid JSON, or not an object, is refused") {
    CHECK_THROWS_WITH_AS(parse_safetensors(with_header(R"({"a":)")),
                         Contains("safetensors '(in-memory buffer)': header: invalid JSON: "
                                  "expected a JSON value, found the end of the text at byte 5"),
                         Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(with_header(R"({"a":{},"a":{}})")),
                         Contains("header: invalid JSON: duplicate key \"a\" at byte 8"), Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(with_header("{}  x")),
                         Contains("unexpected text after the JSON value"), Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(with_header("[1, 2]")),
                         Contains("the header must be a JSON object, got array"), Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(with_header("\"tensors\"")),
                         Contains("the header must be a JSON object, got string"), Error);
    CHECK(parse_safetensors(with_header(R"({"__metadata__":null})")).metadata.empty());
    CHECK_THROWS_WITH_AS(parse_safetensors(with_header(R"({"__metadata__":[1]})")),
                         Contains("\"__metadata__\" must be an object of strings, got array"),
                         Error);
    CHECK_THROWS_WITH_AS(
        parse_safetensors(with_header(R"({"__metadata__":{"epoch":3}})")),
        Contains("\"__metadata__\" must be an object of strings, but key 'epoch' holds integer"),
        Error);
    // a source name of the caller's choosing shows up in the message
    CHECK_THROWS_WITH_AS(parse_safetensors("x", "teacher.safetensors"),
                         Contains("safetensors 'teacher.safetensors': the file is 1 bytes long"),
                         Error);
}

TEST_CASE("safetensors: malformed tensor entries are refused, naming the tensor") {
    auto bad = [](const std::string& header, std::size_t data = 4) {
        return parse_safetensors(with_header(header, zero_bytes(data)));
    };
    CHECK_THROWS_WITH_AS(bad(R"({"w":5})"),
                         Contains("tensor 'w': expected an object with \"dtype\", \"shape\" and "
                                  "\"data_offsets\", got integer"),
                         Error);
    CHECK_THROWS_WITH_AS(bad(R"({"w":{"shape":[1],"data_offsets":[0,4]}})"),
                         Contains("tensor 'w': missing key \"dtype\""), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})"),
                         Contains("tensor 'w': missing key \"shape\""), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"w":{"dtype":"F32","shape":[1]}})"),
                         Contains("tensor 'w': missing key \"data_offsets\""), Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"stride":[1]}})"),
        Contains("tensor 'w': unexpected key 'stride'"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})"),
                         Contains("tensor 'w': \"dtype\" must be a string, got integer"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})"),
                         Contains("tensor 'w': \"shape\" must be a list of integers, got integer"),
                         Error);
    CHECK_THROWS_WITH_AS(bad(R"({"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})"),
                         Contains("\"shape\" must be a list of integers, but it holds a number"),
                         Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})"),
        Contains("\"data_offsets\" must hold two integers [begin, end], it holds 3"), Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}})"),
        Contains("\"data_offsets\" must be a list of integers, but it holds a string"), Error);
    // names from the file are shown with control bytes escaped
    CHECK_THROWS_WITH_AS(bad(R"({"a\nb":{"shape":[1],"data_offsets":[0,4]}})"),
                         Contains("tensor 'a\\x0ab': missing key"), Error);
}

TEST_CASE("safetensors: unsupported dtypes are refused") {
    for (const char* dtype : {"C64", "F8_E4M3", "F8_E5M2", "U64", "XYZ", "f32", ""}) {
        INFO("dtype ", dtype);
        const std::string header = std::string(R"({"w":{"dtype":")") + dtype +
                                   R"(","shape":[1],"data_offsets":[0,8]}})";
        CHECK_THROWS_WITH_AS(
            parse_safetensors(with_header(header, zero_bytes(8))),
            Contains((std::string("tensor 'w': unsupported dtype '") + dtype + "'").c_str()),
            Error);
    }
}

TEST_CASE("safetensors: shapes and data_offsets must agree with each other and the data area") {
    auto bad = [](const std::string& entry, std::size_t data) {
        return parse_safetensors(with_header(R"({"w":)" + entry + "}", zero_bytes(data)));
    };
    CHECK_THROWS_WITH_AS(bad(R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]})", 0),
                         Contains("tensor 'w': negative size -3 in shape (2, -3)"), Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})", 8),
        Contains("tensor 'w': shape (4294967296, 4294967296) has too many elements"), Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"dtype":"F64","shape":[4611686018427387904,2],"data_offsets":[0,8]})", 8),
        Contains("has too many elements"), Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4),
        Contains("tensor 'w': data_offsets [0, 8] reach past the end of the data area (4 bytes)"),
        Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"dtype":"F32","shape":[2],"data_offsets":[0,9223372036854775807]})", 8),
        Contains("reach past the end of the data area"), Error);
    CHECK_THROWS_WITH_AS(
        bad(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})", 4),
        Contains("tensor 'w': data_offsets [0, 4] span 4 bytes, but shape (2,) of F32 needs 8"),
        Error);
    CHECK_THROWS_WITH_AS(bad(R"({"dtype":"BF16","shape":[3],"data_offsets":[0,4]})", 4),
                         Contains("shape (3,) of BF16 needs 6"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"dtype":"F32","shape":[],"data_offsets":[4,0]})", 4),
                         Contains("tensor 'w': data_offsets [4, 0] begin after they end"), Error);
    CHECK_THROWS_WITH_AS(bad(R"({"dtype":"F32","shape":[],"data_offsets":[-4,0]})", 4),
                         Contains("tensor 'w': negative data_offsets [-4, 0]"), Error);
    // a zero in the shape makes it empty however large the other sizes are
    const SafetensorsContents empty = bad(
        R"({"dtype":"F32","shape":[4611686018427387904,0,4611686018427387904],"data_offsets":[0,0]})",
        0);
    CHECK(empty.tensors.at("w").numel() == 0);
}

TEST_CASE("safetensors: overlapping tensors and bytes that belong to no tensor are refused") {
    const std::string one_f32 = R"({"dtype":"F32","shape":[1],"data_offsets":)";
    auto bad = [&](const std::string& a, const std::string& b, std::size_t data) {
        const std::string header = R"({"a":)" + one_f32 + a + R"(},"b":)" + one_f32 + b + "}}";
        return parse_safetensors(with_header(header, zero_bytes(data)));
    };
    CHECK_NOTHROW(bad("[4,8]", "[0,4]", 8));
    CHECK_THROWS_WITH_AS(bad("[0,4]", "[2,6]", 8),
                         Contains("tensors 'a' and 'b' overlap: data_offsets [0, 4] and [2, 6]"),
                         Error);
    CHECK_THROWS_WITH_AS(bad("[0,4]", "[0,4]", 4), Contains("overlap"), Error);
    CHECK_THROWS_WITH_AS(bad("[0,4]", "[8,12]", 12),
                         Contains("bytes [4, 8) of the data area belong to no tensor"), Error);
    CHECK_THROWS_WITH_AS(bad("[4,8]", "[8,12]", 12),
                         Contains("bytes [0, 4) of the data area belong to no tensor"), Error);
    CHECK_THROWS_WITH_AS(bad("[0,4]", "[4,8]", 10),
                         Contains("bytes [8, 10) of the data area belong to no tensor"), Error);
    // an empty tensor may sit at a boundary, not inside another tensor's bytes
    const std::string empty = R"({"dtype":"F32","shape":[0],"data_offsets":)";
    auto with_empty = [&](const std::string& at) {
        return parse_safetensors(
            with_header(R"({"a":)" + one_f32 + R"([0,4]},"e":)" + empty + at + "}}", zero_bytes(4)));
    };
    CHECK_NOTHROW(with_empty("[0,0]"));
    CHECK_NOTHROW(with_empty("[4,4]"));
    CHECK_THROWS_WITH_AS(with_empty("[2,2]"), Contains("tensors 'a' and 'e' overlap"), Error);
}

TEST_CASE(
    "safetensors: errors from a file name the file - missing files and directories are refused") {
    TempDir dir;
    const std::string path = dir.file("cut.safetensors");
    const std::string whole = serialize_safetensors({{"weight", from_vector<float>({1, 2, 3})}});
    {
        std::ofstream out(path, std::ios::binary);
        out << whole.substr(0, whole.size() - 1);
    }
    const std::string expected = "safetensors '" + path +
                                 "': tensor 'weight': data_offsets [0, 12] "
                                 "reach past the end of the data area (11 bytes)";
    CHECK_THROWS_WITH_AS(read_safetensors(path), Contains(expected.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("missing.safetensors")),
                         Contains("missing.safetensors': cannot open: No such file or directory"),
                         Error);
    fs::create_directory(dir.file("folder"));
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("folder")), Contains("not a regular file"),
                         Error);
}

TEST_CASE("safetensors: truncated or mutated bytes give a retort::Error, never a crash") {
    const std::string path = std::string(RETORT_FIXTURES_DIR) + "/torch_tensors.safetensors";
    std::ifstream in(path, std::ios::binary);
    const std::string whole = read_all(in);
    REQUIRE(whole.size() > 100);
    int refused = 0, accepted = 0;
    auto attempt = [&](const std::string& bytes) {
        try {
            parse_safetensors(bytes);
            ++accepted;
        } catch (const Error&) {
            ++refused;
        }
    };
    for (std::size_t n = 0; n < whole.size(); ++n) attempt(whole.substr(0, n));
    CHECK(refused == static_cast<int>(whole.size()));  // every proper prefix is refused
    for (std::size_t i = 0; i < whole.size(); ++i) {
        for (char c : {'\0', '\xFF', '"', '9', '-', '[', ' '}) {
            std::string bytes = whole;
            bytes[i] = c;
            attempt(bytes);
        }
    }
    CHECK(accepted > 0);  // mutations of the data area still load
}

// =============================================================================================
// safetensors: saving

TEST_CASE("safetensors: save refuses tensors and metadata it cannot write") {
    TempDir dir;
    const std::string path = dir.file("m.safetensors");
    const Tensor ok = from_vector<float>({1});
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", Tensor()}}),
                         Contains("save_safetensors: tensor 'w' is undefined"), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"__metadata__", ok}}),
                         Contains("\"__metadata__\" is reserved"), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"bad\xFF", ok}}),
                         Contains("tensor name 'bad\xFF' is not valid UTF-8"), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", ok}}, {{"key", "\xC3"}}),
                         Contains("metadata entry 'key' is not valid UTF-8"), Error);
    CHECK(dir.listing().empty());  // nothing was written, not even a temporary file
}

TEST_CASE("safetensors: a failed save throws and leaves no temporary file behind") {
    TempDir dir;
    const std::map<std::string, Tensor> tensors{{"w", from_vector<float>({1, 2})}};
    CHECK_THROWS_WITH_AS(save_safetensors(dir.file("no/such/dir/m.safetensors"), tensors),
                         Contains("save_safetensors: cannot create the temporary file"), Error);
    CHECK(dir.listing().empty());

    // the rename fails when the target is a directory: the written temporary file must go
    fs::create_directory(dir.file("taken"));
    CHECK_THROWS_WITH_AS(save_safetensors(dir.file("taken"), tensors),
                         Contains("cannot rename the temporary file to"), Error);
    CHECK(dir.listing() == std::vector<std::string>{"taken"});
    CHECK(fs::is_empty(dir.file("taken")));
}

TEST_CASE("safetensors: saving over an existing file replaces it atomically") {
    TempDir dir;
    const std::string path = dir.file("model.safetensors");
    save_safetensors(path, {{"old", from_vector<float>({1, 2, 3})}});
    std::ifstream reader_of_old(path, std::ios::binary);  // opened before the replacement
    REQUIRE(reader_of_old.good());

    save_safetensors(path, {{"new", from_vector<double>({4})}}, {{"epoch", "2"}});
    const SafetensorsContents now = read_safetensors(path);
    CHECK(now.tensors.size() == 1);
    CHECK(now.tensors.at("new").to_vector<double>() == std::vector<double>{4});
    CHECK(now.metadata.at("epoch") == "2");
    // the old file was replaced as a whole (a new file renamed over it), not rewritten in place,
    // so a reader that had it open still sees the complete old contents
    const SafetensorsContents before = parse_safetensors(read_all(reader_of_old));
    CHECK(before.tensors.at("old").to_vector<float>() == std::vector<float>{1, 2, 3});
    CHECK(dir.listing() == std::vector<std::string>{"model.safetensors"});
}
