// engine/error.cpp: the out-of-line part of error.h.
#include "engine/error.h"

namespace retort {

void internal_check(bool condition, const char* what, std::source_location where) {
    if (condition) return;
    throw Error(cat("internal error at ", where.file_name(), ":", where.line(), ": ", what,
                    " (this is a bug in retort)"));
}

}  // namespace retort
