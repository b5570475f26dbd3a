// engine/ops/matmul.cpp: matrix products, matmul and linear.
//
// Shapes: M, K, N matrix sizes; (...) batch dims.
//   matmul  a (..., M, K) @ b (..., K, N) -> (..., M, N), the two (...) broadcast against each
//           other. A 1-D a (K) is used as (1, K) and a 1-D b (K) as (K, 1); the added dim is
//           removed from the result, so 1-D @ 1-D is a dot product of shape ().
//   linear  x (..., in), weight (out, in), bias (out) or undefined -> (..., out)
// Matches torch.matmul and torch.nn.functional.linear.
// Backward: for C = A B, dA = dC B^T and dB = A^T dC. The transposes are gemm flags: nothing
// transposed is ever materialized. A gradient of an operand that was broadcast over batch dims
// is summed over them (gemm_batched adds the items that share an operand, in a fixed order).
// Saved: each operand only if the other one needs a gradient (dA needs B, dB needs A), as
// detached views: no copies.
// Arithmetic: engine/cpu/gemm.h.
#include "engine/ops/matmul.h"

#include "engine/autograd.h"
#include "engine/flops.h"
#include "engine/cpu/gemm.h"
#include "engine/cuda/blas.h"
#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/ops.h"
#include "engine/precision.h"

namespace retort {

namespace {

void check_operands(const Tensor& a, const Tensor& b, const char* op, const char* a_name,
                    const char* b_name) {
    require(a.defined() && b.defined(), op, ": undefined tensor argument");
    require(a.dtype() == b.dtype(), op, ": dtype mismatch, ", a_name, " is ", dtype_name(a.dtype()),
            " and ", b_name, " is ", dtype_name(b.dtype()), " (convert one with .to())");
    require(is_floating(a.dtype()), op, ": expected floating-point tensors, got ",
            dtype_name(a.dtype()));
    require(a.device() == b.device(), op, ": ", a_name, " is on ", a.device().str(), " and ",
            b_name, " on ", b.device().str());
}

// For each item of the broadcast batch, the index of the matrix it takes from an operand with
// batch shape `own` (dims aligned to the right; a size-1 or missing dim repeats its matrix).
std::vector<std::int64_t> batch_sources(const Shape& own, const Shape& batch) {
    const std::size_t lead = batch.size() - own.size();
    Shape stride(batch.size(), 0);  // stride of each batch dim inside the operand, 0 = repeated
    std::int64_t step = 1;
    for (std::size_t d = batch.size(); d-- > lead;) {
        stride[d] = own[d - lead] == 1 ? 0 : step;
        step *= own[d - lead];
    }
    std::vector<std::int64_t> sources(static_cast<std::size_t>(shape_numel(batch)));
    for (std::size_t n = 0; n < sources.size(); ++n) {
        std::int64_t rest = static_cast<std::int64_t>(n), index = 0;
        for (std::size_t d = batch.size(); d-- > 0;) {
            index += rest % batch[d] * stride[d];
            rest /= batch[d];
        }
        sources[n] = index;
    }
    return sources;
}

// How a matmul maps onto gemm: both operands as stacks of matrices, and which pairs multiply.
struct MatmulPlan {
    std::int64_t M = 0, K = 0, N = 0;
    Shape out_shape;
    std::vector<std::int64_t> a_source, b_source;  // per output matrix: which matrix of a and b
    // b is a single matrix, so a's matrices stack into one tall (items * M) x K product.
    bool fold_a_rows = false;
    std::int64_t items() const { return static_cast<std::int64_t>(a_source.size()); }
};

MatmulPlan plan_matmul(const Shape& as, const Shape& bs) {
    require(!as.empty() && !bs.empty(), "matmul: both arguments need at least 1 dim, got shapes ",
            shape_str(as), " and ", shape_str(bs));
    // 1-D operands become matrices; the added dims are dropped from the result below.
    Shape a = as.size() == 1 ? Shape{1, as[0]} : as;
    Shape b = bs.size() == 1 ? Shape{bs[0], 1} : bs;
    MatmulPlan plan;
    plan.M = a[a.size() - 2];
    plan.K = a.back();
    plan.N = b.back();
    require(b[b.size() - 2] == plan.K, "matmul: shapes ", shape_str(as), " and ", shape_str(bs),
            " cannot be multiplied (", plan.K, " != ", b[b.size() - 2], ")");

    Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
    const std::size_t rank = std::max(a_batch.size(), b_batch.size());
    Shape batch(rank);
    for (std::size_t i = 0; i < rank; ++i) {  // broadcasting, aligned to the right
        std::int64_t x = i < rank - a_batch.size() ? 1 : a_batch[i - (rank - a_batch.size())];
        std::int64_t y = i < rank - b_batch.size() ? 1 : b_batch[i - (rank - b_batch.size())];
        require(x == y || x == 1 || y == 1, "matmul: the batch dims of shapes ", shape_str(as),
                " and ", shape_str(bs), " cannot broadcast");
        batch[i] = x == 1 ? y : x;
    }
    plan.a_source = batch_sources(a_batch, batch);
    plan.b_source = batch_sources(b_batch, batch);
    plan.fold_a_rows = shape_numel(b_batch) == 1;

    plan.out_shape = batch;
    if (as.size() > 1) plan.out_shape.push_back(plan.M);
    if (bs.size() > 1) plan.out_shape.push_back(plan.N);
    return plan;
}

// Element offsets of the matrices named by `sources`, each `matrix_size` elements long.
std::vector<std::int64_t> offsets(const std::vector<std::int64_t>& sources,
                                  std::int64_t matrix_size) {
    std::vector<std::int64_t> out(sources.size());
    for (std::size_t i = 0; i < sources.size(); ++i) out[i] = sources[i] * matrix_size;
    return out;
}

std::vector<std::int64_t> item_offsets(std::int64_t items, std::int64_t matrix_size) {
    std::vector<std::int64_t> out(static_cast<std::size_t>(items));
    for (std::int64_t i = 0; i < items; ++i) out[i] = i * matrix_size;
    return out;
}

// C[c_off[i]] (+)= op(X[x_off[i]]) op(Y[y_off[i]]) over all items; items sharing C are summed.
// C = alpha op(A) op(B) + beta C on whichever device the pointers live (engine/cpu/gemm.h's
// interface; engine/cuda/blas.h on a GPU).
template <class T>
void gemm_on(Device device, bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
             const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T* C, std::int64_t ldc,
             T beta = T(0)) {
    if (device.is_cuda()) cuda::gemm(device, ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
    else cpu::gemm(ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
}

template <class T>
void batched_product(Device device, bool trans_x, bool trans_y, std::int64_t M, std::int64_t N, std::int64_t K,
                     const T* X, std::int64_t ldx, const std::vector<std::int64_t>& x_off,
                     const T* Y, std::int64_t ldy, const std::vector<std::int64_t>& y_off, T* C,
                     const std::vector<std::int64_t>& c_off) {
    cpu::GemmBatch<T> g;
    g.trans_a = trans_x;
    g.trans_b = trans_y;
    g.M = M;
    g.N = N;
    g.K = K;
    g.A = X;
    g.lda = ldx;
    g.B = Y;
    g.ldb = ldy;
    g.C = C;
    g.ldc = N;
    g.count = static_cast<std::int64_t>(c_off.size());
    g.a_offset = x_off.data();
    g.b_offset = y_off.data();
    g.c_offset = c_off.data();
    if (device.is_cuda()) cuda::gemm_batched(device, g);
    else cpu::gemm_batched(g);
}

template <class T>
void matmul_forward(Device device, const MatmulPlan& p, const T* a, const T* b, T* c) {
    if (p.fold_a_rows) {
        gemm_on<T>(device, false, false, p.items() * p.M, p.N, p.K, a, p.K, b, p.N, c, p.N);
        return;
    }
    batched_product<T>(device, false, false, p.M, p.N, p.K, a, p.K, offsets(p.a_source, p.M * p.K), b,
                       p.N, offsets(p.b_source, p.K * p.N), c, item_offsets(p.items(), p.M * p.N));
}

// dA = dC B^T, summed over the output matrices that used each matrix of a.
template <class T>
void matmul_grad_a(Device device, const MatmulPlan& p, const T* dc, const T* b, T* da) {
    if (p.fold_a_rows) {
        gemm_on<T>(device, false, true, p.items() * p.M, p.K, p.N, dc, p.N, b, p.N, da, p.K);
        return;
    }
    batched_product<T>(device, false, true, p.M, p.K, p.N, dc, p.N, item_offsets(p.items(), p.M * p.N), b,
                       p.N, offsets(p.b_source, p.K * p.N), da, offsets(p.a_source, p.M * p.K));
}

// dB = A^T dC, summed over the output matrices that used each matrix of b.
template <class T>
void matmul_grad_b(Device device, const MatmulPlan& p, const T* a, const T* dc, T* db) {
    if (p.fold_a_rows) {  // one product over all stacked rows: (K x items M) (items M x N)
        gemm_on<T>(device, true, false, p.K, p.N, p.items() * p.M, a, p.K, dc, p.N, db, p.N);
        return;
    }
    batched_product<T>(device, true, false, p.K, p.N, p.M, a, p.K, offsets(p.a_source, p.M * p.K), dc, p.N,
                       item_offsets(p.items(), p.M * p.N), db, offsets(p.b_source, p.K * p.N));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
    check_operands(a, b, "matmul", "the first argument", "the second");
    const MatmulPlan plan = plan_matmul(a.shape(), b.shape());
    Tensor out = Tensor::empty(plan.out_shape, a.dtype(), a.device());
    const Tensor ra = round_for_products(a), rb = round_for_products(b);  // engine/precision.h
    visit_floating(a.dtype(), "matmul", [&]<class T>(Type<T>) {
        matmul_forward<T>(a.device(), plan, ra.device_data<T>(), rb.device_data<T>(),
                          out.device_data<T>());
    });
    add_flops(2 * plan.items() * plan.M * plan.N * plan.K);

    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    // dA needs only b and dB only a: save just what will be used.
    record(out, "matmul", {a, b},
           [sa = need_b ? a.detach() : Tensor(), sb = need_a ? b.detach() : Tensor(),
            a_shape = a.shape(), b_shape = b.shape(), plan, need_a, need_b](const Tensor& dc) {
               // An operand that no product used (an empty batch) gets a zero gradient.
               const Device device = dc.device();
               Tensor da = need_a ? zeros(a_shape, dc.dtype(), device) : Tensor();
               Tensor db = need_b ? zeros(b_shape, dc.dtype(), device) : Tensor();
               if (plan.items() == 0) return std::vector<Tensor>{da, db};
               const Tensor rdc = round_for_products(dc);
               const Tensor ra = need_b ? round_for_products(sa) : Tensor();
               const Tensor rb = need_a ? round_for_products(sb) : Tensor();
               visit_floating(dc.dtype(), "matmul backward", [&]<class T>(Type<T>) {
                   if (need_a)
                       matmul_grad_a<T>(device, plan, rdc.device_data<T>(), rb.device_data<T>(),
                                        da.device_data<T>());
                   if (need_b)
                       matmul_grad_b<T>(device, plan, ra.device_data<T>(), rdc.device_data<T>(),
                                        db.device_data<T>());
               });
               return std::vector<Tensor>{da, db};
           });
    return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    check_operands(x, weight, "linear", "the input", "the weight");
    require(x.dim() >= 1, "linear: the input needs at least 1 dim, got shape ",
            shape_str(x.shape()));
    require(weight.dim() == 2,
            "linear: expected a weight of shape (out_features, in_features), got ",
            shape_str(weight.shape()));
    const std::int64_t in = weight.size(1), out_features = weight.size(0);
    require(x.size(-1) == in, "linear: input of shape ", shape_str(x.shape()),
            " and weight of shape ", shape_str(weight.shape()),
            " do not fit: the input's last dim ", x.size(-1), " should equal in_features ", in);
    if (bias.defined()) {
        check_operands(x, bias, "linear", "the input", "the bias");
        require(bias.shape() == Shape{out_features}, "linear: expected a bias of shape (",
                out_features, ",) for weight of shape ", shape_str(weight.shape()), ", got ",
                shape_str(bias.shape()));
    }

    Shape out_shape = x.shape();
    out_shape.back() = out_features;
    const std::int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    const Device device = x.device();
    Tensor y = Tensor::empty(out_shape, x.dtype(), device);
    visit_floating(x.dtype(), "linear", [&]<class T>(Type<T>) {
        T beta = T(0);
        if (bias.defined()) {  // start every row at the bias and let gemm add x W^T onto it
            beta = T(1);
            if (device.is_cuda()) {
                const Shape bias_shape{out_features};
                cuda::launch(device, y.numel(),
                             kernels::BroadcastCopy<T>{bias.device_data<T>(), y.device_data<T>(),
                                                       kernels::make_broadcast_index<1>(
                                                           out_shape, {&bias_shape})});
            } else {
                T* py = y.data<T>();
                const T* pb = bias.data<T>();
                for (std::int64_t r = 0; r < rows; ++r)
                    std::copy(pb, pb + out_features, py + r * out_features);
            }
        }
        const Tensor rx = round_for_products(x), rw = round_for_products(weight);
        gemm_on<T>(device, false, true, rows, out_features, in, rx.device_data<T>(), in,
                   rw.device_data<T>(), in, y.device_data<T>(), out_features, beta);
    });
    add_flops(2 * rows * out_features * in);

    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    // dx needs only the weight and dW only the input: save just what will be used.
    record(y, "linear", {x, weight, bias},
           [sx = need_w ? x.detach() : Tensor(), sw = need_x ? weight.detach() : Tensor(),
            x_shape = x.shape(), w_shape = weight.shape(), rows, in, out_features, need_x,
            need_w, need_b](const Tensor& dy) {
               const Device device = dy.device();
               Tensor dx = need_x ? Tensor::empty(x_shape, dy.dtype(), device) : Tensor();
               Tensor dw = need_w ? Tensor::empty(w_shape, dy.dtype(), device) : Tensor();
               Tensor db;
               const Tensor rdy = round_for_products(dy);
               const Tensor rw = need_x ? round_for_products(sw) : Tensor();
               const Tensor rx = need_w ? round_for_products(sx) : Tensor();
               visit_floating(dy.dtype(), "linear backward", [&]<class T>(Type<T>) {
                   const T* g = rdy.device_data<T>();
                   if (need_x)  // dx (rows, in) = dy (rows, out) W (out, in)
                       gemm_on<T>(device, false, false, rows, in, out_features, g, out_features,
                                  rw.device_data<T>(), in, dx.device_data<T>(), in);
                   if (need_w)  // dW (out, in) = dy^T (out, rows) x (rows, in)
                       gemm_on<T>(device, true, false, out_features, in, rows, g, out_features,
                                  rx.device_data<T>(), in, dw.device_data<T>(), in);
               });
               if (need_b)  // db = dy summed over rows, in fixed chunks (sum's order)
                   db = sum(dy.reshape({rows, out_features}), {0});
               return std::vector<Tensor>{dx, dw, db};
           });
    return y;
}

}  // namespace retort
