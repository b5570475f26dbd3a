// engine/cpu/isa.h: which x86 vector instruction sets this CPU runs, checked once at run time.
//
// The library is compiled for the baseline x86-64 ISA (SSE2), so that one binary runs on any
// x86-64 machine. The few loops where vector width matters (the GEMM's micro-kernels, the
// transcendental activations, the normalization sums) are also compiled for AVX2 and AVX-512
// with target attributes; each picks its variant from this list and lets tests switch to every
// other one, so that all variants are checked on one machine.
#pragma once

#include <atomic>
#include <string>
#include <vector>

namespace retort::cpu {

enum class Isa { avx512, avx2, portable };

// The ISAs this CPU supports, widest first; `portable` (plain C++) always comes last.
// `avx512` means AVX-512F; `avx2` means AVX2 with FMA.
std::vector<Isa> supported_isas();

// "avx512f", "avx2+fma" or "portable".
const char* isa_name(Isa isa);

// The variant a family of loops uses: the widest supported one unless set() chose another.
class IsaChoice {
public:
    explicit IsaChoice(const char* what) : what_(what), active_(supported_isas().front()) {}
    Isa get() const { return active_.load(std::memory_order_relaxed); }
    const char* name() const { return isa_name(get()); }
    // Choose by name; an Error naming the available ones when this CPU lacks it.
    void set(const std::string& name);
    // The names of supported_isas().
    static std::vector<std::string> names();

private:
    const char* what_;  // for the error message, e.g. "set_gemm_kernel"
    std::atomic<Isa> active_;
};

}  // namespace retort::cpu
