// distill/objectives/feature_map_table.cpp: the feature_map objectives' rows of the objective table,
// in the order the README lists them. Each row is built next to its objective
// (distill/objectives/<name>.cpp); the shared pieces are in feature_map_common.h.
#include "distill/objective.h"
#include "distill/objectives/feature_map_common.h"

namespace retort {

void add_feature_map_objectives(std::vector<ObjectiveEntry>& table) {
    table.push_back(fitnet_entry());
    table.push_back(at_entry());
    table.push_back(sp_entry());
    table.push_back(nst_entry());
    table.push_back(fsp_entry());
    table.push_back(ft_entry());
    table.push_back(ab_entry());
    table.push_back(ofd_entry());
}

}  // namespace retort
