// distill/objectives/logit_table.cpp: the logit objectives' rows of the objective table.
#include "distill/objective.h"

namespace retort {

void add_logit_objectives(std::vector<ObjectiveEntry>& table) { (void)table; }

}  // namespace retort
