// engine/math/unary.h: the scalar arithmetic of elementwise ops and activations, forward and
// derivative side by side. Each functor has
//     forward(x)          -> y
//     backward(x, y, dy)  -> dx      (x the input, y the output, dy the output's gradient)
// Both are RETORT_HD: the CPU loops and the CUDA kernels call these same functions.
// Each also says which of x and y its derivative reads (uses_x, uses_y), so the autograd node saves
// only those: relu's derivative is read off its output, so a ReLU after a BatchNorm does not keep
// the BatchNorm's output alive. An unused argument is passed as 0.
// References: the formulas of torch.nn.functional and PyTorch's derivatives.yaml.
#pragma once

#include <cmath>

#include "engine/math/fast_float.h"
#include "engine/math/hd.h"

namespace retort::math {

struct Neg {
    static constexpr bool uses_x = false, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const { return -x; }
    template <class T> RETORT_HD T backward(T, T, T dy) const { return -dy; }
};
struct Exp {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const { return std::exp(x); }
    template <class T> RETORT_HD T backward(T, T y, T dy) const { return dy * y; }
};
struct Log {
    static constexpr bool uses_x = true, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const { return std::log(x); }
    template <class T> RETORT_HD T backward(T x, T, T dy) const { return dy / x; }
};
struct Sqrt {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const { return std::sqrt(x); }
    template <class T> RETORT_HD T backward(T, T y, T dy) const { return dy / (T(2) * y); }
};
struct Rsqrt {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const { return T(1) / std::sqrt(x); }
    template <class T> RETORT_HD T backward(T, T y, T dy) const { return T(-0.5) * dy * y * y * y; }
};
struct Abs {
    static constexpr bool uses_x = true, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const { return std::abs(x); }
    // d|x|/dx = sign(x), and 0 at 0 as in PyTorch
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        return x > T(0) ? dy : (x < T(0) ? -dy : T(0));
    }
};
struct PowScalar {
    static constexpr bool uses_x = true, uses_y = false;
    double exponent;
    template <class T> RETORT_HD T forward(T x) const { return std::pow(x, T(exponent)); }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        if (exponent == 0) return T(0);
        return dy * T(exponent) * std::pow(x, T(exponent - 1));
    }
};
// clamp(x, lo, hi); the gradient passes where lo <= x <= hi (PyTorch's convention at the edges).
struct Clamp {
    static constexpr bool uses_x = true, uses_y = false;
    double lo, hi;  // -inf / +inf when a side is open
    template <class T> RETORT_HD T forward(T x) const {
        if (std::isnan(x)) return x;
        return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x);
    }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        return (x >= T(lo) && x <= T(hi)) ? dy : T(0);
    }
};

// ---- activations ----
struct Relu {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const { return x > T(0) ? x : T(0); }
    template <class T> RETORT_HD T backward(T, T y, T dy) const { return y > T(0) ? dy : T(0); }
};
struct Relu6 {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const {
        return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
    }
    template <class T> RETORT_HD T backward(T, T y, T dy) const {
        return (y > T(0) && y < T(6)) ? dy : T(0);  // same as 0 < x < 6
    }
};
struct LeakyRelu {
    static constexpr bool uses_x = true, uses_y = false;
    double slope;
    template <class T> RETORT_HD T forward(T x) const { return x > T(0) ? x : x * T(slope); }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        return x > T(0) ? dy : dy * T(slope);
    }
};
// gelu(x) = x * Phi(x), Phi the standard normal CDF (the exact, erf form).
struct GeluErf {
    static constexpr bool uses_x = true, uses_y = false;
    // normal_cdf and fast_exp vectorize for float (engine/math/fast_float.h)
    template <class T> RETORT_HD T forward(T x) const { return x * normal_cdf(x); }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        T pdf = fast_exp(T(-0.5) * x * x) * T(0.39894228040143267794);
        return dy * (normal_cdf(x) + x * pdf);
    }
};
// gelu with the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
struct GeluTanh {
    static constexpr bool uses_x = true, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const {
        T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
        return T(0.5) * x * (T(1) + std::tanh(inner));
    }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
        T t = std::tanh(inner);
        T dinner = T(0.79788456080286535588) * (T(1) + T(3 * 0.044715) * x * x);
        return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
    }
};
struct Sigmoid {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const { return T(1) / (T(1) + fast_exp(-x)); }
    template <class T> RETORT_HD T backward(T, T y, T dy) const { return dy * y * (T(1) - y); }
};
struct Silu {  // x * sigmoid(x), also called swish
    static constexpr bool uses_x = true, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const { return x / (T(1) + fast_exp(-x)); }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        T s = T(1) / (T(1) + fast_exp(-x));
        return dy * s * (T(1) + x * (T(1) - s));
    }
};
struct Tanh {
    static constexpr bool uses_x = false, uses_y = true;
    template <class T> RETORT_HD T forward(T x) const { return std::tanh(x); }
    template <class T> RETORT_HD T backward(T, T y, T dy) const { return dy * (T(1) - y * y); }
};
// hardswish(x) = x * relu6(x + 3) / 6 (MobileNetV3)
struct Hardswish {
    static constexpr bool uses_x = true, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const {
        T r = x + T(3);
        r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
        return x * r / T(6);
    }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        if (x < T(-3)) return T(0);
        if (x <= T(3)) return dy * (x / T(3) + T(0.5));
        return dy;
    }
};
// hardsigmoid(x) = relu6(x + 3) / 6
struct Hardsigmoid {
    static constexpr bool uses_x = true, uses_y = false;
    template <class T> RETORT_HD T forward(T x) const {
        T r = x + T(3);
        r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
        return r / T(6);
    }
    template <class T> RETORT_HD T backward(T x, T, T dy) const {
        return (x > T(-3) && x < T(3)) ? dy / T(6) : T(0);
    }
};

// Every functor above, for code that must name each one (the CUDA instantiations).
#define RETORT_FOR_EACH_UNARY(X)                                                                  \
    X(Neg) X(Exp) X(Log) X(Sqrt) X(Rsqrt) X(Abs) X(PowScalar) X(Clamp) X(Relu) X(Relu6)           \
    X(LeakyRelu) X(GeluErf) X(GeluTanh) X(Sigmoid) X(Silu) X(Tanh) X(Hardswish) X(Hardsigmoid)

}  // namespace retort::math
