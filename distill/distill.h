// distill/distill.h: training and distillation in one include: the objectives' interface and
// registry, the distiller that combines them, the training loop with its checkpoints and
// metrics, the configurations, and the strategies (mutual learning, self-distillation,
// born-again generations).
//
// Not included: the headers the objectives share among themselves (distill/objectives/*.h); an
// objective written outside retort needs only distill/objective.h (tools/examples/new_objective.cpp).
#pragma once

#include "distill/born_again.h"
#include "distill/checkpoint.h"
#include "distill/distill_config.h"
#include "distill/distiller.h"
#include "distill/metrics_csv.h"
#include "distill/mutual_learning.h"
#include "distill/objective.h"
#include "distill/progress.h"
#include "distill/self_distillation.h"
#include "distill/teacher_cache.h"
#include "distill/train_config.h"
#include "distill/trainer.h"
