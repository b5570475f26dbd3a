// engine/math/hd.h: RETORT_HD marks a function that both the CPU and CUDA compilers build.
// Scalar arithmetic lives in such functions so the CPU tests exercise exactly the code a CUDA
// kernel runs; only the loop around it differs between the backends.
#pragma once

#if defined(__CUDACC__)
#define RETORT_HD __host__ __device__
#else
#define RETORT_HD
#endif
