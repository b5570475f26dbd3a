// engine/engine.h: the engine's public API in one include: tensors, autograd, ops, optimizers,
// random numbers, threading, ranks (data parallel) and file formats. <retort/retort.h> includes it with the other areas.
//
// Not included here, because they are the engine's insides rather than its API: the CPU kernels
// (engine/cpu/), the scalar formulas shared with CUDA (engine/math/), the GPU kernels
// (engine/kernels/), the CUDA runtime (engine/cuda/), the allocator (engine/cpu_allocator.h) and the helper every unary op is built on
// (engine/ops/unary_op.h). They are installed all the same, for readers and for new ops.
#pragma once

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/flops.h"
#include "engine/io/atomic_file.h"
#include "engine/io/config.h"
#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/precision.h"
#include "engine/random.h"
#include "engine/shape.h"
#include "engine/storage.h"
#include "engine/tensor.h"
