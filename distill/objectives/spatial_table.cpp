// distill/objectives/spatial_table.cpp: the rows of the objective table for the spatial-matching
// objectives, in the order the README lists them: tat (any pair of feature maps, ViT tokens read as
// a map) and cskd (a CNN teacher's dense predictions for a DeiT student). Each row is built next
// to its objective (distill/objectives/<name>.cpp).
#include "distill/objectives/spatial.h"

namespace retort {

void add_spatial_objectives(std::vector<ObjectiveEntry>& table) {
    table.push_back(tat_entry());
    table.push_back(cskd_entry());
}

}  // namespace retort
