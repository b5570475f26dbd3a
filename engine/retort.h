// engine/retort.h: the engine's public API in one include.
#pragma once

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/random.h"
#include "engine/tensor.h"
