// engine/autograd.h: reverse-mode automatic differentiation, define-by-run.
//
// Every differentiable op, after computing its output, calls record(). If gradients are enabled
// and some input requires a gradient, record() attaches a Node to the output:
//
//     out.grad_fn = Node{ name, backward, next = [input0's node, input1's node, ...] }
//
// `backward` is a closure that maps the gradient of the output to one gradient per input. It holds
// only what it needs (the "saved tensors"). `next[i]` is where input i's gradient goes: the node
// that made input i, or, for a leaf that requires grad, the leaf's accumulator node, which adds the
// gradient into leaf.grad. A null entry means input i needs no gradient.
//
// Tensor::backward() walks the graph from the output in reverse topological order (an iterative
// sort, so a 1000-block network cannot overflow the stack), sums the gradients that reach a node
// from several uses, and frees each node's saved tensors after it has run.
//
// Rule for op writers: a closure must not capture the op's own output as is (that would be a
// cycle out -> node -> closure -> out, a leak). Capture `out.detach()`: same data, no graph.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace retort {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
    std::string name;                           // the op's name, for error messages and printing
    BackwardFn backward;                        // empty after the graph was freed
    std::vector<std::shared_ptr<Node>> next;    // one per input; null when no gradient flows there
    std::vector<Shape> input_shapes;            // to check what backward returns
    std::vector<DType> input_dtypes;
    std::weak_ptr<TensorImpl> leaf;             // set on a leaf's accumulator node only
    // Leaf accumulators only: called with the leaf's gradient once backward has added this
    // pass's gradient into it (set_grad_ready_hook).
    std::function<void(const Tensor& grad)> grad_ready;

    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    ~Node();  // releases long chains iteratively (a recursive release could overflow the stack)
};

// Is graph recording on? (It is, unless a NoGradGuard is alive on this thread.)
bool grad_enabled();

// Turns graph recording off for its lifetime: used for the teacher's forward pass in KD, for
// optimizer updates, and inside backward itself.
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// True when an op with these inputs should record a node (lets an op skip saving work).
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `out` if needs_grad(inputs). `backward` returns one tensor per input
// (an undefined Tensor where an input gets no gradient).
void record(Tensor& out, const char* name, std::initializer_list<Tensor> inputs,
            BackwardFn backward);
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward);

// Calls `hook(grad)` each time a backward pass has finished accumulating into the .grad of leaf
// `leaf` (a tensor that requires grad and was made by no op): the gradient is final for that pass
// then, since a leaf's accumulator runs once, after every path to it has delivered. Data-parallel
// training uses it to start reducing gradients while backward is still running. One hook per
// leaf; an empty function removes it. The hook runs on the thread that called backward().
void set_grad_ready_hook(const Tensor& leaf, std::function<void(const Tensor& grad)> hook);

// The leaves that a backward pass from `root` would reach (each once): the parameters that will
// get a gradient from it. Data-parallel training marks the others as done before backward starts.
std::vector<const TensorImpl*> reachable_leaves(const Tensor& root);

// Runs backpropagation from `root` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& upstream, bool retain_graph);

// Reduces a broadcast gradient back to the shape of the input it belongs to: sums over the
// dims that broadcasting added or stretched. Used by every broadcasting op's backward.
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace retort
