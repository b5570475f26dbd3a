// engine/precision.cpp: the process-wide product precision, and the rounding of operands
// (engine/kernels/precision.h on either device).
#include "engine/precision.h"

#include <atomic>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/precision.h"

namespace retort {

namespace {
std::atomic<Precision> current{Precision::f32};
}  // namespace

Precision parse_precision(const std::string& name) {
    for (Precision p : {Precision::f32, Precision::tf32, Precision::bf16, Precision::f16})
        if (name == precision_name(p)) return p;
    fail("unknown precision \"", name, "\" (expected f32, tf32, bf16 or f16)");
}

const char* precision_name(Precision precision) {
    switch (precision) {
        case Precision::f32: return "f32";
        case Precision::tf32: return "tf32";
        case Precision::bf16: return "bf16";
        case Precision::f16: return "f16";
    }
    return "?";
}

void set_precision(Precision precision) { current = precision; }
Precision precision() { return current; }
bool reduced_precision() {
    const Precision p = current;
    return p == Precision::bf16 || p == Precision::f16;
}

Tensor round_for_products(const Tensor& t) {
    if (!reduced_precision() || t.dtype() != DType::f32) return t;
    NoGradGuard no_grad;
    Tensor out = Tensor::empty(t.shape(), DType::f32, t.device());
    run(t.device(), t.numel(),
        kernels::RoundTo{t.device_data<float>(), out.device_data<float>(),
                         precision() == Precision::bf16});
    return out;
}

}  // namespace retort
