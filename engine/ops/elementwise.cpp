// engine/ops/elementwise.cpp: add, sub, mul, div, pow, minimum, maximum, where, comparisons and
// unary math, with broadcasting.
// Shapes: a (...), b (...) -> broadcast_shapes(a, b). Matches torch.add, torch.mul, ... .
// Backward: each input's gradient is computed at the output's shape, then summed back over the
// dims that broadcasting stretched (sum_to). Saved: only the inputs (or output) the formula uses.
// Arithmetic: the loops are engine/cpu/broadcast.h; unary formulas are engine/math/unary.h.
#include "engine/ops/elementwise.h"

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/cpu/broadcast.h"
#include "engine/math/unary.h"
#include "engine/ops.h"
#include "engine/ops/unary_op.h"

namespace retort {

namespace {

void check_cpu(const Tensor& t, const char* op) {
    require(t.device().is_cpu(), op, ": no kernel for ", t.device().str(), " tensors yet");
}

void check_binary(const Tensor& a, const Tensor& b, const char* op) {
    require(a.defined() && b.defined(), op, ": undefined tensor argument");
    require(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " and ",
            dtype_name(b.dtype()), " (convert one with .to())");
    require(a.device() == b.device(), op, ": tensors are on different devices, ",
            a.device().str(), " and ", b.device().str());
    check_cpu(a, op);
}

// out = f(a, b) elementwise with broadcasting, for any dtype.
template <class F>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, F f) {
    check_binary(a, b, op);
    Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
    Tensor out = Tensor::empty(out_shape, a.dtype());
    visit_dtype(a.dtype(), [&]<class T>(Type<T>) {
        cpu::map2(a.data<T>(), a.shape(), b.data<T>(), b.shape(), out.data<T>(), out_shape,
                  [&](T x, T y) { return static_cast<T>(f(x, y)); });
    });
    return out;
}

Tensor scalar_like(double value, const Tensor& t) { return scalar_tensor(value, t.dtype()); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "add", [](auto x, auto y) { return x + y; });
    record(out, "add", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
    });
    return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "sub", [](auto x, auto y) { return x - y; });
    record(out, "sub", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, sa), sum_to(neg(g), sb)};
    });
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "mul", [](auto x, auto y) { return x * y; });
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    record(out, "mul", {a, b}, [sa = a.detach(), sb = b.detach(), need_a, need_b](const Tensor& g) {
        return std::vector<Tensor>{need_a ? sum_to(mul(g, sb), sa.shape()) : Tensor(),
                                   need_b ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
    });
    return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
    if (!is_floating(a.dtype()) && a.defined() && b.defined() && a.dtype() == b.dtype()) {
        // integer division would truncate silently; PyTorch's div is true division too
        fail("div: integer tensors (", dtype_name(a.dtype()), "); convert to float first");
    }
    Tensor out = binary(a, b, "div", [](auto x, auto y) { return x / y; });
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    record(out, "div", {a, b},
           [sb = b.detach(), so = out.detach(), sa_shape = a.shape(), need_a,
            need_b](const Tensor& g) {
               Tensor ga = need_a ? sum_to(div(g, sb), sa_shape) : Tensor();
               // d(a/b)/db = -a/b^2 = -out/b
               Tensor gb = need_b ? sum_to(neg(mul(g, div(so, sb))), sb.shape()) : Tensor();
               return std::vector<Tensor>{ga, gb};
           });
    return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
    require(is_floating(a.dtype()), "pow: expected floating-point tensors, got ",
            dtype_name(a.dtype()));
    Tensor out = binary(a, b, "pow", [](auto x, auto y) { return std::pow(x, y); });
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    record(out, "pow", {a, b},
           [sa = a.detach(), sb = b.detach(), so = out.detach(), need_a, need_b](const Tensor& g) {
               // d(a^b)/da = b a^(b-1); d(a^b)/db = a^b log(a)
               Tensor ga = need_a ? sum_to(mul(g, mul(sb, pow(sa, sub(sb, scalar_like(1, sb))))),
                                           sa.shape())
                                  : Tensor();
               Tensor gb = need_b ? sum_to(mul(g, mul(so, log(sa))), sb.shape()) : Tensor();
               return std::vector<Tensor>{ga, gb};
           });
    return out;
}

Tensor pow(const Tensor& a, double exponent) {
    return unary_op(a, "pow", math::PowScalar{exponent});
}

// minimum/maximum: the gradient goes to the selected input; on ties it is split in half (PyTorch).
namespace {
Tensor select_extreme(const Tensor& a, const Tensor& b, bool want_max) {
    const char* op = want_max ? "maximum" : "minimum";
    Tensor out = binary(a, b, op, [want_max](auto x, auto y) {
        if (std::isnan(static_cast<double>(x)) || std::isnan(static_cast<double>(y)))
            return std::isnan(static_cast<double>(x)) ? x : y;  // NaN propagates
        return want_max ? (x > y ? x : y) : (x < y ? x : y);
    });
    record(out, op, {a, b}, [sa = a.detach(), sb = b.detach(), want_max](const Tensor& g) {
        Tensor a_wins = want_max ? gt(sa, sb) : lt(sa, sb);
        Tensor tie = eq(sa, sb);
        Tensor share_a = add(a_wins, mul(tie, scalar_like(0.5, tie)));  // 1, 0.5 or 0
        Tensor share_b = sub(scalar_like(1, share_a), share_a);
        return std::vector<Tensor>{sum_to(mul(g, share_a), sa.shape()),
                                   sum_to(mul(g, share_b), sb.shape())};
    });
    return out;
}
}  // namespace

Tensor minimum(const Tensor& a, const Tensor& b) { return select_extreme(a, b, false); }
Tensor maximum(const Tensor& a, const Tensor& b) { return select_extreme(a, b, true); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_binary(a, b, "where");
    check_cpu(cond, "where");
    Shape out_shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"),
                                       b.shape(), "where");
    Tensor out = Tensor::empty(out_shape, a.dtype());
    visit_dtype(cond.dtype(), [&]<class C>(Type<C>) {
        visit_dtype(a.dtype(), [&]<class T>(Type<T>) {
            cpu::map3(cond.data<C>(), cond.shape(), a.data<T>(), a.shape(), b.data<T>(), b.shape(),
                      out.data<T>(), out_shape, [](C c, T x, T y) { return c != C(0) ? x : y; });
        });
    });
    record(out, "where", {cond, a, b}, [sc = cond.detach(), sa = a.shape(), sb = b.shape()](
                                           const Tensor& g) {
        Tensor zero = scalar_like(0, g);
        return std::vector<Tensor>{Tensor(), sum_to(where(sc, g, zero), sa),
                                   sum_to(where(sc, zero, g), sb)};
    });
    return out;
}

// ---- comparisons (not differentiable) ----
Tensor eq(const Tensor& a, const Tensor& b) {
    return binary(a, b, "eq", [](auto x, auto y) { return x == y ? 1 : 0; });
}
Tensor ne(const Tensor& a, const Tensor& b) {
    return binary(a, b, "ne", [](auto x, auto y) { return x != y ? 1 : 0; });
}
Tensor lt(const Tensor& a, const Tensor& b) {
    return binary(a, b, "lt", [](auto x, auto y) { return x < y ? 1 : 0; });
}
Tensor le(const Tensor& a, const Tensor& b) {
    return binary(a, b, "le", [](auto x, auto y) { return x <= y ? 1 : 0; });
}
Tensor gt(const Tensor& a, const Tensor& b) {
    return binary(a, b, "gt", [](auto x, auto y) { return x > y ? 1 : 0; });
}
Tensor ge(const Tensor& a, const Tensor& b) {
    return binary(a, b, "ge", [](auto x, auto y) { return x >= y ? 1 : 0; });
}

// ---- unary math ----
Tensor neg(const Tensor& x) {
    if (!is_floating(x.dtype())) return sub(scalar_like(0, x), x);
    return unary_op(x, "neg", math::Neg{});
}
Tensor exp(const Tensor& x) { return unary_op(x, "exp", math::Exp{}); }
Tensor log(const Tensor& x) { return unary_op(x, "log", math::Log{}); }
Tensor sqrt(const Tensor& x) { return unary_op(x, "sqrt", math::Sqrt{}); }
Tensor rsqrt(const Tensor& x) { return unary_op(x, "rsqrt", math::Rsqrt{}); }
Tensor abs(const Tensor& x) { return unary_op(x, "abs", math::Abs{}); }
Tensor square(const Tensor& x) { return mul(x, x); }

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
    const double inf = std::numeric_limits<double>::infinity();
    double l = lo.value_or(-inf), h = hi.value_or(inf);
    require(!(l > h), "clamp: min (", l, ") is greater than max (", h, ")");
    return unary_op(x, "clamp", math::Clamp{l, h});
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
    require(broadcast_shapes(x.shape(), shape, "broadcast_to") == shape, "broadcast_to: shape ",
            shape_str(x.shape()), " cannot be expanded to ", shape_str(shape));
    if (x.shape() == shape) return x;
    check_cpu(x, "broadcast_to");
    Tensor out = Tensor::empty(shape, x.dtype());
    visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
        cpu::map2(x.data<T>(), x.shape(), x.data<T>(), x.shape(), out.data<T>(), shape,
                  [](T v, T) { return v; });
    });
    record(out, "broadcast_to", {x}, [sx = x.shape()](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, sx)};
    });
    return out;
}

// ---- operators ----
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

}  // namespace retort
