// distill/objectives/vit.h: the objectives for ViT students and ViT pairs (deit_hard, deit_soft,
// attn, manifold): their table rows. Each objective lives in its own file (deit.cpp holds both
// DeiT variants), which opens with the formula, the paper and the reference code followed, and
// ends with its row; vit_table.cpp lists the rows in order.
//
// Shapes: B batch, K classes, H attention heads, N tokens, C channels.
#pragma once

#include "distill/objective.h"

namespace retort {

ObjectiveEntry deit_hard_entry();
ObjectiveEntry deit_soft_entry();
ObjectiveEntry attn_entry();
ObjectiveEntry manifold_entry();

}  // namespace retort
