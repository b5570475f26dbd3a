// distill/objectives/relation_table.cpp: the relation objectives' rows of the objective table.
#include "distill/objective.h"

namespace retort {

void add_relation_objectives(std::vector<ObjectiveEntry>& table) { (void)table; }

}  // namespace retort
