// engine/tensor.cpp: the Tensor handle: accessors, views, copies, dtype conversion, printing.
#include "engine/tensor.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/cuda/runtime.h"
#include "engine/kernels/elementwise.h"
#include "engine/parallel.h"

namespace retort {

namespace {
// The machine's physical memory (at most 1 TiB): no single tensor may be larger.
std::int64_t allocation_limit_bytes() {
    constexpr std::int64_t kCap = std::int64_t(1) << 40;
    const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page_size <= 0) return kCap;
    return std::min<std::int64_t>(kCap, static_cast<std::int64_t>(pages) * page_size);
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
    auto impl = std::make_shared<TensorImpl>();
    const std::int64_t n = shape_numel(shape);
    // Refuse absurd sizes with a message, not with a failed allocation or, since Linux overcommits
    // memory, with the process killed later when the pages are touched.
    // (GPU memory is the device allocator's to refuse, with its own message.)
    static const std::int64_t max_bytes = allocation_limit_bytes();
    require(device.is_cuda() || n <= max_bytes / static_cast<std::int64_t>(dtype_size(dtype)), "tensor of shape ",
            shape_str(shape), " (", dtype_name(dtype), ") needs ",
            static_cast<double>(n) * dtype_size(dtype) / (1 << 30), " GiB, more than this machine's ",
            static_cast<double>(max_bytes) / (1 << 30), " GiB of memory");
    impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(n) * dtype_size(dtype), device);
    impl->shape = shape;
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(
        static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype), Device::cpu(),
        /*pinned=*/true);
    impl->shape = shape;
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

std::int64_t Tensor::size(std::int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }

std::int64_t Tensor::numel() const {
    std::int64_t n = 1;
    for (std::int64_t s : shape()) n *= s;
    return n;
}

void* Tensor::raw_device_data() {
    return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}
const void* Tensor::raw_device_data() const { return const_cast<Tensor*>(this)->raw_device_data(); }

void* Tensor::raw_data() {
    require_on_cpu();
    return raw_device_data();
}

void Tensor::not_on_cpu() const {
    fail("a ", shape_str(shape()), " tensor on ", device().str(),
         " reached code that reads it on the CPU: this operation has no CUDA kernel yet; move the "
         "tensor with .to(Device::cpu()) first");
}

Tensor Tensor::to(Device target) const {
    if (target == device()) return *this;
    Tensor out = Tensor::empty(shape(), dtype(), target);
    const std::size_t bytes = static_cast<std::size_t>(numel()) * dtype_size(dtype());
    cuda::copy_bytes(out.raw_device_data(), target, raw_device_data(), device(), bytes);
    if (is_floating(dtype()))
        record(out, "to_device", {*this}, [from = device()](const Tensor& g) {
            return std::vector<Tensor>{g.to(from)};
        });
    return out;
}
const void* Tensor::raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }

double Tensor::item() const {
    require(numel() == 1, "item(): the tensor has ", numel(), " elements, shape ",
            shape_str(shape()), "; item() needs exactly one");
    if (!device().is_cpu()) return to(Device::cpu()).item();
    return visit_dtype(dtype(), [&]<class T>(Type<T>) { return static_cast<double>(*data<T>()); });
}

Tensor& Tensor::set_requires_grad(bool on) {
    require(!on || is_floating_point(), "set_requires_grad: only floating-point tensors can ",
            "require gradients, this one is ", dtype_name(dtype()));
    require(is_leaf(), "set_requires_grad: only leaf tensors can be changed; use detach() for a "
                       "non-leaf");
    impl().requires_grad = on;
    return *this;
}

void Tensor::backward(const Tensor& upstream, bool retain_graph) const {
    run_backward(*this, upstream, retain_graph);
}

Tensor Tensor::detach() const {
    auto d = std::make_shared<TensorImpl>();
    d->storage = impl().storage;
    d->offset = impl().offset;
    d->shape = impl().shape;
    d->dtype = impl().dtype;
    return Tensor(std::move(d));
}

Tensor Tensor::reshape(const Shape& new_shape) const {
    // resolve a single -1 from the element count
    Shape s = new_shape;
    std::int64_t known = 1;
    int infer = -1;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            require(infer < 0, "reshape: only one size may be -1, got ", shape_str(new_shape));
            infer = static_cast<int>(i);
        } else {
            require(s[i] >= 0, "reshape: invalid size in ", shape_str(new_shape));
            known *= s[i];
        }
    }
    if (infer >= 0) {
        require(known != 0 && numel() % known == 0, "reshape: cannot reshape ", shape_str(shape()),
                " into ", shape_str(new_shape));
        s[infer] = numel() / known;
    }
    require(shape_numel(s) == numel(), "reshape: cannot reshape ", shape_str(shape()), " (",
            numel(), " elements) into ", shape_str(new_shape));
    Tensor out = detach();  // same storage: a reshape of a contiguous tensor moves no data
    out.impl().shape = s;
    record(out, "reshape", {*this}, [old = shape()](const Tensor& g) {
        return std::vector<Tensor>{g.reshape(old)};
    });
    return out;
}

Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
    if (dim() == 0) return reshape({1});
    int a = normalize_dim(start_dim, dim(), "flatten"), b = normalize_dim(end_dim, dim(), "flatten");
    require(a <= b, "flatten: start_dim must not come after end_dim");
    Shape s(shape().begin(), shape().begin() + a);
    std::int64_t merged = 1;
    for (int i = a; i <= b; ++i) merged *= shape()[i];
    s.push_back(merged);
    s.insert(s.end(), shape().begin() + b + 1, shape().end());
    return reshape(s);
}

Tensor Tensor::unsqueeze(std::int64_t d) const {
    int at = normalize_dim(d, dim() + 1, "unsqueeze");
    Shape s = shape();
    s.insert(s.begin() + at, 1);
    return reshape(s);
}

Tensor Tensor::squeeze(std::int64_t d) const {
    int at = normalize_dim(d, dim(), "squeeze");
    if (shape()[at] != 1) return *this;  // as torch: squeezing a dim that is not 1 is a no-op
    Shape s = shape();
    s.erase(s.begin() + at);
    return reshape(s);
}

void Tensor::set_data(const Tensor& source) {
    require(source.defined(), "set_data: undefined source tensor");
    require(source.shape() == shape() && source.dtype() == dtype(), "set_data: source ",
            shape_str(source.shape()), " ", dtype_name(source.dtype()), " does not match ",
            shape_str(shape()), " ", dtype_name(dtype()));
    impl().storage = source.impl().storage;
    impl().offset = source.impl().offset;
    impl().grad.reset();
}

Tensor Tensor::clone() const {
    Tensor out = Tensor::empty(shape(), dtype(), device());
    cuda::copy_bytes(out.raw_device_data(), device(), raw_device_data(), device(),
                     static_cast<std::size_t>(numel()) * dtype_size(dtype()));
    record(out, "clone", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
    return out;
}

Tensor Tensor::to(DType target) const {
    if (target == dtype()) return *this;
    Tensor out = Tensor::empty(shape(), target, device());
    visit_dtype(dtype(), [&]<class S>(Type<S>) {
        visit_dtype(target, [&]<class T>(Type<T>) {
            run(device(), numel(), kernels::Cast<S, T>{device_data<S>(), out.device_data<T>()});
        });
    });
    if (is_floating(target) && is_floating(dtype())) {
        record(out, "to", {*this}, [from = dtype()](const Tensor& g) {
            return std::vector<Tensor>{g.to(from)};
        });
    }
    return out;
}

std::string Tensor::str() const {
    if (!defined()) return "Tensor(undefined)";
    std::ostringstream s;
    s << "Tensor" << shape_str(shape()) << " " << dtype_name(dtype());
    if (requires_grad()) s << " requires_grad";
    s << "\n";
    const std::int64_t n = numel(), show = std::min<std::int64_t>(n, 64);
    const std::int64_t row = dim() > 0 ? std::max<std::int64_t>(shape().back(), 1) : 1;
    std::vector<double> v = to_vector<double>();
    s << std::setprecision(6);
    for (std::int64_t i = 0; i < show; ++i) {
        s << (i % row == 0 ? "[" : " ") << v[i];
        if (i % row == row - 1 || i == show - 1) s << "]\n";
    }
    if (show < n) s << "... (" << n - show << " more)\n";
    return s.str();
}

}  // namespace retort
