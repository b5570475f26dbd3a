// engine/dtype.h: the element types a tensor can hold.
//
// f32 is the working type everywhere; f64 exists on the CPU so gradient checks against finite
// differences are accurate; i32/i64 hold labels and indices. visit_dtype() turns a run-time dtype
// into a compile-time C++ type, so a kernel is written once as a template and instantiated per type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"

namespace retort {

enum class DType : std::uint8_t { f32, f64, i32, i64 };

constexpr std::size_t dtype_size(DType t) {
    return (t == DType::f64 || t == DType::i64) ? 8 : 4;
}
constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }
const char* dtype_name(DType t);  // "float32", "float64", "int32", "int64" (PyTorch's names)

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::i64; }

// A value that carries a type, so a generic lambda can learn which type it was called for:
//   visit_dtype(t, [&]<class T>(Type<T>) { kernel<T>(...); });
template <class T> struct Type { using type = T; };

template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
    switch (t) {
        case DType::f32: return f(Type<float>{});
        case DType::f64: return f(Type<double>{});
        case DType::i32: return f(Type<std::int32_t>{});
        case DType::i64: return f(Type<std::int64_t>{});
    }
    throw Error("unknown dtype");
}

// Like visit_dtype, for ops that only make sense on floating-point tensors.
template <class F>
decltype(auto) visit_floating(DType t, const char* op, F&& f) {
    switch (t) {
        case DType::f32: return f(Type<float>{});
        case DType::f64: return f(Type<double>{});
        default: break;
    }
    fail(op, ": expected a floating-point tensor (float32 or float64), got ", dtype_name(t));
}

}  // namespace retort
