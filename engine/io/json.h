// engine/io/json.h: a small, strict JSON reader and writer (RFC 8259).
//
// retort reads JSON from files it did not write (the header of a .safetensors file), so the
// parser treats its input as hostile:
//   - nesting is limited (64 levels by default), so no input can exhaust the stack;
//   - strings must be valid UTF-8 without raw control characters; \uXXXX escapes, including
//     surrogate pairs, are decoded to UTF-8, and a lone surrogate is an error;
//   - integers must fit in 64 bits and other numbers in a double;
//   - an object may not repeat a key, and nothing but whitespace may follow the value.
// Every error is a retort::Error that says what was wrong and at which byte offset.
//
// Memory: the parsed tree costs about 40 bytes per JSON value, so at worst (a long array of
// one-digit numbers) about 20 times the size of the text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace retort::json {

class Value;
struct Member;
using Array = std::vector<Value>;
using Object = std::vector<Member>;  // members in document order; keys are unique

class Value {
public:
    // The order matches the alternatives of data_, so type() is the variant's index.
    enum class Type { null, boolean, integer, real, string, array, object };

    // Member is still incomplete here, so every constructor, the assignments and the destructor
    // are defined in json.cpp, where it is complete (std::vector<Member> needs that).
    Value();  // null
    Value(std::nullptr_t);
    Value(bool b);
    Value(int i);
    Value(std::int64_t i);
    Value(double d);
    Value(const char* s);
    Value(std::string s);
    Value(Array a);
    Value(Object o);
    Value(const Value&);
    Value(Value&&) noexcept;
    Value& operator=(const Value&);
    Value& operator=(Value&&) noexcept;
    ~Value();

    Type type() const { return static_cast<Type>(data_.index()); }
    bool is_null() const { return type() == Type::null; }
    bool is_bool() const { return type() == Type::boolean; }
    bool is_integer() const { return type() == Type::integer; }
    bool is_number() const { return is_integer() || type() == Type::real; }
    bool is_string() const { return type() == Type::string; }
    bool is_array() const { return type() == Type::array; }
    bool is_object() const { return type() == Type::object; }

    // Typed access; each throws a retort::Error naming both types when the value is another kind.
    bool as_bool() const;
    std::int64_t as_int() const;
    double as_double() const;  // integers convert
    const std::string& as_string() const;
    const Array& as_array() const;
    const Object& as_object() const;
    Array& as_array();
    Object& as_object();

    // The value stored under `key` in an object, or nullptr when there is none.
    const Value* find(std::string_view key) const;

    friend bool operator==(const Value&, const Value&);

private:
    std::variant<std::monostate, bool, std::int64_t, double, std::string, Array, Object> data_;
};

struct Member {
    std::string key;
    Value value;
    friend bool operator==(const Member&, const Member&) = default;
};

// "null", "boolean", "integer", "number", "string", "array", "object": for error messages.
const char* type_name(Value::Type type);

// Parses one JSON value that spans all of `text` (surrounding whitespace allowed).
Value parse(std::string_view text, int max_depth = 64);

// Compact JSON text (no whitespace), object members in their stored order. Throws a retort::Error
// for a string that is not valid UTF-8 or a number that is not finite: JSON can hold neither.
std::string dump(const Value& value);

// True when `text` is well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool is_valid_utf8(std::string_view text);

}  // namespace retort::json
