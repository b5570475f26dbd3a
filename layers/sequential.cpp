// layers/sequential.cpp: Sequential's forward pass.
#include "layers/sequential.h"

namespace retort {

Tensor Sequential::forward(const Tensor& x) {
    Tensor h = x;
    for (auto& layer : layers_) h = layer->forward(h);
    return h;
}

}  // namespace retort
