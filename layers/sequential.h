// layers/sequential.h: a chain of one-input modules, named "0", "1", ... as torch.nn.Sequential
// (so state-dict keys such as "features.3.conv.0.weight" line up with PyTorch's).
#pragma once

#include <memory>
#include <vector>

#include "layers/module.h"

namespace retort {

class Sequential : public UnaryModule {
public:
    Sequential() : UnaryModule("Sequential") {}
    // Appends a module under the next index and returns it.
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        register_module(std::to_string(layers_.size()), m);
        layers_.push_back(m);
        return m;
    }
    Tensor forward(const Tensor& x) override;
    std::size_t size() const { return layers_.size(); }
    const std::shared_ptr<UnaryModule>& operator[](std::size_t i) const { return layers_.at(i); }

private:
    std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace retort
