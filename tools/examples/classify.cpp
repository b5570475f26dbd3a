// tools/examples/classify.cpp: load a model and PyTorch-saved weights, classify a batch, and read
// a feature tap, through the library alone.
//
//   classify WEIGHTS.safetensors [SPEC]
//
// WEIGHTS is a state dict saved from PyTorch (`safetensors.torch.save_file(model.state_dict(), f)`)
// or by retort; SPEC names the architecture it belongs to (default: RepDistiller's CIFAR resnet8
// with 10 classes). The names and shapes must match exactly: a wrong file is an error, not a
// silently half-loaded model.
#include <cstdio>
#include <string>

#include "distill/checkpoint.h"  // load_model_weights
#include "engine/engine.h"       // tensors, ops, autograd
#include "models/registry.h"     // create_model

int main(int argc, char** argv) {
    using namespace retort;
    if (argc < 2) {
        std::fprintf(stderr, "usage: classify WEIGHTS.safetensors [SPEC]\n");
        return 2;
    }
    try {
        const std::string spec = argc > 2 ? argv[2] : "resnet8:num_classes=10";

        // 1. The architecture from its spec, then the weights (strict: every name and shape).
        std::shared_ptr<Model> model = create_model(spec);
        model->load_state_dict(load_model_weights(argv[1]));
        model->eval();  // BatchNorm uses its running statistics, dropout is off

        // 2. A batch of 4 images (B, C, H, W); random here, a real program reads them from data/.
        manual_seed(0);
        const ModelInfo& info = model->info();
        const Tensor images = randn({4, info.in_chans, info.img_size, info.img_size});

        // 3. Forward without recording a graph, asking for one intermediate tensor by name.
        Taps taps({"layer3"});
        Tensor logits;
        {
            NoGradGuard no_grad;
            logits = model->forward(images, &taps);
        }
        const Tensor probabilities = softmax(logits, 1);
        const std::vector<std::int64_t> classes = argmax(probabilities, 1).to_vector<std::int64_t>();
        const std::vector<float> p = probabilities.to_vector<float>();

        std::printf("%s: logits %s\n", spec.c_str(), shape_str(logits.shape()).c_str());
        for (std::size_t i = 0; i < classes.size(); ++i)
            std::printf("image %zu: class %lld (p = %.3f)\n", i, static_cast<long long>(classes[i]),
                        p[i * static_cast<std::size_t>(info.num_classes) + static_cast<std::size_t>(classes[i])]);
        std::printf("tap layer3: %s\n", shape_str(taps.at("layer3").shape()).c_str());
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "classify: %s\n", e.what());
        return 1;
    }
}
