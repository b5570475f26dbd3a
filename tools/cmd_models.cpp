// tools/cmd_models.cpp: `retort models`: every registered model with its keys (and defaults),
// its parameter count with the default keys, and its taps.
#include <cstdio>

#include "layers/init.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

int run_models(const std::vector<std::string>& args) {
    Options opts("models", args, {});
    if (opts.help_requested()) return 0;
    for (const ModelEntry& entry : model_registry()) {
        std::shared_ptr<Model> model;
        {
            init::SkipInitGuard structure_only;  // counting needs shapes, not random values
            model = create_model(entry.name);
        }
        std::printf("%s  (%lld parameters)\n  %s\n  keys:", entry.name.c_str(),
                    static_cast<long long>(model->num_parameters()), entry.summary.c_str());
        for (const ModelKey& k : entry.keys) std::printf(" %s=%s", k.name.c_str(), k.default_value.c_str());
        std::printf("\n  taps:");
        for (const std::string& t : model->tap_names()) std::printf(" %s", t.c_str());
        std::printf("\n\n");
    }
    return 0;
}

}  // namespace retort::cli
