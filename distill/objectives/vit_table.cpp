// distill/objectives/vit_table.cpp: the rows of the objective table for the ViT objectives:
// DeiT's distillation token (deit_hard, deit_soft), attention maps (attn) and patch-level
// manifolds (manifold). Each row is built next to its objective (distill/objectives/<name>.cpp).
#include "distill/objectives/vit.h"

namespace retort {

void add_vit_objectives(std::vector<ObjectiveEntry>& table) {
    table.push_back(deit_hard_entry());
    table.push_back(deit_soft_entry());
    table.push_back(attn_entry());
    table.push_back(manifold_entry());
}

}  // namespace retort
