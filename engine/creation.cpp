// engine/creation.cpp: tensors made from nothing: zeros, ones, full, arange, and *_like.
#include <cmath>

#include "engine/cuda/launch.h"
#include "engine/kernels/elementwise.h"
#include "engine/parallel.h"
#include "engine/tensor.h"

namespace retort {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
    Tensor t = Tensor::empty(shape, dtype, device);
    visit_dtype(dtype, [&]<class T>(Type<T>) {
        const T v = static_cast<T>(value);
        if (device.is_cuda()) {
            cuda::launch(device, t.numel(), kernels::Fill<T>{t.device_data<T>(), v});
            return;
        }
        T* p = t.data<T>();
        parallel_for(0, t.numel(), 65536, [&](std::int64_t b, std::int64_t e) {
            std::fill(p + b, p + e, v);
        });
    });
    return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor scalar_tensor(double value, DType dtype, Device device) {
    return full({}, value, dtype, device);
}
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) {
    return full(t.shape(), value, t.dtype(), t.device());
}
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

Tensor arange(double start, double end, double step, DType dtype) {
    require(step != 0, "arange: step must be non-zero");
    require(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
            "arange: start, end and step must be finite");
    double count = std::ceil((end - start) / step);
    std::int64_t n = count > 0 ? static_cast<std::int64_t>(count) : 0;
    Tensor t = Tensor::empty({n}, dtype);
    visit_dtype(dtype, [&]<class T>(Type<T>) {
        T* p = t.data<T>();
        for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + step * static_cast<double>(i));
    });
    return t;
}

Tensor arange(std::int64_t end, DType dtype) { return arange(0.0, static_cast<double>(end), 1.0, dtype); }

}  // namespace retort
