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

#include <mutex>
#include <set>
#include <type_traits>

#include "engine/cuda/blas.h"
#include "engine/cuda/launch.cuh"
#include "engine/kernels/precision.h"
#include "engine/precision.h"
#include "engine/tensor.h"

namespace retort::cuda {

namespace {

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
    check_cublas(cublasSetMathMode(handles[device], precision() == Precision::tf32
                                                        ? CUBLAS_TF32_TENSOR_OP_MATH
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

// ---- bf16 / f16 products: 16-bit copies of the operands, float32 accumulation and output ----

// Elements an operand spans: `rows` rows of `cols` used columns, `ld` apart.
std::int64_t extent(std::int64_t rows, std::int64_t cols, std::int64_t ld) {
    return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

// The 16-bit copy of n floats, in a scratch tensor from the caching allocator.
Tensor half_copy(Device device, const float* x, std::int64_t n, bool bf16) {
    Tensor bits = Tensor::empty({(n + 1) / 2}, DType::f32, device);  // 2 halves per float
    launch(device, n,
           kernels::ToHalfBits{x, static_cast<std::uint16_t*>(bits.raw_device_data()), bf16});
    return bits;
}

void gemm_reduced(Device device, bool ta, bool tb, int M, int N, int K, float alpha,
                  const float* A, int lda, std::int64_t a_span, long long sa, const float* B,
                  int ldb, std::int64_t b_span, long long sb, float beta, float* C, int ldc,
                  long long sc, int count) {
    const bool bf16 = precision() == Precision::bf16;
    const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    const Tensor a16 = half_copy(device, A, a_span, bf16), b16 = half_copy(device, B, b_span, bf16);
    cublasHandle_t h = handle_for(device.index);
    if (count == 1) {
        check_cublas(cublasGemmEx(h, op(tb), op(ta), N, M, K, &alpha, b16.raw_device_data(), type,
                                  ldb, a16.raw_device_data(), type, lda, &beta, C, CUDA_R_32F, ldc,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx");
        return;
    }
    check_cublas(cublasGemmStridedBatchedEx(h, op(tb), op(ta), N, M, K, &alpha,
                                            b16.raw_device_data(), type, ldb, sb,
                                            a16.raw_device_data(), type, lda, sa, &beta, C,
                                            CUDA_R_32F, ldc, sc, count, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT),
                 "cublasGemmStridedBatchedEx");
}

bool use_reduced(const float*) { return reduced_precision(); }
bool use_reduced(const double*) { return false; }  // float64 products stay exact

template <class T>
void gemm_any(Device device, bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
              T alpha, const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
              std::int64_t ldc) {
    if (M == 0 || N == 0) return;
    DeviceGuard guard(device.index);
    if constexpr (std::is_same_v<T, float>) {
        if (use_reduced(A) && K > 0) {
            gemm_reduced(device, ta, tb, to_int(M, "M"), to_int(N, "N"), to_int(K, "K"), alpha, A,
                         to_int(lda, "lda"), ta ? extent(K, M, lda) : extent(M, K, lda), 0, B,
                         to_int(ldb, "ldb"), tb ? extent(N, K, ldb) : extent(K, N, ldb), 0, beta,
                         C, to_int(ldc, "ldc"), 0, 1);
            return;
        }
    }
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
        if constexpr (std::is_same_v<T, float>) {
            if (use_reduced(g.A) && g.K > 0) {
                const std::int64_t a_one = g.trans_a ? extent(g.K, g.M, g.lda) : extent(g.M, g.K, g.lda);
                const std::int64_t b_one = g.trans_b ? extent(g.N, g.K, g.ldb) : extent(g.K, g.N, g.ldb);
                gemm_reduced(device, g.trans_a, g.trans_b, to_int(g.M, "M"), to_int(g.N, "N"),
                             to_int(g.K, "K"), g.alpha, g.A + g.a_offset[0], to_int(g.lda, "lda"),
                             sa * (g.count - 1) + a_one, sa, g.B + g.b_offset[0],
                             to_int(g.ldb, "ldb"), sb * (g.count - 1) + b_one, sb, g.beta,
                             g.C + g.c_offset[0], to_int(g.ldc, "ldc"), sc,
                             to_int(g.count, "batch count"));
                return;
            }
        }
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

namespace retort::cuda {
template void launch(Device, std::int64_t, const kernels::RoundTo&);
template void launch(Device, std::int64_t, const kernels::ToHalfBits&);
}  // namespace retort::cuda
