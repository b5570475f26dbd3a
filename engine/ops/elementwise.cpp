// engine/ops/elementwise.cpp: add, sub, mul, div, pow, minimum, maximum, where, comparisons and
// unary math, with broadcasting.
// Shapes: a (...), b (...) -> broadcast_shapes(a, b). Matches torch.add, torch.mul, ... .
// Backward: each input's gradient is computed at the output's shape, then summed back over the
// dims that broadcasting stretched (sum_to). Saved: only the inputs (or output) the formula uses.
// Arithmetic: the loops are engine/cpu/broadcast.h; the formulas are engine/math/binary.h and
// engine/math/unary.h. On a GPU the kernels of engine/kernels/elementwise.h run the same formulas.
#include "engine/ops/elementwise.h"

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/cpu/broadcast.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/math/binary.h"
#include "engine/math/unary.h"
#include "engine/ops.h"
#include "engine/ops/unary_op.h"

namespace retort {

namespace {

// A 0-dim CPU tensor may meet a tensor on a GPU (a scalar written in code, as PyTorch allows);
// it is copied over. Any other mix of devices is an error.
Tensor on_device_of(const Tensor& t, const Tensor& other) {
    if (t.device() == other.device() || t.dim() != 0 || !t.device().is_cpu()) return t;
    return t.to(other.device());
}

void check_binary(const Tensor& a, const Tensor& b, const char* op) {
    require(a.defined() && b.defined(), op, ": undefined tensor argument");
    require(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " and ",
            dtype_name(b.dtype()), " (convert one with .to())");
    require(a.device() == b.device(), op, ": tensors are on different devices, ",
            a.device().str(), " and ", b.device().str());
}

// out = Op::apply(a, b) elementwise with broadcasting, for any dtype (Op from math/binary.h).
template <class Op>
Tensor binary(const Tensor& a_in, const Tensor& b_in, const char* op) {
    require(a_in.defined() && b_in.defined(), op, ": undefined tensor argument");
    const Tensor a = on_device_of(a_in, b_in), b = on_device_of(b_in, a_in);
    check_binary(a, b, op);
    Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
    Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
    visit_dtype(a.dtype(), [&]<class T>(Type<T>) {
        if (a.device().is_cuda()) {
            cuda::launch(a.device(), out.numel(),
                         kernels::Binary<Op, T>{
                             a.device_data<T>(), b.device_data<T>(), out.device_data<T>(),
                             kernels::make_broadcast_index<2>(out_shape, {&a.shape(), &b.shape()})});
            return;
        }
        cpu::map2(a.data<T>(), a.shape(), b.data<T>(), b.shape(), out.data<T>(), out_shape,
                  [](T x, T y) { return Op::apply(x, y); });
    });
    return out;
}

Tensor scalar_like(double value, const Tensor& t) {
    return scalar_tensor(value, t.dtype(), t.device());
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = binary<math::Add>(a, b, "add");
    record(out, "add", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
    });
    return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = binary<math::Sub>(a, b, "sub");
    record(out, "sub", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, sa), sum_to(neg(g), sb)};
    });
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = binary<math::Mul>(a, b, "mul");
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
    Tensor out = binary<math::Div>(a, b, "div");
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
    Tensor out = binary<math::Pow>(a, b, "pow");
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
    Tensor out = want_max ? binary<math::Maximum>(a, b, op) : binary<math::Minimum>(a, b, op);
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

Tensor where(const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
    require(cond_in.defined() && a_in.defined() && b_in.defined(),
            "where: undefined tensor argument");
    const Tensor a = on_device_of(a_in, b_in), b = on_device_of(b_in, a_in);
    const Tensor cond = on_device_of(cond_in, a);
    check_binary(a, b, "where");
    require(cond.device() == a.device(), "where: the condition is on ", cond.device().str(),
            " and the values on ", a.device().str());
    Shape out_shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"),
                                       b.shape(), "where");
    Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
    visit_dtype(cond.dtype(), [&]<class C>(Type<C>) {
        visit_dtype(a.dtype(), [&]<class T>(Type<T>) {
            if (a.device().is_cuda()) {
                cuda::launch(a.device(), out.numel(),
                             kernels::Where<C, T>{cond.device_data<C>(), a.device_data<T>(),
                                                  b.device_data<T>(), out.device_data<T>(),
                                                  kernels::make_broadcast_index<3>(
                                                      out_shape, {&cond.shape(), &a.shape(),
                                                                  &b.shape()})});
                return;
            }
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
    return binary<math::Eq>(a, b, "eq");
}
Tensor ne(const Tensor& a, const Tensor& b) {
    return binary<math::Ne>(a, b, "ne");
}
Tensor lt(const Tensor& a, const Tensor& b) {
    return binary<math::Lt>(a, b, "lt");
}
Tensor le(const Tensor& a, const Tensor& b) {
    return binary<math::Le>(a, b, "le");
}
Tensor gt(const Tensor& a, const Tensor& b) {
    return binary<math::Gt>(a, b, "gt");
}
Tensor ge(const Tensor& a, const Tensor& b) {
    return binary<math::Ge>(a, b, "ge");
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
    Tensor out = Tensor::empty(shape, x.dtype(), x.device());
    visit_dtype(x.dtype(), [&]<class T>(Type<T>) {
        if (x.device().is_cuda()) {
            cuda::launch(x.device(), out.numel(),
                         kernels::BroadcastCopy<T>{x.device_data<T>(), out.device_data<T>(),
                                                   kernels::make_broadcast_index<1>(
                                                       shape, {&x.shape()})});
            return;
        }
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
