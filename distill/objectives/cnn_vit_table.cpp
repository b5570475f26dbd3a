// distill/objectives/cnn_vit_table.cpp: the rows of the objective table for the ViT-to-CNN objectives (fourier, cakd).
#include "distill/objective.h"

namespace retort {

void add_cnn_vit_objectives(std::vector<ObjectiveEntry>& table) {
    (void)table;
}

}  // namespace retort
