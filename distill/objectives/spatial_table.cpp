// distill/objectives/spatial_table.cpp: the rows of the objective table for the spatial-matching objectives (tat, cskd).
#include "distill/objective.h"

namespace retort {

void add_spatial_objectives(std::vector<ObjectiveEntry>& table) {
    (void)table;
}

}  // namespace retort
