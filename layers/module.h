// layers/module.h: Module, the base class of every layer and model.
//
// A Module owns named parameters (trainable tensors), named buffers (state that is saved but not
// trained, such as BatchNorm's running statistics) and named child modules. Names join with dots
// along the tree, exactly as PyTorch's state_dict keys do: "layer1.0.conv1.weight". That is what
// lets a .safetensors file saved from PyTorch load into a retort model unchanged.
//
// Modules are plain run-time objects (as libtorch's nn modules): a network is built by
// constructing children in a constructor and registering them, never by template metaprogramming.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace retort {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
public:
    explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    const std::string& type_name() const { return type_name_; }

    // Parameters, buffers and children of this module and, recursively, of its children, in
    // registration order (PyTorch's order), with dotted names.
    NamedTensors named_parameters() const;
    NamedTensors named_buffers() const;
    std::vector<Tensor> parameters() const;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
        return children_;
    }
    std::int64_t num_parameters() const;

    // Train / eval mode, applied to the whole tree (BatchNorm, Dropout and DropPath care).
    // Moves every parameter and buffer to `device` in place, as torch's module.to(device): the
    // tensors keep their identity (an optimizer made before still holds them) and lose their
    // gradients. Train and infer on the device by giving the model inputs that live there.
    void to(Device device);

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // Parameters then buffers, by dotted name (as torch's state_dict(), same names).
    NamedTensors state_dict() const;
    // Copies values into the existing tensors (parameters keep their identity, so an optimizer
    // that holds them keeps working). strict: every name must be present and nothing extra.
    // A missing, unexpected or mis-shaped tensor is an Error that names it. PyTorch's
    // "num_batches_tracked" buffers are accepted and ignored. Values are converted to each
    // tensor's dtype. Nothing is modified unless every check passes.
    void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

protected:
    // Registration returns the stored handle so a constructor can write:
    //   weight_ = register_parameter("weight", empty(...));
    Tensor register_parameter(const std::string& name, Tensor value);
    Tensor register_buffer(const std::string& name, Tensor value);
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
        add_child(name, child);
        return child;
    }

private:
    void add_child(const std::string& name, std::shared_ptr<Module> child);
    void check_new_name(const std::string& name) const;
    void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

    std::string type_name_;
    bool training_ = true;
    NamedTensors params_, buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// A module with one input and one output: most layers. Sequential chains these.
class UnaryModule : public Module {
public:
    using Module::Module;
    virtual Tensor forward(const Tensor& x) = 0;
    Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace retort
