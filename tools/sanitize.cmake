# tools/sanitize.cmake: builds retort (library, tools and tests) with the compiler's sanitizers.
#
#   cmake -S . -B build-asan -DRETORT_SANITIZE=address,undefined
#
# RETORT_SANITIZE is a comma- (or semicolon-) separated list passed to -fsanitize=, e.g.
# "address,undefined", "thread" or "memory" (clang). The flags go to every target defined after
# this file is included, at compile and at link time, with -fno-omit-frame-pointer so that the
# reports show whole stack traces. When "undefined" is in the list, undefined behaviour stops the
# program (-fno-sanitize-recover=undefined) instead of printing a warning and going on, so a test
# that triggers it fails. tools/sanitize.sh runs the whole test suite this way.
set(RETORT_SANITIZE "" CACHE STRING
    "Sanitizers to build with, e.g. address,undefined (empty: none)")

if(RETORT_SANITIZE)
  string(REPLACE ";" "," retort_sanitizers "${RETORT_SANITIZE}")
  set(retort_sanitize_flags -fsanitize=${retort_sanitizers} -fno-omit-frame-pointer)
  if(retort_sanitizers MATCHES "(^|,)undefined(,|$)")
    list(APPEND retort_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  # C++ sources only: nvcc does not take -fsanitize (the CUDA kernels are not instrumented).
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${retort_sanitize_flags}>")
  add_link_options(${retort_sanitize_flags})
  message(STATUS "retort: sanitizers ${retort_sanitizers}")
endif()
