// engine/cuda/fft.cu: cuFFT behind engine/cuda/fft.h, and the GPU instantiations of the FFT ops'
// elementwise kernels (engine/kernels/fft.h).
//
// A batch of 2-D transforms is one cufftPlanMany plan over contiguous signals (the default
// strides). cuFFT plans cost milliseconds and some memory to make, so each is cached by its
// (device, kind, H, W, batch) and bound to the device's stream.
#include <cufft.h>

#include <map>
#include <mutex>
#include <tuple>

#include "engine/cuda/fft.h"
#include "engine/cuda/launch.cuh"
#include "engine/kernels/fft.h"

namespace retort::cuda {

namespace {

const char* cufft_name(cufftResult status) {
    switch (status) {
        case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
        case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
        case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
        case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
        case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
        case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
        case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
        default: return "cuFFT error";
    }
}

void check_cufft(cufftResult status, const char* call) {
    if (status != CUFFT_SUCCESS)
        fail("cuFFT error in ", call, ": ", cufft_name(status), " (", static_cast<int>(status), ")");
}

using PlanKey = std::tuple<int, int, std::int64_t, std::int64_t, std::int64_t>;

cufftHandle plan_for(int device, cufftType type, std::int64_t batch, std::int64_t height,
                     std::int64_t width) {
    static std::mutex mutex;
    static std::map<PlanKey, cufftHandle> plans;
    require(height <= 0x7fffffff && width <= 0x7fffffff && batch <= 0x7fffffff,
            "fft2 on a GPU: sizes (", batch, ", ", height, ", ", width, ") exceed 32-bit int");
    const PlanKey key{device, static_cast<int>(type), batch, height, width};
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    DeviceGuard guard(device);
    cufftHandle plan = 0;
    int n[2] = {static_cast<int>(height), static_cast<int>(width)};
    check_cufft(cufftPlanMany(&plan, 2, n, nullptr, 1, 0, nullptr, 1, 0, type,
                              static_cast<int>(batch)),
                "cufftPlanMany");
    check_cufft(cufftSetStream(plan, current_stream(device)), "cufftSetStream");
    plans.emplace(key, plan);
    return plan;
}

}  // namespace

void fft2_complex(Device device, DType dtype, void* data, std::int64_t batch, std::int64_t height,
                  std::int64_t width, bool inverse) {
    if (batch == 0) return;
    DeviceGuard guard(device.index);
    const int direction = inverse ? CUFFT_INVERSE : CUFFT_FORWARD;
    if (dtype == DType::f32) {
        auto* z = static_cast<cufftComplex*>(data);
        check_cufft(cufftExecC2C(plan_for(device.index, CUFFT_C2C, batch, height, width), z, z,
                                 direction),
                    "cufftExecC2C");
    } else {
        auto* z = static_cast<cufftDoubleComplex*>(data);
        check_cufft(cufftExecZ2Z(plan_for(device.index, CUFFT_Z2Z, batch, height, width), z, z,
                                 direction),
                    "cufftExecZ2Z");
    }
}

void fft2_real_to_half(Device device, DType dtype, const void* x, void* out, std::int64_t batch,
                       std::int64_t height, std::int64_t width) {
    if (batch == 0) return;
    DeviceGuard guard(device.index);
    // cuFFT's real-to-complex transforms take a non-const input (they may use it as scratch
    // for some sizes, so the op hands them a copy it does not need afterwards)
    if (dtype == DType::f32)
        check_cufft(cufftExecR2C(plan_for(device.index, CUFFT_R2C, batch, height, width),
                                 static_cast<cufftReal*>(const_cast<void*>(x)),
                                 static_cast<cufftComplex*>(out)),
                    "cufftExecR2C");
    else
        check_cufft(cufftExecD2Z(plan_for(device.index, CUFFT_D2Z, batch, height, width),
                                 static_cast<cufftDoubleReal*>(const_cast<void*>(x)),
                                 static_cast<cufftDoubleComplex*>(out)),
                    "cufftExecD2Z");
}

#define RETORT_LAUNCH_FFT(T)                                                               \
    template void launch(Device, std::int64_t, const kernels::HalfSpectrumScale<T>&);     \
    template void launch(Device, std::int64_t, const kernels::PadHalfSpectrum<T>&);       \
    template void launch(Device, std::int64_t, const kernels::RealPart<T>&);              \
    template void launch(Device, std::int64_t, const kernels::ComplexAbs<T>&);            \
    template void launch(Device, std::int64_t, const kernels::ComplexAbsBackward<T>&);    \
    template void launch(Device, std::int64_t, const kernels::ComplexAngle<T>&);          \
    template void launch(Device, std::int64_t, const kernels::ComplexAngleBackward<T>&);
RETORT_LAUNCH_FFT(float)
RETORT_LAUNCH_FFT(double)

}  // namespace retort::cuda
