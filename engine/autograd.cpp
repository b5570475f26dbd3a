// engine/autograd.cpp: graph recording and the backward pass.
#include "engine/autograd.h"

#include <unordered_map>

#include "engine/ops.h"

namespace retort {

namespace {
thread_local bool g_grad_enabled = true;

// The node that receives gradients meant for tensor t: its grad_fn, or a leaf's accumulator.
std::shared_ptr<Node> gradient_edge(const Tensor& t) {
    if (!t.defined() || !t.requires_grad()) return nullptr;
    TensorImpl& impl = t.impl();
    if (impl.grad_fn) return impl.grad_fn;
    if (!impl.grad_accumulator) {
        auto node = std::make_shared<Node>();
        node->name = "accumulate_grad";
        node->leaf = t.impl_ptr();
        impl.grad_accumulator = node;
    }
    return impl.grad_accumulator;
}

void accumulate_into_leaf(Node& node, const Tensor& grad) {
    std::shared_ptr<TensorImpl> leaf = node.leaf.lock();
    if (!leaf) return;  // the leaf is gone; nobody can read its gradient
    Tensor g = grad;
    // The gradient may be shared: add() passes one gradient tensor to both of its inputs, and the
    // seed of backward() is the caller's own tensor. A leaf's .grad is later scaled in place
    // (gradient clipping), so it must own its data: copy unless `grad` and `g` are the only
    // handles and nothing else looks into the storage.
    if (g.impl_ptr().use_count() > 2 || g.impl().storage.use_count() > 1) g = g.clone();
    if (leaf->grad) g = add(Tensor(leaf->grad), g);
    leaf->grad = g.impl_ptr();
    if (node.grad_ready) node.grad_ready(g);
}
}  // namespace

Node::~Node() {
    std::vector<std::shared_ptr<Node>> pending = std::move(next);
    while (!pending.empty()) {
        std::shared_ptr<Node> node = std::move(pending.back());
        pending.pop_back();
        if (node && node.use_count() == 1) {  // we hold the last reference: unhook its children
            for (auto& child : node->next) pending.push_back(std::move(child));
            node->next.clear();
        }
    }
}

bool grad_enabled() { return g_grad_enabled; }

std::vector<const TensorImpl*> reachable_leaves(const Tensor& root) {
    std::vector<const TensorImpl*> leaves;
    if (!root.defined() || !root.requires_grad()) return leaves;
    std::shared_ptr<Node> start = gradient_edge(root);
    std::unordered_map<const Node*, bool> seen{{start.get(), true}};
    std::vector<const Node*> stack{start.get()};
    while (!stack.empty()) {
        const Node* node = stack.back();
        stack.pop_back();
        if (auto leaf = node->leaf.lock()) leaves.push_back(leaf.get());
        for (const auto& child : node->next)
            if (child && seen.emplace(child.get(), true).second) stack.push_back(child.get());
    }
    return leaves;
}

void set_grad_ready_hook(const Tensor& leaf, std::function<void(const Tensor& grad)> hook) {
    require(leaf.defined() && leaf.requires_grad() && !leaf.impl().grad_fn,
            "set_grad_ready_hook: the tensor must be a leaf that requires grad");
    gradient_edge(leaf)->grad_ready = std::move(hook);
}

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!g_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}
bool needs_grad(std::initializer_list<Tensor> inputs) {
    return needs_grad(std::vector<Tensor>(inputs));
}

void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs,
            BackwardFn backward) {
    if (!needs_grad(inputs)) return;
    auto node = std::make_shared<Node>();
    node->name = name;
    node->backward = std::move(backward);
    for (const Tensor& in : inputs) {
        node->next.push_back(gradient_edge(in));
        node->input_shapes.push_back(in.defined() ? in.shape() : Shape{});
        node->input_dtypes.push_back(in.defined() ? in.dtype() : DType::f32);
    }
    out.impl().grad_fn = std::move(node);
    out.impl().requires_grad = true;
}
void record(Tensor& out, const char* name, std::initializer_list<Tensor> inputs,
            BackwardFn backward) {
    record(out, name, std::vector<Tensor>(inputs), std::move(backward));
}

void run_backward(const Tensor& root, const Tensor& upstream, bool retain_graph) {
    require(root.requires_grad(),
            "backward: the tensor does not require grad (no input of the computation that made "
            "it has requires_grad set)");
    Tensor seed = upstream;
    if (!seed.defined()) {
        require(root.numel() == 1, "backward: an upstream gradient is needed for a non-scalar ",
                "tensor of shape ", shape_str(root.shape()));
        seed = ones_like(root);
    }
    require(seed.dtype() == root.dtype(), "backward: upstream gradient is ",
            dtype_name(seed.dtype()), " but the tensor is ", dtype_name(root.dtype()));
    require(seed.shape() == root.shape(), "backward: upstream gradient of shape ",
            shape_str(seed.shape()), " does not match the tensor's shape ",
            shape_str(root.shape()));
    NoGradGuard no_grad;  // gradients are plain tensors: no graph of the graph
    std::shared_ptr<Node> start = gradient_edge(root);

    // 1. Discover the graph and count, for each node, how many edges point at it. Iterative DFS.
    std::unordered_map<Node*, int> pending;
    std::vector<std::shared_ptr<Node>> alive{start};  // nodes stay valid while edges are cleared
    std::vector<Node*> stack{start.get()};
    pending[start.get()] = 0;
    while (!stack.empty()) {
        Node* node = stack.back();
        stack.pop_back();
        for (const auto& child : node->next) {
            if (!child) continue;
            auto [it, first_visit] = pending.try_emplace(child.get(), 0);
            ++it->second;
            if (first_visit) {
                stack.push_back(child.get());
                alive.push_back(child);
            }
        }
    }

    // 2. Process nodes whose every consumer has already sent its gradient (Kahn's algorithm).
    std::unordered_map<Node*, Tensor> grads;
    grads[start.get()] = seed;
    std::vector<Node*> ready{start.get()};
    while (!ready.empty()) {
        Node* node = ready.back();
        ready.pop_back();
        Tensor grad;
        if (auto it = grads.find(node); it != grads.end()) {
            grad = std::move(it->second);
            grads.erase(it);
        }
        std::vector<Tensor> input_grads(node->next.size());
        if (grad.defined()) {  // undefined: no gradient reached this node, pass nothing on
            if (node->name == "accumulate_grad") {
                accumulate_into_leaf(*node, grad);
                continue;
            }
            require(static_cast<bool>(node->backward), "backward: the graph through '",
                    node->name, "' was already freed by an earlier backward(); pass ",
                    "retain_graph=true to the first call to backpropagate twice");
            input_grads = node->backward(grad);
            internal_check(input_grads.size() == node->next.size(),
                           "a backward function returned the wrong number of gradients");
        }
        for (std::size_t i = 0; i < node->next.size(); ++i) {
            Node* child = node->next[i].get();
            if (!child) continue;
            Tensor& g = input_grads[i];
            if (g.defined()) {
                if (g.shape() != node->input_shapes[i] || g.dtype() != node->input_dtypes[i])
                    fail("internal error: backward of '", node->name, "' gave a gradient of shape ",
                         shape_str(g.shape()), " ", dtype_name(g.dtype()), " for input ", i,
                         " of shape ", shape_str(node->input_shapes[i]), " ",
                         dtype_name(node->input_dtypes[i]), " (this is a bug in retort)");
                auto [it, first] = grads.try_emplace(child, g);
                if (!first) it->second = add(it->second, g);
            }
            // The child runs once every node that feeds it has run, with or without a gradient.
            if (--pending[child] == 0) ready.push_back(child);
        }
        if (!retain_graph) {
            node->backward = nullptr;  // frees the saved tensors
            node->next.clear();        // and lets the consumed part of the graph go
        }
    }
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
    if (grad.shape() == shape) return grad;
    const Shape& gs = grad.shape();
    internal_check(gs.size() >= shape.size(), "sum_to: target has more dims than the gradient");
    std::size_t lead = gs.size() - shape.size();
    std::vector<std::int64_t> dims;
    for (std::size_t i = 0; i < gs.size(); ++i) {
        bool added = i < lead;
        bool stretched = !added && shape[i - lead] == 1 && gs[i] != 1;
        if (added || stretched) dims.push_back(static_cast<std::int64_t>(i));
    }
    Tensor s = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
    return s.reshape(shape);
}

}  // namespace retort
