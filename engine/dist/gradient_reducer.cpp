// engine/dist/gradient_reducer.cpp: bucketed, overlapped gradient all-reduce (see the header).
#include "engine/dist/gradient_reducer.h"

#include <chrono>
#include <cstring>
#include <unordered_set>

#include "engine/autograd.h"
#include "engine/cuda/launch.h"
#include "engine/cuda/runtime.h"
#include "engine/kernels/elementwise.h"
#include "engine/error.h"

namespace retort::dist {

namespace {


char* byte_pointer(Tensor& t, std::int64_t element) {
    return static_cast<char*>(t.raw_device_data()) + element * static_cast<std::int64_t>(dtype_size(t.dtype()));
}

// Copies n values of a float tensor's dtype between two places on `device`, as a kernel on the
// device's compute stream: inside backward on a GPU a synchronous cudaMemcpy would stall the
// queue once per parameter.
void copy_values(Device device, DType dtype, void* dst, const void* src, std::int64_t n) {
    visit_floating(dtype, "gradient bucket copy", [&]<class T>(Type<T>) {
        run(device, n, kernels::Cast<T, T>{static_cast<const T*>(src), static_cast<T*>(dst)});
    });
}

// Sets one number of the buffer (a used flag) to 1, wherever the buffer lives, on its stream.
void set_flag(Tensor& buffer, std::int64_t element) {
    visit_floating(buffer.dtype(), "gradient bucket flag", [&]<class T>(Type<T>) {
        run(buffer.device(), 1, kernels::Fill<T>{reinterpret_cast<T*>(byte_pointer(buffer, element)), T(1)});
    });
}

}  // namespace

GradientReducer::GradientReducer(std::shared_ptr<Communicator> communicator, std::vector<Tensor> params,
                                 std::int64_t bucket_bytes)
    : comm_(std::move(communicator)) {
    require(comm_ != nullptr, "GradientReducer: no communicator");
    require(bucket_bytes > 0, "GradientReducer: the bucket size must be positive");
    // Reverse order: the last parameters' gradients are the first that backward finishes.
    for (auto it = params.rbegin(); it != params.rend(); ++it) {
        const Tensor& p = *it;
        require(p.requires_grad() && (p.dtype() == DType::f32 || p.dtype() == DType::f64),
                "GradientReducer: parameters must be float32 or float64 leaves that require grad");
        const bool fits = !buckets_.empty() && !buckets_.back().slots.empty() &&
                          buckets_.back().slots[0].param.dtype() == p.dtype() &&
                          buckets_.back().slots[0].param.device() == p.device() &&
                          static_cast<std::int64_t>((buckets_.back().values + p.numel()) * dtype_size(p.dtype())) <= bucket_bytes;
        if (!fits) buckets_.emplace_back();
        Bucket& b = buckets_.back();
        b.slots.push_back(Slot{p, b.values, false});
        b.values += p.numel();
    }
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi)
        for (std::size_t si = 0; si < buckets_[bi].slots.size(); ++si)
            set_grad_ready_hook(buckets_[bi].slots[si].param,
                                [this, bi, si](const Tensor& grad) { on_grad_ready(bi, si, grad); });
}

GradientReducer::~GradientReducer() {
    for (Bucket& b : buckets_)
        for (Slot& s : b.slots) set_grad_ready_hook(s.param, {});
}

void GradientReducer::begin(const Tensor& loss) {
    require(!armed_, "GradientReducer: begin() twice without finish()");
    const std::vector<const TensorImpl*> reached = reachable_leaves(loss);
    const std::unordered_set<const TensorImpl*> reachable(reached.begin(), reached.end());
    for (Bucket& b : buckets_) {
        const Tensor& first = b.slots[0].param;
        const std::int64_t flags = static_cast<std::int64_t>(b.slots.size());
        if (!b.buffer.defined()) {  // made once; zeroed in place at every step after
            b.buffer = zeros({b.values + flags}, first.dtype(), first.device());
        } else {
            visit_floating(b.buffer.dtype(), "gradient bucket", [&]<class T>(Type<T>) {
                run(b.buffer.device(), b.buffer.numel(), kernels::Fill<T>{b.buffer.device_data<T>(), T(0)});
            });
        }
        b.filled = 0;
        b.pending.reset();
        for (Slot& s : b.slots) {
            require(!s.param.grad().defined(), "GradientReducer: a parameter already has a gradient "
                    "before backward (zero the gradients first)");
            // unreachable: its zeros and unused flag are final already
            s.filled = reachable.count(&s.param.impl()) == 0;
            b.filled += s.filled ? 1 : 0;
        }
    }
    next_to_start_ = 0;
    started_early_ = 0;
    armed_ = true;
    start_ready_buckets(false);  // buckets of unreachable parameters only
}

void GradientReducer::on_grad_ready(std::size_t bi, std::size_t si, const Tensor& grad) {
    if (!armed_) return;  // a backward pass outside a data-parallel step (a check, a probe)
    Bucket& b = buckets_[bi];
    Slot& s = b.slots[si];
    require(!b.pending, "data parallel: a parameter's gradient changed after its bucket started "
            "reducing (more than one backward pass in a step is not supported with several ranks)");
    require(grad.dtype() == s.param.dtype() && grad.device() == s.param.device() &&
                grad.numel() == s.param.numel(),
            "data parallel: a gradient does not match its parameter's dtype, device or size");
    copy_values(grad.device(), grad.dtype(), byte_pointer(b.buffer, s.offset), grad.raw_device_data(),
                grad.numel());
    if (!s.filled) {
        set_flag(b.buffer, b.values + static_cast<std::int64_t>(si));
        s.filled = true;
        ++b.filled;
    }
    start_ready_buckets(false);
}

void GradientReducer::start(Bucket& b) { b.pending = comm_->start_all_reduce(b.buffer); }

void GradientReducer::start_ready_buckets(bool force) {
    while (next_to_start_ < buckets_.size()) {
        Bucket& b = buckets_[next_to_start_];
        if (!force && b.filled < static_cast<std::int64_t>(b.slots.size())) return;
        start(b);
        if (!force) ++started_early_;
        ++next_to_start_;
    }
}

std::int64_t GradientReducer::bytes_per_step() const {
    std::int64_t bytes = 0;
    for (const Bucket& b : buckets_)
        bytes += (b.values + static_cast<std::int64_t>(b.slots.size())) *
                 static_cast<std::int64_t>(dtype_size(b.slots[0].param.dtype()));
    return bytes;
}

void GradientReducer::finish() {
    require(armed_, "GradientReducer: finish() without begin()");
    armed_ = false;
    start_ready_buckets(true);  // the rest, with zeros where a parameter got no gradient
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi) {
        Bucket& b = buckets_[bi];
        const auto waiting = std::chrono::steady_clock::now();
        comm_->wait(*b.pending, cat("the gradient all-reduce (bucket ", bi + 1, " of ", buckets_.size(), ")"));
        wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - waiting).count();
        b.pending.reset();
        // The used flags, on the host (a few numbers per bucket).
        const std::int64_t n = static_cast<std::int64_t>(b.slots.size());
        std::vector<double> used(static_cast<std::size_t>(n));
        if (b.buffer.dtype() == DType::f64) {
            cuda::copy_bytes(used.data(), Device::cpu(), byte_pointer(b.buffer, b.values), b.buffer.device(),
                             n * sizeof(double));
        } else {
            std::vector<float> flags(static_cast<std::size_t>(n));
            cuda::copy_bytes(flags.data(), Device::cpu(), byte_pointer(b.buffer, b.values), b.buffer.device(),
                             n * sizeof(float));
            for (std::int64_t i = 0; i < n; ++i) used[i] = flags[i];
        }
        for (std::int64_t i = 0; i < n; ++i) {
            Slot& s = b.slots[i];
            if (used[i] == 0) continue;  // no rank computed it: no gradient, as in one process
            Tensor grad = Tensor::empty(s.param.shape(), s.param.dtype(), s.param.device());
            copy_values(grad.device(), grad.dtype(), grad.raw_device_data(), byte_pointer(b.buffer, s.offset),
                        grad.numel());
            s.param.set_grad(grad);
        }
    }
}

void GradientReducer::broadcast_from(int root, const std::vector<Tensor>& tensors) {
    // One at a time: weights are broadcast once per run, so simplicity wins over packing.
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        Tensor t = tensors[i];
        comm_->broadcast(t, root, cat("the broadcast of rank ", root, "'s weights (tensor ", i + 1, " of ",
                                      tensors.size(), ")"));
    }
}

}  // namespace retort::dist
