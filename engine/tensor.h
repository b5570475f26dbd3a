// engine/tensor.h: the Tensor, retort's one data type.
//
// A Tensor is a cheap handle (a shared pointer) to a TensorImpl, which holds:
//   storage  the memory, shared with views (reshape shares it, nothing is copied)
//   offset   where this tensor's first element sits in the storage, in elements
//   shape    sizes, outermost first; the layout is ALWAYS contiguous row-major, so there are no
//            strides to track: permute/transpose produce a copy. Every kernel can assume it.
//   dtype    f32, f64, i32, i64
//   autograd state: requires_grad, grad (for leaves), grad_fn (the node that made a non-leaf)
//
// Copying a Tensor copies the handle, not the data: `Tensor b = a;` makes b and a the same tensor.
// clone() copies the data.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace retort {

struct Node;  // engine/autograd.h
class Tensor;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    std::int64_t offset = 0;
    Shape shape;
    DType dtype = DType::f32;

    bool requires_grad = false;
    std::shared_ptr<TensorImpl> grad;          // accumulated gradient of a leaf
    std::shared_ptr<Node> grad_fn;             // the op that produced this tensor (non-leaves)
    std::shared_ptr<Node> grad_accumulator;    // a leaf's sink for gradients (made on demand)
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor: defined() is false
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // A new, uninitialized contiguous tensor.
    static Tensor empty(const Shape& shape, DType dtype = DType::f32,
                        Device device = Device::cpu());
    // A CPU tensor in page-locked memory, which a GPU copies from at full speed (needs a GPU).
    static Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    int dim() const { return static_cast<int>(impl().shape.size()); }
    std::int64_t size(std::int64_t dim) const;  // negative dims count from the end
    std::int64_t numel() const;
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().storage->device(); }
    bool is_floating_point() const { return is_floating(dtype()); }

    // Typed access to the elements on the CPU (checks that T matches the dtype, and that the
    // tensor is on the CPU: every CPU kernel reads its inputs through these, so a GPU tensor
    // reaching one is an Error, never a read of device memory).
    template <class T> T* data();
    template <class T> const T* data() const;
    void* raw_data();
    const void* raw_data() const;
    // The element pointer on whatever device the tensor is: what CUDA kernels take.
    template <class T> T* device_data();
    template <class T> const T* device_data() const;
    void* raw_device_data();
    const void* raw_device_data() const;

    // The single value of a one-element tensor, converted to double / T.
    double item() const;
    template <class T> T item() const { return static_cast<T>(item()); }
    // All elements as a std::vector<T> (converting from the tensor's dtype).
    template <class T> std::vector<T> to_vector() const;

    // ---- autograd ----
    bool requires_grad() const { return impl().requires_grad; }
    // Marks a leaf as a parameter-like tensor whose gradient backward() will fill in.
    Tensor& set_requires_grad(bool on = true);
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    Tensor grad() const { return Tensor(impl().grad); }
    void set_grad(const Tensor& g) { impl().grad = g.impl_; }
    void zero_grad() { impl().grad.reset(); }
    const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
    // Backpropagates from this tensor. A scalar needs no upstream gradient; any other tensor
    // needs one of its shape. The graph is freed afterwards unless retain_graph is true.
    void backward(const Tensor& upstream = Tensor(), bool retain_graph = false) const;
    // The same data, cut off from the graph (shares storage, no grad_fn, no requires_grad).
    Tensor detach() const;

    // ---- shape and copies (the differentiable ones record a graph node) ----
    Tensor reshape(const Shape& shape) const;  // free: shares storage; one size may be -1
    Tensor view(const Shape& shape) const { return reshape(shape); }
    Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
    Tensor unsqueeze(std::int64_t dim) const;
    Tensor squeeze(std::int64_t dim) const;
    Tensor clone() const;              // a fresh copy of the data (differentiable)
    Tensor to(DType dtype) const;      // converts the element type (differentiable between floats)
    // A copy on another device (the tensor itself when it is there already); differentiable: the
    // gradient goes back to this tensor's device. item(), to_vector() and str() copy a GPU
    // tensor to the CPU first.
    Tensor to(Device device) const;
    Tensor contiguous() const { return *this; }  // always true in retort

    // Points this tensor at `source`'s memory (same shape and dtype), keeping its identity:
    // every handle to it sees the new data, on source's device. What Module::to does to each
    // parameter (torch's `param.data = ...`). The gradient is dropped; the graph is not touched.
    void set_data(const Tensor& source);

    // Multi-line printout with shape and dtype, for debugging and teaching.
    std::string str() const;

    // An Error unless the tensor is on the CPU (what data() checks; inline, as kernels call data()
    // in their loops' set-up).
    void require_on_cpu() const {
        if (!impl().storage->device().is_cpu()) not_on_cpu();
    }
    [[noreturn]] void not_on_cpu() const;

    TensorImpl& impl() const {
        internal_check(impl_ != nullptr, "use of an undefined tensor");
        return *impl_;
    }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool same(const Tensor& other) const { return impl_ == other.impl_; }

private:
    std::shared_ptr<TensorImpl> impl_;
};

// ---- creation (engine/creation.cpp) ----
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
            Device device = Device::cpu());
Tensor scalar_tensor(double value, DType dtype = DType::f32,
                     Device device = Device::cpu());  // shape ()
// The *_like functions make a tensor of t's shape, dtype and device.
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor empty_like(const Tensor& t);
// [start, end) in steps of step, as torch.arange.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::i64);
Tensor arange(std::int64_t end, DType dtype = DType::i64);
// A tensor holding a copy of the values, with the given shape (the sizes must multiply out).
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);
template <class T> Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, Shape{static_cast<std::int64_t>(values.size())});
}

// ---- template definitions ----
template <class T>
T* Tensor::device_data() {
    require(dtype() == dtype_of<T>(), "tensor data<", dtype_name(dtype_of<T>()),
            ">() called on a ", dtype_name(dtype()), " tensor");
    return static_cast<T*>(impl().storage->data()) + impl().offset;
}
template <class T>
const T* Tensor::device_data() const {
    return const_cast<Tensor*>(this)->device_data<T>();
}
template <class T>
T* Tensor::data() {
    require_on_cpu();
    return device_data<T>();
}
template <class T>
const T* Tensor::data() const {
    return const_cast<Tensor*>(this)->data<T>();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
    if (!device().is_cpu()) return to(Device::cpu()).to_vector<T>();
    std::vector<T> out(static_cast<std::size_t>(numel()));
    visit_dtype(dtype(), [&]<class S>(Type<S>) {
        const S* src = data<S>();
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(src[i]);
    });
    return out;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    require(shape_numel(shape) == static_cast<std::int64_t>(values.size()), "from_vector: ",
            values.size(), " values do not fill shape ", shape_str(shape));
    Tensor t = Tensor::empty(shape, dtype_of<T>());
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
}

}  // namespace retort
