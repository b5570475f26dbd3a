// engine/ops/attention.cpp: fused scaled dot-product attention, forward and backward (see the
// header; the arithmetic is in engine/kernels/attention.h, run on the CPU or launched on a GPU).
#include "engine/ops/attention.h"

#include <atomic>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/attention.h"

namespace retort {

namespace {

std::atomic<AttentionKernel> chosen{AttentionKernel::gemm};

struct Dims3 {
    std::int64_t heads, nq, nk, d;  // heads: the product of the leading dims
};

Dims3 check_shapes(const Tensor& q, const Tensor& k, const Tensor& v) {
    const char* op = "scaled_dot_product_attention";
    require(q.defined() && k.defined() && v.defined(), op, ": undefined tensor argument");
    require(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op,
            ": q, k and v must be (..., N, D) with the same number of dims, got ", shape_str(q.shape()), ", ",
            shape_str(k.shape()), " and ", shape_str(v.shape()));
    require(k.shape() == v.shape(), op, ": k and v must have the same shape, got ", shape_str(k.shape()), " and ",
            shape_str(v.shape()));
    const int n = q.dim();
    for (int i = 0; i < n - 2; ++i)
        require(q.size(i) == k.size(i), op, ": q and k differ in dim ", i, ": ", shape_str(q.shape()), " and ",
                shape_str(k.shape()));
    require(q.size(n - 1) == k.size(n - 1), op, ": q and k must have the same last dim D, got ",
            shape_str(q.shape()), " and ", shape_str(k.shape()));
    require(q.dtype() == k.dtype() && q.dtype() == v.dtype() && q.device() == k.device() &&
                q.device() == v.device(),
            op, ": q, k and v must share dtype and device");
    require(k.size(n - 2) > 0, op, ": there must be at least one key");
    return {q.numel() / (q.size(n - 2) * q.size(n - 1)), q.size(n - 2), k.size(n - 2), q.size(n - 1)};
}

}  // namespace

void set_attention_kernel(AttentionKernel kernel) { chosen = kernel; }
AttentionKernel attention_kernel() { return chosen; }

AttentionKernel parse_attention_kernel(const std::string& name) {
    if (name == "gemm") return AttentionKernel::gemm;
    if (name == "fused") return AttentionKernel::fused;
    fail("attention kernel must be gemm or fused, got '", name, "'");
}

const char* attention_kernel_name(AttentionKernel kernel) {
    return kernel == AttentionKernel::fused ? "fused" : "gemm";
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
    const Dims3 s = check_shapes(q, k, v);
    Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
    Tensor lse = Tensor::empty({s.heads, s.nq}, q.dtype(), q.device());
    visit_floating(q.dtype(), "scaled_dot_product_attention", [&]<class T>(Type<T>) {
        run(q.device(), s.heads * s.nq,
            kernels::AttentionForwardRow<T>{q.device_data<T>(), k.device_data<T>(), v.device_data<T>(),
                                            out.device_data<T>(), lse.device_data<T>(), s.nq, s.nk, s.d,
                                            static_cast<T>(scale)},
            1);
    });
    record(out, "scaled_dot_product_attention", {q, k, v},
           [q = q.detach(), k = k.detach(), v = v.detach(), o = out.detach(), lse, s, scale](const Tensor& dout) {
               Tensor dq = Tensor::empty(q.shape(), q.dtype(), q.device());
               Tensor dk = Tensor::empty(k.shape(), k.dtype(), k.device());
               Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
               Tensor delta = Tensor::empty({s.heads, s.nq}, q.dtype(), q.device());
               visit_floating(q.dtype(), "scaled_dot_product_attention backward", [&]<class T>(Type<T>) {
                   const T sc = static_cast<T>(scale);
                   run(q.device(), s.heads * s.nq,
                       kernels::AttentionBackwardQueryRow<T>{
                           q.device_data<T>(), k.device_data<T>(), v.device_data<T>(), o.device_data<T>(),
                           dout.device_data<T>(), lse.device_data<T>(), dq.device_data<T>(),
                           delta.device_data<T>(), s.nq, s.nk, s.d, sc},
                       1);
                   run(q.device(), s.heads * s.nk,
                       kernels::AttentionBackwardKeyRow<T>{
                           q.device_data<T>(), k.device_data<T>(), v.device_data<T>(), dout.device_data<T>(),
                           lse.device_data<T>(), delta.device_data<T>(), dk.device_data<T>(),
                           dv.device_data<T>(), s.nq, s.nk, s.d, sc},
                       1);
               });
               return std::vector<Tensor>{dq, dk, dv};
           });
    return out;
}

}  // namespace retort
