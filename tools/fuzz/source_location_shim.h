// tools/fuzz/source_location_shim.h: std::source_location for clang 14 with libstdc++.
//
// The fuzz build needs clang (libFuzzer ships with it), and Debian's clang 14 lacks
// __builtin_source_location, which libstdc++ 12's <source_location> requires; without it the
// header defines nothing and engine/error.h does not compile. The fuzz build force-includes this
// file (-include) so the library's sources stay untouched. It provides the same interface, built
// on the older builtins clang 14 does have (evaluated at the call site in default arguments, as
// the standard asks of current()). Newer compilers define the real one and this does nothing.
#pragma once

#include <source_location>

#if !defined(__cpp_lib_source_location)
#include <cstdint>

namespace std {

struct source_location {
    static constexpr source_location current(
        const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
        std::uint_least32_t line = __builtin_LINE(),
        std::uint_least32_t column = __builtin_COLUMN()) noexcept {
        source_location where;
        where.file_ = file;
        where.function_ = function;
        where.line_ = line;
        where.column_ = column;
        return where;
    }
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr const char* function_name() const noexcept { return function_; }
    constexpr std::uint_least32_t line() const noexcept { return line_; }
    constexpr std::uint_least32_t column() const noexcept { return column_; }

private:
    const char* file_ = "";
    const char* function_ = "";
    std::uint_least32_t line_ = 0;
    std::uint_least32_t column_ = 0;
};

}  // namespace std
#endif
