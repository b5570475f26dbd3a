// engine/precision.h: the precision of the matrix products (matmul, linear, conv2d), chosen per
// run (run.precision) and in effect for the whole process, as torch's matmul precision is.
//
//   f32   products in float32 (the default: reproducible, and what the CPU computes)
//   tf32  on a GPU, float32 products on tensor cores with 10-bit mantissas (about 1e-3 relative
//         error); the CPU computes f32
//   bf16  the operands of every product rounded to bfloat16, the sums in float32: autocast with
//         float32 master weights, activations, reductions and optimizer state. On a GPU the
//         products run as bf16 GEMMs on tensor cores; the CPU emulates them (same rounding, f32
//         arithmetic), so CPU tests check what the GPU does
//   f16   the same with float16 operands; training then needs loss scaling (the trainer's)
//
// Only float32 tensors are affected; float64 products stay exact.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace retort {

enum class Precision { f32, tf32, bf16, f16 };

Precision parse_precision(const std::string& name);  // an Error naming the four otherwise
const char* precision_name(Precision precision);
void set_precision(Precision precision);
Precision precision();
// Does the current precision round the operands of products (bf16, f16)?
bool reduced_precision();

// t rounded to the current product precision: a copy for bf16 / f16 and a float32 t, otherwise t
// itself. Not differentiable (the ops call it on the values they multiply, not in the graph).
Tensor round_for_products(const Tensor& t);

}  // namespace retort
