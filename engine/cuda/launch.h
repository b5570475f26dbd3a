// engine/cuda/launch.h: how an op runs a kernel of engine/kernels/ on a GPU.
//
//     cuda::launch(device, n, kernel)   calls kernel(i) for i in [0, n) on `device`, one GPU
//                                       thread per i, on the device's current stream
//     run(device, n, kernel[, grain])   the same on whichever device: a GPU launch, or
//                                       kernels::for_each_cpu on the CPU (in chunks of
//                                       `grain` indices per thread: 1 when each is costly)
//
// launch is a template defined in engine/cuda/launch.cuh and instantiated, kernel by kernel, in
// the .cu files next to it (one per family: elementwise.cu, reduce.cu, ...); a kernel with no
// instantiation fails to link, so a forgotten one is found when retort is built, never at run
// time. In a build without the CUDA backend, launch is an Error (no GPU tensor can exist there
// anyway).
#pragma once

#include <cstdint>

#include "engine/device.h"
#include "engine/kernels/for_each.h"

namespace retort::cuda {

[[noreturn]] void no_backend();  // the Error of a build without CUDA (engine/cuda/no_cuda.cpp)

#if defined(RETORT_HAVE_CUDA)
template <class Kernel>
void launch(Device device, std::int64_t n, const Kernel& kernel);
#else
template <class Kernel>
void launch(Device, std::int64_t, const Kernel&) {
    no_backend();
}
#endif

}  // namespace retort::cuda

namespace retort {

template <class Kernel>
void run(Device device, std::int64_t n, const Kernel& kernel, std::int64_t grain = 16384) {
    if (device.is_cuda()) cuda::launch(device, n, kernel);
    else kernels::for_each_cpu(n, kernel, grain);
}

}  // namespace retort
