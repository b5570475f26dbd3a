// engine/cuda/runtime.h: what the CUDA backend can report about the machine. Declared in every
// build; without CUDA built in, device_count() is 0 and the rest throw a clear error.
#pragma once

#include <cstddef>
#include <string>

#include "engine/device.h"

namespace retort::cuda {

bool built();                    // was retort compiled with the CUDA backend?
int device_count();              // visible GPUs (0 when none, or when CUDA is not built)
std::string device_name(int index);
// Runs a small kernel that applies engine/math functors on the GPU and checks the result against
// the same functors on the CPU. Returns the largest difference seen.
double self_test();

// Waits until the work queued on `device` has finished (nothing to wait for on the CPU).
void synchronize(Device device);

// Copies `bytes` between any two devices (CPU to CPU included), synchronously: the data is in
// place when it returns. An Error, naming the devices, when a GPU is involved and there is none.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes);

}  // namespace retort::cuda
