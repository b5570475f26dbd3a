// tests/test_cuda.cpp: CUDA backend checks. They run only where a GPU is visible; elsewhere each
// test reports that it skipped (the arithmetic they exercise is covered by the CPU tests through
// the shared engine/math functors).
#include <doctest/doctest.h>

#include "engine/cuda/runtime.h"
#include "engine/error.h"

using namespace retort;

TEST_CASE("cuda: GPU kernel agrees with the CPU functors") {
    if (cuda::device_count() == 0) {
        MESSAGE("skipped: no CUDA device (CUDA built in: ", cuda::built(), ")");
        return;
    }
    MESSAGE("device 0: ", cuda::device_name(0));
    CHECK(cuda::self_test() < 1e-6);
}

TEST_CASE("cuda: device queries without a GPU are safe") {
    CHECK(cuda::device_count() >= 0);
    if (!cuda::built()) CHECK_THROWS_AS(cuda::self_test(), Error);
}
