// engine/optim.h: optimizers, learning-rate schedules and gradient clipping, one include.
#pragma once

#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/sgd.h"
