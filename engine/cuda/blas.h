// engine/cuda/blas.h: the matrix products of the CUDA backend, through cuBLAS, with exactly the
// interface of engine/cpu/gemm.h (row-major matrices, the same GemmBatch), so an op picks its
// backend with one branch. Pointers are device pointers on `device`.
//
// Precision: the product precision of engine/precision.h. f32 computes in plain float32 (the
// default, reproducible); tf32 lets cuBLAS use TF32 tensor cores (about 1e-3 relative error);
// bf16 and f16 convert the float32 operands to 16 bits and run cublasGemmEx with float32
// accumulation and output (the ops have rounded the operands already, so the conversion is
// exact and the CPU's emulation computes the same products).
#pragma once

#include <cstdint>

#include "engine/cpu/gemm.h"
#include "engine/device.h"

namespace retort::cuda {


void gemm(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
          std::int64_t K, float alpha, const float* A, std::int64_t lda, const float* B,
          std::int64_t ldb, float beta, float* C, std::int64_t ldc);
void gemm(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
          std::int64_t K, double alpha, const double* A, std::int64_t lda, const double* B,
          std::int64_t ldb, double beta, double* C, std::int64_t ldc);
void gemm_batched(Device device, const cpu::GemmBatch<float>& batch);
void gemm_batched(Device device, const cpu::GemmBatch<double>& batch);

}  // namespace retort::cuda
