// tools/fuzz/fuzz_common.h: what every fuzz target of tools/fuzz shares.
//
// The contract of a target: feed the input to a parser and accept either a result or a
// retort::Error. Only retort::Error is caught; any other exception escapes LLVMFuzzerTestOneInput,
// and libFuzzer reports it as a crash, which is what it is (a std::bad_alloc or std::length_error
// means a size from the input reached an allocation unchecked). A result that breaks a promise of
// the parser (a round trip that differs, a shape that disagrees with the header) is a finding
// too: the target calls finding(), which aborts with a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

namespace retort::fuzz {

inline std::span<const unsigned char> bytes_of(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const unsigned char*>(data), size};
}

inline std::string text_of(const std::uint8_t* data, std::size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
    std::abort();
}

inline void expect(bool condition, const std::string& what) {
    if (!condition) finding(what);
}

}  // namespace retort::fuzz
