// engine/cuda/cudnn_conv.cu: conv2d through cuDNN (engine/cuda/cudnn_conv.h). Host code only:
// descriptors, the algorithm choice per shape, the workspace, and the calls. Built with the CUDA
// backend; without cuDNN (RETORT_HAVE_CUDNN unset) only cudnn_built() = false and errors remain.
#include "engine/cuda/cudnn_conv.h"

#include <atomic>

#include "engine/error.h"

namespace retort::cuda {
namespace {
std::atomic<bool> cudnn_wanted{true};
std::atomic<bool> cudnn_depthwise_wanted{true};
}  // namespace
void set_use_cudnn(bool use) { cudnn_wanted = use; }
bool use_cudnn() { return cudnn_wanted && cudnn_built(); }
void set_cudnn_depthwise(bool use) { cudnn_depthwise_wanted = use; }
bool cudnn_for(bool depthwise) { return use_cudnn() && (!depthwise || cudnn_depthwise_wanted); }
}  // namespace retort::cuda

#if defined(RETORT_HAVE_CUDNN)

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "engine/precision.h"
#include "engine/cuda/cudnn_common.cuh"
#include "engine/cuda/launch.cuh"
#include "engine/tensor.h"

namespace retort::cuda {

namespace {

constexpr std::size_t kMaxWorkspace = std::size_t(1) << 30;

// The descriptors of one convolution shape and the algorithms chosen for it.
struct ConvPlan {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    cudnnConvolutionFwdAlgo_t forward{};
    cudnnConvolutionBwdDataAlgo_t backward_data{};
    cudnnConvolutionBwdFilterAlgo_t backward_filter{};
    std::size_t forward_bytes = 0, data_bytes = 0, filter_bytes = 0;
};

int as_int(std::int64_t v) {
    require(v >= 0 && v <= 0x7fffffff, "cuDNN convolution: size ", v, " exceeds 32-bit int");
    return static_cast<int>(v);
}

// The first (fastest by cuDNN's heuristics) usable result that is deterministic and fits the
// workspace limit; failing that, the first usable one.
template <class Perf>
const Perf& pick(const std::vector<Perf>& results, int count, const char* what) {
    const Perf* fallback = nullptr;
    for (int i = 0; i < count; ++i) {
        const Perf& p = results[i];
        if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace) continue;
        if (p.determinism == CUDNN_DETERMINISTIC) return p;
        if (!fallback) fallback = &p;
    }
    require(fallback != nullptr, "cuDNN found no ", what, " algorithm for this convolution");
    return *fallback;
}

ConvPlan make_plan(cudnnHandle_t h, DType dtype, const CudnnConvShape& s) {
    const cudnnDataType_t type = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    ConvPlan p;
    check_cudnn(cudnnCreateTensorDescriptor(&p.x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&p.y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&p.w), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&p.conv), "cudnnCreateConvolutionDescriptor");
    check_cudnn(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, type, as_int(s.batch),
                                           as_int(s.in_channels), as_int(s.height),
                                           as_int(s.width)),
                "cudnnSetTensor4dDescriptor");
    check_cudnn(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, type, as_int(s.batch),
                                           as_int(s.out_channels), as_int(s.out_h), as_int(s.out_w)),
                "cudnnSetTensor4dDescriptor");
    check_cudnn(cudnnSetFilter4dDescriptor(p.w, type, CUDNN_TENSOR_NCHW, as_int(s.out_channels),
                                           as_int(s.in_channels / s.groups), as_int(s.kernel_h),
                                           as_int(s.kernel_w)),
                "cudnnSetFilter4dDescriptor");
    check_cudnn(cudnnSetConvolution2dDescriptor(p.conv, as_int(s.padding[0]), as_int(s.padding[1]),
                                                as_int(s.stride[0]), as_int(s.stride[1]),
                                                as_int(s.dilation[0]), as_int(s.dilation[1]),
                                                CUDNN_CROSS_CORRELATION, type),
                "cudnnSetConvolution2dDescriptor");
    check_cudnn(cudnnSetConvolutionGroupCount(p.conv, as_int(s.groups)),
                "cudnnSetConvolutionGroupCount");
    // FMA math: no tensor-core TF32 unless the run asked for it
    check_cudnn(cudnnSetConvolutionMathType(p.conv, precision() == Precision::tf32 ? CUDNN_DEFAULT_MATH
                                                                 : CUDNN_FMA_MATH),
                "cudnnSetConvolutionMathType");

    int count = 0;
    std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y,
                                                       static_cast<int>(fwd.size()), &count,
                                                       fwd.data()),
                "cudnnGetConvolutionForwardAlgorithm_v7");
    const auto& f = pick(fwd, count, "forward");
    p.forward = f.algo;
    p.forward_bytes = f.memory;

    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bwd_data(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x,
                                                            static_cast<int>(bwd_data.size()),
                                                            &count, bwd_data.data()),
                "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    const auto& d = pick(bwd_data, count, "backward-data");
    p.backward_data = d.algo;
    p.data_bytes = d.memory;

    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bwd_filter(
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w,
                                                              static_cast<int>(bwd_filter.size()),
                                                              &count, bwd_filter.data()),
                "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    const auto& w = pick(bwd_filter, count, "backward-filter");
    p.backward_filter = w.algo;
    p.filter_bytes = w.memory;
    return p;
}

using PlanKey = std::tuple<int, int, bool, std::vector<std::int64_t>>;

const ConvPlan& plan_for(int device, DType dtype, const CudnnConvShape& s) {
    static std::mutex mutex;
    static std::map<PlanKey, std::unique_ptr<ConvPlan>> plans;
    const PlanKey key{device, static_cast<int>(dtype), precision() == Precision::tf32,
                      {s.batch, s.in_channels, s.height, s.width, s.out_channels, s.kernel_h,
                       s.kernel_w, s.groups, s.stride[0], s.stride[1], s.padding[0],
                       s.padding[1], s.dilation[0], s.dilation[1]}};
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
    DeviceGuard guard(device);
    auto plan = std::make_unique<ConvPlan>(make_plan(cudnn_handle(device), dtype, s));
    return *plans.emplace(key, std::move(plan)).first->second;
}

// Scratch memory for one call, from the caching allocator (freed when the tensor goes; the
// stream orders its reuse after the call).
Tensor workspace(Device device, std::size_t bytes) {
    return Tensor::empty({static_cast<std::int64_t>((bytes + 3) / 4)}, DType::f32, device);
}

}  // namespace

bool cudnn_built() { return true; }

void cudnn_conv_forward(Device device, DType dtype, const CudnnConvShape& s, const void* x,
                        const void* w, void* y, double beta) {
    DeviceGuard guard(device.index);
    const ConvPlan& p = plan_for(device.index, dtype, s);
    Tensor space = workspace(device, p.forward_bytes);
    const double one = 1;
    const float one_f = 1, beta_f = static_cast<float>(beta);
    const bool f64 = dtype == DType::f64;
    check_cudnn(cudnnConvolutionForward(cudnn_handle(device.index),
                                        f64 ? static_cast<const void*>(&one) : &one_f, p.x, x, p.w,
                                        w, p.conv, p.forward, space.raw_device_data(),
                                        p.forward_bytes,
                                        f64 ? static_cast<const void*>(&beta) : &beta_f, p.y, y),
                "cudnnConvolutionForward");
}

void cudnn_conv_backward_data(Device device, DType dtype, const CudnnConvShape& s, const void* dy,
                              const void* w, void* dx) {
    DeviceGuard guard(device.index);
    const ConvPlan& p = plan_for(device.index, dtype, s);
    Tensor space = workspace(device, p.data_bytes);
    const double one = 1, zero = 0;
    const float one_f = 1, zero_f = 0;
    const bool f64 = dtype == DType::f64;
    check_cudnn(cudnnConvolutionBackwardData(
                    cudnn_handle(device.index), f64 ? static_cast<const void*>(&one) : &one_f, p.w,
                    w, p.y, dy, p.conv, p.backward_data, space.raw_device_data(), p.data_bytes,
                    f64 ? static_cast<const void*>(&zero) : &zero_f, p.x, dx),
                "cudnnConvolutionBackwardData");
}

void cudnn_conv_backward_filter(Device device, DType dtype, const CudnnConvShape& s, const void* x,
                                const void* dy, void* dw) {
    DeviceGuard guard(device.index);
    const ConvPlan& p = plan_for(device.index, dtype, s);
    Tensor space = workspace(device, p.filter_bytes);
    const double one = 1, zero = 0;
    const float one_f = 1, zero_f = 0;
    const bool f64 = dtype == DType::f64;
    check_cudnn(cudnnConvolutionBackwardFilter(
                    cudnn_handle(device.index), f64 ? static_cast<const void*>(&one) : &one_f, p.x,
                    x, p.y, dy, p.conv, p.backward_filter, space.raw_device_data(),
                    p.filter_bytes, f64 ? static_cast<const void*>(&zero) : &zero_f, p.w, dw),
                "cudnnConvolutionBackwardFilter");
}

}  // namespace retort::cuda

#else  // built without cuDNN: conv2d takes engine/kernels/conv.h

namespace retort::cuda {

namespace {
[[noreturn]] void no_cudnn() {
    fail("this build of retort has no cuDNN (it was not found when retort was configured)");
}
}  // namespace

bool cudnn_built() { return false; }
void cudnn_conv_forward(Device, DType, const CudnnConvShape&, const void*, const void*, void*,
                        double) {
    no_cudnn();
}
void cudnn_conv_backward_data(Device, DType, const CudnnConvShape&, const void*, const void*,
                              void*) {
    no_cudnn();
}
void cudnn_conv_backward_filter(Device, DType, const CudnnConvShape&, const void*, const void*,
                                void*) {
    no_cudnn();
}

}  // namespace retort::cuda

#endif
