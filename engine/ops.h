// engine/ops.h: every op of the engine, one include. Each family's header says what its ops
// compute and on which shapes; the matching .cpp holds forward and backward side by side.
#pragma once

#include "engine/ops/activation.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/fft.h"
#include "engine/ops/interpolate.h"
#include "engine/ops/loss.h"
#include "engine/ops/matmul.h"
#include "engine/ops/normalization.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduction.h"
#include "engine/ops/shape_ops.h"
#include "engine/ops/softmax.h"
#include "engine/random.h"
#include "engine/tensor.h"
