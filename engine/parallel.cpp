// engine/parallel.cpp: the thread-count setting.
#include "engine/parallel.h"

#include "engine/error.h"

namespace retort {

int num_threads() {
#ifdef RETORT_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    require(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
#ifdef RETORT_HAVE_OPENMP
    omp_set_num_threads(n);
#endif
}

}  // namespace retort
