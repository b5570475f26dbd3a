// distill/objectives/kdsvd.cpp: self-supervised knowledge distillation with singular value
// decomposition (KDSVD), and the small differentiable symmetric eigendecomposition it needs.
//
// Lee, Kim, Song, "Self-supervised Knowledge Distillation Using Singular Value Decomposition",
// ECCV 2018. Reference code followed: RepDistiller distiller_zoo/KDSVD.py (from the authors'
// TensorFlow code), on the stage outputs feat[1:-1] as RepDistiller's train loop passes them.
//
// Shapes: N >= 2 pairs of maps ordered shallow -> deep, student (B, C_i, Hs, Ws) and teacher
// (B, C_i, Ht, Wt) with the SAME channel count per pair (the relations below compare a student
// and a teacher vector entry by entry); k = the key `k`.
//
// Per pair, each sample's map is read as a matrix X (H*W, C) and decomposed, X = U S V^T:
//   teacher: v_t = its k leading right singular vectors (C, k); s_t = its k leading singular
//            values, divided by their norm
//   student: its k + 3 leading right singular vectors; each teacher vector takes the student
//            vector with the largest |cosine| to it, times the sign of that cosine (align_rsv)
//   both scaled by s_t:  v_t <- v_t * s_t,  v_s <- v_s * s_t
// Between consecutive pairs i-1, i, a Gaussian kernel relates every channel of one to every channel
// of the other, per singular vector:
//   K[b][c][c'][j] = exp(-(v^i[b][c][j] - v^(i-1)[b][c'][j])^2 / 8)
//   loss = sum_{i >= 1} sum (K_s - K_t)^2 / B      (non-finite entries count 0, as the reference)
// With k = 1 (the default) s_t is 1, so only the directions matter.
//
// The decomposition: retort's engine has no SVD, so this file computes what the loss needs from
// the smaller Gram matrix, in float64 whatever the input dtype: when H*W >= C, G = X^T X (C x C)
// = V S^2 V^T gives V directly; otherwise G = X X^T (HW x HW) = U S^2 U^T and V = X^T U / S.
// The eigendecomposition is cyclic Jacobi rotations (simple and accurate; about 40 C^3 flops per
// sample, so large maps are slow on the CPU). It is differentiable: for eigenpairs (l_j, q_j) and
// gradients (g_l, g_Q),
//   dG = sym( Q (diag(g_l) + F o (Q^T g_Q)) Q^T ),   F_ij = 1 / (l_j - l_i) off the diagonal,
// where entries whose Q^T g_Q factor is exactly 0 (eigenvectors the loss never reads) contribute 0
// rather than 0 * inf. That is the gradient torch.svd's backward gives for V (degenerate leading
// singular values make both infinite). Singular vectors have an arbitrary sign; the reference
// inherits LAPACK's, and the kernel K depends on it through the teacher. retort fixes it: each
// teacher vector's largest-magnitude entry is made positive (the student's sign follows the
// teacher's through align_rsv). The reference reshapes with H*H (square maps); retort uses H*W.
// A pair count below 2 is refused (the loss would be 0).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "distill/objectives/relation.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"

namespace retort {
namespace {

// Eigendecomposition of the symmetric n x n matrix `a` (row-major, overwritten) by cyclic Jacobi
// rotations. values: descending; vectors: row j holds the eigenvector of values[j], its
// largest-magnitude entry made positive.
void jacobi_eigen(std::vector<double>& a, std::int64_t n, double* values, double* vectors) {
    std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);  // columns: eigenvectors
    for (std::int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
    auto at = [&](std::int64_t r, std::int64_t c) -> double& { return a[r * n + c]; };
    double total = 0;
    for (double x : a) total += x * x;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (std::int64_t p = 0; p < n; ++p)
            for (std::int64_t q = p + 1; q < n; ++q) off += at(p, q) * at(p, q);
        if (off <= 1e-30 * total) break;
        for (std::int64_t p = 0; p < n; ++p) {
            for (std::int64_t q = p + 1; q < n; ++q) {
                const double apq = at(p, q);
                if (apq == 0.0) continue;
                // the rotation in the (p, q) plane that zeroes a[p][q], by the smaller angle
                const double theta = (at(q, q) - at(p, p)) / (2.0 * apq);
                const double t = theta == 0.0 ? 1.0
                                              : std::copysign(1.0, theta) /
                                                    (std::abs(theta) + std::sqrt(theta * theta + 1.0));
                const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
                for (std::int64_t k = 0; k < n; ++k) {
                    const double kp = at(k, p), kq = at(k, q);
                    at(k, p) = c * kp - s * kq;
                    at(k, q) = s * kp + c * kq;
                }
                for (std::int64_t k = 0; k < n; ++k) {
                    const double pk = at(p, k), qk = at(q, k);
                    at(p, k) = c * pk - s * qk;
                    at(q, k) = s * pk + c * qk;
                }
                at(p, q) = at(q, p) = 0.0;
                for (std::int64_t k = 0; k < n; ++k) {
                    const double kp = v[k * n + p], kq = v[k * n + q];
                    v[k * n + p] = c * kp - s * kq;
                    v[k * n + q] = s * kp + c * kq;
                }
            }
        }
    }
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t x, std::int64_t y) { return at(x, x) > at(y, y); });
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t col = order[j];
        values[j] = at(col, col);
        std::int64_t largest = 0;
        for (std::int64_t k = 1; k < n; ++k)
            if (std::abs(v[k * n + col]) > std::abs(v[largest * n + col])) largest = k;
        const double sign = v[largest * n + col] < 0 ? -1.0 : 1.0;
        for (std::int64_t k = 0; k < n; ++k) vectors[j * n + k] = sign * v[k * n + col];
    }
}

// g (B, n, n) symmetric -> packed (B, n + 1, n): row 0 the eigenvalues (descending), row 1 + j
// eigenvector j. One tensor carries both so that one autograd node serves both; narrow() takes
// them apart. Backward: see the file header; saves the packed output.
Tensor symmetric_eigen(const Tensor& g) {
    require(g.device().is_cpu(), "kdsvd: the eigendecomposition has no kernel for ",
            g.device().str(), " tensors yet");
    const std::int64_t batch = g.size(0), n = g.size(1);
    Tensor packed = Tensor::empty({batch, n + 1, n}, g.dtype());
    visit_floating(g.dtype(), "kdsvd", [&]<class T>(Type<T>) {
        const T* in = g.data<T>();
        T* out = packed.data<T>();
        parallel_for(0, batch, 1, [&](std::int64_t begin, std::int64_t end) {
            std::vector<double> a(static_cast<std::size_t>(n * n)), values(n),
                vectors(static_cast<std::size_t>(n * n));
            for (std::int64_t b = begin; b < end; ++b) {
                std::copy(in + b * n * n, in + (b + 1) * n * n, a.begin());
                jacobi_eigen(a, n, values.data(), vectors.data());
                T* o = out + b * (n + 1) * n;
                std::copy(values.begin(), values.end(), o);
                std::copy(vectors.begin(), vectors.end(), o + n);
            }
        });
    });
    record(packed, "symmetric_eigen", {g}, [saved = packed.detach(), batch, n](const Tensor& grad) {
        Tensor q_rows = narrow(saved, 1, 1, n);                     // (B, n, n), row j = q_j
        Tensor q = transpose(q_rows, 1, 2);                         // columns q_j
        Tensor grad_rows = narrow(grad, 1, 1, n);                   // row j = dL/dq_j
        Tensor m = matmul(q_rows, transpose(grad_rows, 1, 2));      // m[i][j] = q_i . dL/dq_j
        Tensor inner = Tensor::empty({batch, n, n}, grad.dtype());
        visit_floating(grad.dtype(), "kdsvd backward", [&]<class T>(Type<T>) {
            const T* values = saved.data<T>();
            const T* grad_values = grad.data<T>();
            const T* mv = m.data<T>();
            T* out = inner.data<T>();
            for (std::int64_t b = 0; b < batch; ++b) {
                const T* l = values + b * (n + 1) * n;
                const T* gl = grad_values + b * (n + 1) * n;
                for (std::int64_t i = 0; i < n; ++i)
                    for (std::int64_t j = 0; j < n; ++j) {
                        const T mij = mv[(b * n + i) * n + j];
                        out[(b * n + i) * n + j] =
                            i == j ? gl[i] : (mij == T(0) ? T(0) : mij / (l[j] - l[i]));
                    }
            }
        });
        Tensor a = matmul(matmul(q, inner), q_rows);
        return std::vector<Tensor>{(a + transpose(a, 1, 2)) * 0.5};
    });
    return packed;
}

struct Singular {
    Tensor vectors;  // (B, C, n) leading right singular vectors, unit columns
    Tensor values;   // (B, n) leading singular values
};

// The n leading right singular vectors of each sample's (H*W, C) matrix, from the smaller Gram.
Singular leading_singular(const Tensor& map, std::int64_t n) {
    const std::int64_t batch = map.size(0), channels = map.size(1);
    const std::int64_t pixels = map.size(2) * map.size(3);
    Tensor x = transpose(map.reshape({batch, channels, pixels}), 1, 2);  // (B, HW, C)
    const bool channel_gram = pixels >= channels;
    const std::int64_t size = channel_gram ? channels : pixels;
    n = std::min(n, size);
    Tensor gram = channel_gram ? matmul(transpose(x, 1, 2), x) : matmul(x, transpose(x, 1, 2));
    Tensor packed = symmetric_eigen(gram);
    Tensor eigenvalues = narrow(narrow(packed, 1, 0, 1), 2, 0, n).reshape({batch, n});
    Tensor leading = transpose(narrow(narrow(packed, 1, 1, n), 2, 0, size), 1, 2);  // (B, size, n)
    Tensor values = sqrt(clamp(eigenvalues, 0.0, std::nullopt));
    if (channel_gram) return {leading, values};
    // V = X^T U / S; the reference's normalize() of the columns keeps them unit length
    Tensor v = matmul(transpose(x, 1, 2), leading) / values.unsqueeze(1);
    return {normalize(v, 2.0, 1), values};
}

// Each column times the sign of its largest-magnitude entry (no graph: used on the teacher).
Tensor fix_signs(const Tensor& v) {
    Tensor magnitude = abs(v);
    Tensor largest = argmax(magnitude, 1, true);  // (B, 1, k)
    Tensor picked = gather(v, 1, largest);
    return v * where(lt(picked, zeros_like(picked)), -ones_like(picked), ones_like(picked));
}

// The reference's align_rsv: for each teacher vector, the student vector of largest |cosine|,
// with that cosine's sign. The selection is a constant; the gradient flows through v_s.
Tensor align_student(const Tensor& v_s, const Tensor& v_t) {
    Tensor selection;
    {
        NoGradGuard no_grad;
        Tensor cosine = matmul(transpose(v_s.detach(), 1, 2), v_t.detach());  // (B, ns, k)
        Tensor magnitude = abs(cosine);
        Tensor best = max(magnitude, 1, true).values;
        selection = where(eq(magnitude, broadcast_to(best, magnitude.shape())),
                          where(gt(cosine, zeros_like(cosine)), ones_like(cosine),
                                where(lt(cosine, zeros_like(cosine)), -ones_like(cosine),
                                      zeros_like(cosine))),
                          zeros_like(cosine));
    }
    return matmul(v_s, selection);  // (B, C, k)
}

// exp(-(v[c] - w[c'])^2 / 8) over all channel pairs: v (B, C1, k), w (B, C0, k) -> (B, C1, C0, k)
Tensor channel_kernel(const Tensor& v, const Tensor& w) {
    Tensor d = v.unsqueeze(2) - w.unsqueeze(1);
    return exp(-(d * d) / 8.0);
}

class Kdsvd : public Objective {
public:
    Kdsvd(const ObjectiveSetup& setup, std::int64_t k) : Objective("KDSVD"), pairs_(setup.pairs), k_(k) {
        for (const ObjectiveSetup::Pair& p : pairs_) {
            require(p.student_shape.size() == 4 && p.teacher_shape.size() == 4, "kdsvd: pair '",
                    p.name, "' needs (B, C, H, W) maps on both sides, got student ",
                    shape_str(p.student_shape), " and teacher ", shape_str(p.teacher_shape));
            require(p.student_shape[1] == p.teacher_shape[1], "kdsvd: pair '", p.name,
                    "' needs as many student as teacher channels (the kernels compare them entry "
                    "by entry), got ", p.student_shape[1], " and ", p.teacher_shape[1]);
            const std::int64_t teacher_rank =
                std::min(p.teacher_shape[1], p.teacher_shape[2] * p.teacher_shape[3]);
            require(teacher_rank >= k_, "kdsvd: pair '", p.name, "': the teacher map has only ",
                    teacher_rank, " singular vectors, k = ", k_);
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, pairs_.size(), "kdsvd");
        Tensor total, previous_s, previous_t;
        for (std::size_t i = 0; i < pairs_.size(); ++i) {
            relation::check_pair_shapes(in.features[i], pairs_[i], "kdsvd");
            Tensor v_t, scale;
            {
                NoGradGuard no_grad;
                Singular t = leading_singular(in.features[i].teacher.detach(), k_);
                scale = normalize(t.values, 2.0, 1).unsqueeze(1);  // (B, 1, k)
                v_t = fix_signs(t.vectors) * scale;
            }
            Tensor v_s = align_student(leading_singular(in.features[i].student, k_ + 3).vectors, v_t) * scale;
            if (i > 0) {
                Tensor teacher_kernel;
                {
                    NoGradGuard no_grad;
                    teacher_kernel = channel_kernel(v_t, previous_t);
                }
                Tensor diff = channel_kernel(v_s, previous_s) - teacher_kernel;
                Tensor squared = diff * diff;
                Tensor value = squared.detach();
                Tensor finite = eq(value - value, value - value);  // 0 where inf or nan
                Tensor loss = sum(where(finite, squared, zeros_like(squared))) /
                              static_cast<double>(in.features[0].student.size(0));
                total = total.defined() ? total + loss : loss;
            }
            previous_s = v_s;
            previous_t = v_t;
        }
        return total;
    }

private:
    std::vector<ObjectiveSetup::Pair> pairs_;
    std::int64_t k_;
};

}  // namespace

ObjectiveEntry kdsvd_entry() {
    ObjectiveEntry e;
    e.name = "kdsvd";
    e.paper = "Lee et al. 2018, Self-supervised Knowledge Distillation Using Singular Value "
              "Decomposition (ECCV)";
    e.reference = "RepDistiller distiller_zoo/KDSVD.py";
    e.taps = "two or more (B, C, H, W) pairs shallow to deep, equal channels per pair (stage outputs)";
    e.defaults = "k=1";
    e.min_pairs = 2;
    e.max_pairs = -1;
    e.declare = [](Config& config) {
        config.declare_int("kdsvd", "k", 1, 1, 64,
                           "teacher singular vectors compared (the student offers k + 3)");
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<Kdsvd>(setup, config.get_int("kdsvd.k"));
    };
    return e;
}

}  // namespace retort
