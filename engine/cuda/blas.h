// engine/cuda/blas.h: the matrix products of the CUDA backend, through cuBLAS, with exactly the
// interface of engine/cpu/gemm.h (row-major matrices, the same GemmBatch), so an op picks its
// backend with one branch. Pointers are device pointers on `device`.
//
// TF32: an H100 multiplies f32 matrices several times faster in TF32 (10-bit mantissas for the
// products), at the cost of agreeing with the CPU only to about 1e-3. retort keeps it off unless
// asked (set_allow_tf32; run.tf32 = true in a training config, `--tf32` for `retort bench model`),
// so results are reproducible by default.
#pragma once

#include <cstdint>

#include "engine/cpu/gemm.h"
#include "engine/device.h"

namespace retort::cuda {

void set_allow_tf32(bool allow);
bool allow_tf32();

void gemm(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
          std::int64_t K, float alpha, const float* A, std::int64_t lda, const float* B,
          std::int64_t ldb, float beta, float* C, std::int64_t ldc);
void gemm(Device device, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
          std::int64_t K, double alpha, const double* A, std::int64_t lda, const double* B,
          std::int64_t ldb, double beta, double* C, std::int64_t ldc);
void gemm_batched(Device device, const cpu::GemmBatch<float>& batch);
void gemm_batched(Device device, const cpu::GemmBatch<double>& batch);

}  // namespace retort::cuda
