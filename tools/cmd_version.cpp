// tools/cmd_version.cpp: `retort version`: version, build options, threads.
#include <cstdio>

#include "engine/parallel.h"
#include "tools/commands.h"

namespace retort::cli {

int run_version(const std::vector<std::string>&) {
    std::printf("retort 0.1.0\n");
#ifdef RETORT_HAVE_OPENMP
    std::printf("openmp: yes (%d threads)\n", num_threads());
#else
    std::printf("openmp: no\n");
#endif
#ifdef RETORT_HAVE_CUDA
    std::printf("cuda: built in\n");
#else
    std::printf("cuda: not built\n");
#endif
    return 0;
}

}  // namespace retort::cli
