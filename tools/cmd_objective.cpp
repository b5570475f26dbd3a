// tools/cmd_objective.cpp: `retort objective`.
#include "engine/error.h"
#include "tools/commands.h"

namespace retort::cli {

int run_objective(const std::vector<std::string>&) { fail("retort objective: not built yet"); }

}  // namespace retort::cli
