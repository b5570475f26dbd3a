// engine/cuda/cudnn_norm.cu: batch norm in training mode through cuDNN (engine/cuda/cudnn_norm.h).
// Host code only. Built with the CUDA backend; without cuDNN the functions are Errors (batch_norm
// does not call them then).
#include "engine/cuda/cudnn_norm.h"

#include "engine/error.h"

#if defined(RETORT_HAVE_CUDNN)

#include "engine/cuda/cudnn_common.cuh"

namespace retort::cuda {

namespace {

int as_int(std::int64_t v) {
    require(v >= 0 && v <= 0x7fffffff, "cuDNN batch norm: size ", v, " exceeds 32-bit int");
    return static_cast<int>(v);
}

// The data as (B, C, S, 1) and the per-channel parameters as (1, C, 1, 1).
struct Descriptors {
    cudnnTensorDescriptor_t data = nullptr, params = nullptr;
    Descriptors(DType dtype, const CudnnBatchNormShape& s) {
        const cudnnDataType_t type = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
        check_cudnn(cudnnCreateTensorDescriptor(&data), "cudnnCreateTensorDescriptor");
        check_cudnn(cudnnCreateTensorDescriptor(&params), "cudnnCreateTensorDescriptor");
        check_cudnn(cudnnSetTensor4dDescriptor(data, CUDNN_TENSOR_NCHW, type, as_int(s.batch),
                                               as_int(s.channels), as_int(s.positions), 1),
                    "cudnnSetTensor4dDescriptor");
        check_cudnn(cudnnDeriveBNTensorDescriptor(params, data, CUDNN_BATCHNORM_SPATIAL),
                    "cudnnDeriveBNTensorDescriptor");
    }
    ~Descriptors() {
        cudnnDestroyTensorDescriptor(data);
        cudnnDestroyTensorDescriptor(params);
    }
    Descriptors(const Descriptors&) = delete;
    Descriptors& operator=(const Descriptors&) = delete;
};

}  // namespace

void cudnn_batch_norm_forward_training(Device device, DType dtype, const CudnnBatchNormShape& s,
                                       const void* x, void* y, const void* weight,
                                       const void* bias, void* running_mean, void* running_var,
                                       double momentum, double eps, void* save_mean,
                                       void* save_invstd) {
    DeviceGuard guard(device.index);
    const Descriptors d(dtype, s);
    const double one = 1, zero = 0;
    const float one_f = 1, zero_f = 0;
    const bool f64 = dtype == DType::f64;
    check_cudnn(cudnnBatchNormalizationForwardTraining(
                    cudnn_handle(device.index), CUDNN_BATCHNORM_SPATIAL,
                    f64 ? static_cast<const void*>(&one) : &one_f,
                    f64 ? static_cast<const void*>(&zero) : &zero_f, d.data, x, d.data, y, d.params,
                    weight, bias, momentum, running_mean, running_var, eps, save_mean, save_invstd),
                "cudnnBatchNormalizationForwardTraining");
}

void cudnn_batch_norm_backward(Device device, DType dtype, const CudnnBatchNormShape& s,
                               const void* x, const void* dy, const void* weight, void* dx,
                               void* dweight, void* dbias, double eps, const void* save_mean,
                               const void* save_invstd) {
    DeviceGuard guard(device.index);
    const Descriptors d(dtype, s);
    const double one = 1, zero = 0;
    const float one_f = 1, zero_f = 0;
    const bool f64 = dtype == DType::f64;
    const void* alpha = f64 ? static_cast<const void*>(&one) : &one_f;
    const void* beta = f64 ? static_cast<const void*>(&zero) : &zero_f;
    check_cudnn(cudnnBatchNormalizationBackward(cudnn_handle(device.index), CUDNN_BATCHNORM_SPATIAL,
                                                alpha, beta, alpha, beta, d.data, x, d.data, dy,
                                                d.data, dx, d.params, weight, dweight, dbias, eps,
                                                save_mean, save_invstd),
                "cudnnBatchNormalizationBackward");
}

}  // namespace retort::cuda

#else

namespace retort::cuda {

void cudnn_batch_norm_forward_training(Device, DType, const CudnnBatchNormShape&, const void*,
                                       void*, const void*, const void*, void*, void*, double,
                                       double, void*, void*) {
    fail("this build of retort has no cuDNN");
}
void cudnn_batch_norm_backward(Device, DType, const CudnnBatchNormShape&, const void*,
                               const void*, const void*, void*, void*, void*, double, const void*,
                               const void*) {
    fail("this build of retort has no cuDNN");
}

}  // namespace retort::cuda

#endif
