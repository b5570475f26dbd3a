// engine/cpu/gemm.h: the matrix product every dense op is built on.
//
//     C = alpha * op(A) * op(B) + beta * C        op(X) = X, or X transposed when trans_x
//
// All matrices are row-major: element (i, j) of a matrix with leading dimension ld sits at
// [i * ld + j]. op(A) is M x K, op(B) is K x N, C is M x N. So A is stored M x K (lda >= K), or
// K x M when trans_a (lda >= M); likewise B. When beta == 0, C's old contents are never read
// (they may be garbage or NaN), as in BLAS.
//
// The result is bitwise identical for any thread count: threads split the output into blocks and
// every element of C is summed over K in one fixed order.
//
// matmul, linear and conv2d call only these functions, so a tuned library can later replace the
// implementation in gemm.cpp without touching any op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace retort::cpu {

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc);
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
          const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta,
          double* C, std::int64_t ldc);

// Many products of the same sizes: item i computes
//     C[c_offset[i]] = alpha * op(A[a_offset[i]]) * op(B[b_offset[i]]) + beta * C[c_offset[i]]
// with offsets in elements. Items may share A or B (broadcasting). Items that share a C offset
// are summed into it in item order: the first uses beta, the later ones add (beta = 1). That is
// how a gradient is reduced over broadcast batch dims, deterministically.
template <class T>
struct GemmBatch {
    bool trans_a = false, trans_b = false;
    std::int64_t M = 0, N = 0, K = 0;
    T alpha = T(1), beta = T(0);
    const T* A = nullptr;
    std::int64_t lda = 0;
    const T* B = nullptr;
    std::int64_t ldb = 0;
    T* C = nullptr;
    std::int64_t ldc = 0;
    std::int64_t count = 0;
    const std::int64_t* a_offset = nullptr;
    const std::int64_t* b_offset = nullptr;
    const std::int64_t* c_offset = nullptr;
};
void gemm_batched(const GemmBatch<float>& batch);
void gemm_batched(const GemmBatch<double>& batch);

// The micro-kernels this CPU can run, fastest first: some of "avx512f", "avx2+fma", "portable".
std::vector<std::string> gemm_kernels();
// The one in use (by default the fastest), for benchmarks and logs.
const char* gemm_kernel_name();
// Switches every later gemm to the named micro-kernel (one of gemm_kernels()), so tests and
// benchmarks can exercise each of them on one machine. Throws retort::Error for other names.
void set_gemm_kernel(const std::string& name);

}  // namespace retort::cpu
