// tools/cmd_demo.cpp: `retort demo`, placeholder until the MLP fit lands below.
#include <cstdio>

#include "tools/commands.h"

namespace retort::cli {
int run_demo(const std::vector<std::string>&) { return 0; }
}  // namespace retort::cli
