// distill/objectives/feature_map_table.cpp: the feature_map objectives' rows of the objective table.
#include "distill/objective.h"

namespace retort {

void add_feature_map_objectives(std::vector<ObjectiveEntry>& table) { (void)table; }

}  // namespace retort
