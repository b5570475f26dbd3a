// engine/error.h: how retort reports problems.
//
// Two kinds of failure, kept apart on purpose:
//  - retort::Error: a user-facing mistake (a shape mismatch, an unknown name, a corrupt file, a bad
//    config value). The message says what was wrong and where; the CLI prints it and exits non-zero.
//  - internal_check(): an invariant of retort itself. When it fails it is our bug, so the message
//    names the file and line where the invariant was stated.
#pragma once

#include <source_location>
#include <sstream>
#include <stdexcept>
#include <string>

namespace retort {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Concatenates anything streamable into one string: cat("got ", 3, " dims").
template <class... Parts>
std::string cat(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}

// Throws a retort::Error built from the parts.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
    throw Error(cat(parts...));
}

// Throws a retort::Error unless the condition holds.
template <class... Parts>
void require(bool condition, const Parts&... parts) {
    if (!condition) fail(parts...);
}

// An internal invariant: if it does not hold, retort has a bug at the caller's file and line.
void internal_check(bool condition, const char* what,
                    std::source_location where = std::source_location::current());

}  // namespace retort
