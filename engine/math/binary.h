// engine/math/binary.h: the scalar arithmetic of the binary elementwise ops (add ... ge).
//
// Each op is a struct with a RETORT_HD apply(x, y), used by the CPU loops (ops/elementwise.cpp)
// and by the CUDA kernels (engine/kernels/elementwise.h) alike, and a `kind` that names it where
// a template cannot travel (the CUDA entry points take the kind and pick the struct back).
// Comparisons return 1 or 0 in the operands' type, as retort's comparisons do.
#pragma once

#include <cmath>
#include <type_traits>

#include "engine/math/hd.h"

namespace retort::math {

enum class BinaryKind { add, sub, mul, div, pow, minimum, maximum, eq, ne, lt, le, gt, ge };

struct Add {
    static constexpr BinaryKind kind = BinaryKind::add;
    template <class T> static RETORT_HD T apply(T x, T y) { return static_cast<T>(x + y); }
};
struct Sub {
    static constexpr BinaryKind kind = BinaryKind::sub;
    template <class T> static RETORT_HD T apply(T x, T y) { return static_cast<T>(x - y); }
};
struct Mul {
    static constexpr BinaryKind kind = BinaryKind::mul;
    template <class T> static RETORT_HD T apply(T x, T y) { return static_cast<T>(x * y); }
};
struct Div {
    static constexpr BinaryKind kind = BinaryKind::div;
    template <class T> static RETORT_HD T apply(T x, T y) { return static_cast<T>(x / y); }
};
struct Pow {
    static constexpr BinaryKind kind = BinaryKind::pow;
    template <class T> static RETORT_HD T apply(T x, T y) {
        if constexpr (std::is_floating_point_v<T>) return std::pow(x, y);
        else return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
};
// minimum/maximum propagate NaN (the first NaN operand), as torch.minimum/maximum do.
struct Minimum {
    static constexpr BinaryKind kind = BinaryKind::minimum;
    template <class T> static RETORT_HD T apply(T x, T y) {
        if (x != x) return x;  // only NaN differs from itself; integers never do
        if (y != y) return y;
        return x < y ? x : y;
    }
};
struct Maximum {
    static constexpr BinaryKind kind = BinaryKind::maximum;
    template <class T> static RETORT_HD T apply(T x, T y) {
        if (x != x) return x;
        if (y != y) return y;
        return x > y ? x : y;
    }
};
struct Eq {
    static constexpr BinaryKind kind = BinaryKind::eq;
    template <class T> static RETORT_HD T apply(T x, T y) { return x == y ? T(1) : T(0); }
};
struct Ne {
    static constexpr BinaryKind kind = BinaryKind::ne;
    template <class T> static RETORT_HD T apply(T x, T y) { return x != y ? T(1) : T(0); }
};
struct Lt {
    static constexpr BinaryKind kind = BinaryKind::lt;
    template <class T> static RETORT_HD T apply(T x, T y) { return x < y ? T(1) : T(0); }
};
struct Le {
    static constexpr BinaryKind kind = BinaryKind::le;
    template <class T> static RETORT_HD T apply(T x, T y) { return x <= y ? T(1) : T(0); }
};
struct Gt {
    static constexpr BinaryKind kind = BinaryKind::gt;
    template <class T> static RETORT_HD T apply(T x, T y) { return x > y ? T(1) : T(0); }
};
struct Ge {
    static constexpr BinaryKind kind = BinaryKind::ge;
    template <class T> static RETORT_HD T apply(T x, T y) { return x >= y ? T(1) : T(0); }
};

// Calls fn(Op{}) with the struct of `kind`: how a CUDA entry point turns the kind back into a type.
template <class Fn>
decltype(auto) visit_binary(BinaryKind kind, Fn&& fn) {
    switch (kind) {
        case BinaryKind::add: return fn(Add{});
        case BinaryKind::sub: return fn(Sub{});
        case BinaryKind::mul: return fn(Mul{});
        case BinaryKind::div: return fn(Div{});
        case BinaryKind::pow: return fn(Pow{});
        case BinaryKind::minimum: return fn(Minimum{});
        case BinaryKind::maximum: return fn(Maximum{});
        case BinaryKind::eq: return fn(Eq{});
        case BinaryKind::ne: return fn(Ne{});
        case BinaryKind::lt: return fn(Lt{});
        case BinaryKind::le: return fn(Le{});
        case BinaryKind::gt: return fn(Gt{});
        case BinaryKind::ge: break;
    }
    return fn(Ge{});
}

}  // namespace retort::math
