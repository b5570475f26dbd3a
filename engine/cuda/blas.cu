// engine/cuda/blas.cu: cuBLAS behind the row-major gemm interface of engine/cuda/blas.h.
//
// cuBLAS is column-major. A row-major M x N matrix C is the column-major N x M matrix C^T, and
// C = op(A) op(B) is the same as C^T = op(B)^T op(A)^T: so every call passes B before A and N
// before M, with the same transpose flags and leading dimensions. Nothing is copied.
//
// Batches: when the items write distinct outputs at regular strides (the usual batched matmul
// and attention), one strided-batched call does them all. Items that share an output (the
// gradient of an operand broadcast over batch dims) run one after another in item order, the
// first with beta and the rest adding (beta = 1), which is what the CPU does and deterministic.
#include <cublas_v2.h>

#include <atomic>
#include <mutex>
#include <set>

#include "engine/cuda/blas.h"
#include "engine/cuda/launch.cuh"

namespace retort::cuda {

namespace {

std::atomic<bool> tf32_allowed{false};

void check_cublas(cublasStatus_t status, const char* call) {
    if (status != CUBLAS_STATUS_SUCCESS)
        fail("cuBLAS error in ", call, ": ", cublasGetStatusName(status), " (",
             static_cast<int>(status), "): ", cublasGetStatusString(status));
}

// One handle per GPU, bound to the device's stream, with the TF32 choice applied on every use.
cublasHandle_t handle_for(int device) {
    constexpr int kMaxDevices = 64;
    static std::mutex mutex;
    static cublasHandle_t handles[kMaxDevices] = {};
    require(device >= 0 && device < kMaxDevices, "GPU index ", device, " is out of range");
    std::lock_guard<std::mutex> lock(mutex);
    if (handles[device] == nullptr) {
        DeviceGuard guard(device);
        check_cublas(cublasCreate(&handles[device]), "cublasCreate");
        check_cublas(cublasSetStream(handles[device], current_stream(device)), "cublasSetStream");
    }
    check_cublas(cublasSetMathMode(handles[device], tf32_allowed ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                 : CUBLAS_DEFAULT_MATH),
                 "cublasSetMathMode");
    return handles[device];
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

int to_int(std::int64_t v, const char* what) {
    require(v >= 0 && v <= 0x7fffffff, "cuBLAS: ", what, " = ", v, " exceeds 32-bit int");
    return static_cast<int>(v);
}

void gemm_call(cublasHandle_t h, bool ta, bool tb, int M, int N, int K, const float* alpha,
               const float* A, int lda, const float* B, int ldb, const float* beta, float* C,
               int ldc) {
    check_cublas(cublasSgemm(h, op(tb), op(ta), N, M, K, alpha, B, ldb, A, lda, beta, C, ldc),
                 "cublasSgemm");
}
void gemm_call(cublasHandle_t h, bool ta, bool tb, int M, int N, int K, const double* alpha,
               const double* A, int lda, const double* B, int ldb, const double* beta, double* C,
               int ldc) {
    check_cublas(cublasDgemm(h, op(tb), op(ta), N, M, K, alpha, B, ldb, A, lda, beta, C, ldc),
                 "cublasDgemm");
}
void strided_call(cublasHandle_t h, bool ta, bool tb, int M, int N, int K, const float* alpha,
                  const float* A, int lda, long long sa, const float* B, int ldb, long long sb,
                  const float* beta, float* C, int ldc, long long sc, int count) {
    check_cublas(cublasSgemmStridedBatched(h, op(tb), op(ta), N, M, K, alpha, B, ldb, sb, A, lda,
                                           sa, beta, C, ldc, sc, count),
                 "cublasSgemmStridedBatched");
}
void strided_call(cublasHandle_t h, bool ta, bool tb, int M, int N, int K, const double* alpha,
                  const double* A, int lda, long long sa, const double* B, int ldb, long long sb,
                  const double* beta, double* C, int ldc, long long sc, int count) {
    check_cublas(cublasDgemmStridedBatched(h, op(tb), op(ta), N, M, K, alpha, B, ldb, sb, A, lda,
                                           sa, beta, C, ldc, sc, count),
                 "cublasDgemmStridedBatched");
}

template <class T>
void gemm_any(Device device, bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
              T alpha, const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
              std::int64_t ldc) {
    if (M == 0 || N == 0) return;
    DeviceGuard guard(device.index);
    gemm_call(handle_for(device.index), ta, tb, to_int(M, "M"), to_int(N, "N"), to_int(K, "K"),
              &alpha, A, to_int(lda, "lda"), B, to_int(ldb, "ldb"), &beta, C, to_int(ldc, "ldc"));
}

// The common stride of offsets[0..count), or -1 when they are not an arithmetic progression.
std::int64_t common_stride(const std::int64_t* offsets, std::int64_t count) {
    if (count < 2) return 0;
    const std::int64_t stride = offsets[1] - offsets[0];
    for (std::int64_t i = 2; i < count; ++i)
        if (offsets[i] - offsets[i - 1] != stride) return -1;
    return stride;
}

template <class T>
void gemm_batched_any(Device device, const cpu::GemmBatch<T>& g) {
    if (g.count == 0 || g.M == 0 || g.N == 0) return;
    const std::int64_t sa = common_stride(g.a_offset, g.count);
    const std::int64_t sb = common_stride(g.b_offset, g.count);
    const std::int64_t sc = common_stride(g.c_offset, g.count);
    const bool distinct_outputs = sc > 0 || g.count == 1;  // regular and increasing
    if (distinct_outputs && sa >= 0 && sb >= 0) {
        DeviceGuard guard(device.index);
        strided_call(handle_for(device.index), g.trans_a, g.trans_b, to_int(g.M, "M"),
                     to_int(g.N, "N"), to_int(g.K, "K"), &g.alpha, g.A + g.a_offset[0],
                     to_int(g.lda, "lda"), sa, g.B + g.b_offset[0], to_int(g.ldb, "ldb"), sb,
                     &g.beta, g.C + g.c_offset[0], to_int(g.ldc, "ldc"), sc,
                     to_int(g.count, "batch count"));
        return;
    }
    std::set<std::int64_t> written;
    for (std::int64_t i = 0; i < g.count; ++i) {
        const bool first = written.insert(g.c_offset[i]).second;
        gemm_any<T>(device, g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, g.A + g.a_offset[i],
                    g.lda, g.B + g.b_offset[i], g.ldb, first ? g.beta : T(1), g.C + g.c_offset[i],
                    g.ldc);
    }
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed = allow; }
bool allow_tf32() { return tf32_allowed; }

void gemm(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
          std::int64_t K, float alpha, const float* A, std::int64_t lda, const float* B,
          std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
    gemm_any<float>(device, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
          std::int64_t K, double alpha, const double* A, std::int64_t lda, const double* B,
          std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
    gemm_any<double>(device, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_batched(Device device, const cpu::GemmBatch<float>& batch) {
    gemm_batched_any(device, batch);
}
void gemm_batched(Device device, const cpu::GemmBatch<double>& batch) {
    gemm_batched_any(device, batch);
}

}  // namespace retort::cuda
