// engine/cpu/isa.cpp: see isa.h.
#include "engine/cpu/isa.h"

#include "engine/error.h"

namespace retort::cpu {

std::vector<Isa> supported_isas() {
    std::vector<Isa> out;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) out.push_back(Isa::avx512);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(Isa::avx2);
#endif
    out.push_back(Isa::portable);
    return out;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512f";
        case Isa::avx2: return "avx2+fma";
        case Isa::portable: break;
    }
    return "portable";
}

std::vector<std::string> IsaChoice::names() {
    std::vector<std::string> out;
    for (Isa isa : supported_isas()) out.push_back(isa_name(isa));
    return out;
}

void IsaChoice::set(const std::string& name) {
    for (Isa isa : supported_isas())
        if (name == isa_name(isa)) {
            active_.store(isa);
            return;
        }
    std::string known;
    for (const std::string& n : names()) known += (known.empty() ? "" : ", ") + n;
    fail(what_, ": '", name, "' is not available on this CPU (available: ", known, ")");
}

}  // namespace retort::cpu
