// distill/objectives/spatial.h: the spatial-matching objectives (tat, cskd): their rows of the
// objective table. Each objective's formula, paper and reference code are at the top of its own
// file (distill/objectives/tat.cpp, cskd.cpp); spatial_table.cpp lists the rows in order.
//
// Shapes: B batch, C channels, H x W a feature map, N tokens, K classes.
#pragma once

#include "distill/objective.h"

namespace retort {

ObjectiveEntry tat_entry();
ObjectiveEntry cskd_entry();

}  // namespace retort
