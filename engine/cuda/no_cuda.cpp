// engine/cuda/no_cuda.cpp: the CUDA runtime entry points for a build without the CUDA backend.
#ifndef RETORT_HAVE_CUDA

#include "engine/cuda/runtime.h"
#include "engine/error.h"

namespace retort::cuda {

bool built() { return false; }
int device_count() { return 0; }
std::string device_name(int) { fail("this build of retort has no CUDA backend (RETORT_CUDA=OFF)"); }
double self_test() { fail("this build of retort has no CUDA backend (RETORT_CUDA=OFF)"); }

}  // namespace retort::cuda

#endif
