// engine/ops/attention.h: scaled dot-product attention as one op, on the fused kernels of
// engine/kernels/attention.h (torch.nn.functional.scaled_dot_product_attention without mask or
// dropout, with an explicit scale):
//
//   out = softmax(scale * q k^T, over the keys) v        q (..., Nq, D), k and v (..., Nk, D)
//
// The probabilities are never stored: the forward pass keeps one log-sum-exp per query row, and
// the backward pass recomputes them. Where the probabilities are wanted (a distillation objective
// reading attn.L) or attention dropout is on, the layers compose matmul and softmax instead.
//
// Which path the layers take is a process-wide choice (attention_kernel): `gemm` (the default:
// batched matrix products and a softmax, the fastest on the CPU, and where run.precision's 16-bit
// products apply) or `fused`. tools/gpu-check.sh measures both on a GPU.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace retort {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

enum class AttentionKernel { gemm, fused };
void set_attention_kernel(AttentionKernel kernel);
AttentionKernel attention_kernel();
// "gemm" or "fused"; an Error naming both otherwise.
AttentionKernel parse_attention_kernel(const std::string& name);
const char* attention_kernel_name(AttentionKernel kernel);

}  // namespace retort
