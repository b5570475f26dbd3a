// tools/cmd_summary.cpp: `retort summary MODEL_SPEC`: the module tree with parameter counts, the
// shape of every tap for one image of the model's size, and the forward FLOPs.
#include <cstdio>
#include <cstring>
#include <functional>

#include "engine/autograd.h"
#include "engine/flops.h"
#include "engine/ops.h"
#include "layers/init.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {


int run_summary(const std::vector<std::string>& args) {
    if (args.empty() || args[0].rfind("--", 0) == 0) {
        Options opts("summary", args, {{"depth", "3", "levels of the module tree to print"}});
        if (opts.help_requested()) {
            std::printf("\nusage: retort summary MODEL_SPEC [--depth N]\n");
            return 0;
        }
        fail("summary: give a model spec, e.g. retort summary resnet18:num_classes=10");
    }
    const std::string spec = args[0];
    Options opts("summary", std::vector<std::string>(args.begin() + 1, args.end()),
                 {{"depth", "3", "levels of the module tree to print"}});
    if (opts.help_requested()) return 0;
    const int max_depth = static_cast<int>(opts.get_int("depth", 0, 100));

    std::shared_ptr<Model> model;
    {
        init::SkipInitGuard structure_only;  // shapes and counts do not need random weights
        model = create_model(spec);
    }
    for (auto& [_, t] : model->state_dict()) std::memset(t.raw_data(), 0, t.numel() * dtype_size(t.dtype()));
    model->eval();

    std::printf("%s\n\n%-40s %-22s %12s\n", spec.c_str(), "module", "type", "parameters");
    std::function<void(const Module&, const std::string&, int)> walk =
        [&](const Module& m, const std::string& name, int depth) {
            std::printf("%*s%-*s %-22s %12lld\n", 2 * depth, "", 40 - 2 * depth, name.c_str(),
                        m.type_name().c_str(), static_cast<long long>(m.num_parameters()));
            if (depth < max_depth)
                for (auto& [child_name, child] : m.named_children()) walk(*child, child_name, depth + 1);
        };
    walk(*model, model->info().name, 0);

    const ModelInfo& info = model->info();
    Tensor x = zeros({1, info.in_chans, info.img_size, info.img_size});
    NoGradGuard no_grad;
    std::int64_t flops = 0;
    {
        FlopCounter counter;  // the plain forward pass, without tap-only heads
        model->forward(x);
        flops = counter.flops();
    }
    Taps taps(model->tap_names());
    Tensor logits = model->forward(x, &taps);
    std::printf("\ninput %s -> logits %s\n\ntaps (one image):\n", shape_str(x.shape()).c_str(),
                shape_str(logits.shape()).c_str());
    for (const std::string& name : model->tap_names())
        if (taps.values().count(name))
            std::printf("  %-22s %s\n", name.c_str(), shape_str(taps.at(name).shape()).c_str());
    std::printf("\nparameters: %lld\nforward: %.3f GFLOPs per image (matmul and convolution; "
                "1 multiply-add = 2 FLOPs)\n",
                static_cast<long long>(model->num_parameters()), flops / 1e9);
    return 0;
}

}  // namespace retort::cli
