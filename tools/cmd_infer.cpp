// tools/cmd_infer.cpp: `retort infer`: runs a model in eval mode on the tensor `input` of a
// safetensors file and writes `logits` and any requested taps to another safetensors file.
//
//   retort infer --model SPEC [--weights W.safetensors] --input X.safetensors
//                --output Y.safetensors [--taps a,b] [--seed S] [--device cpu|cuda|cuda:N]
//
// Everything is checked before the model runs (spec, weights' names and shapes, input dtype,
// rank, channels, batch, tap names); on any error nothing is written. The output appears
// atomically (temporary file, then rename).
#include <cstdio>
#include <sstream>

#include "engine/autograd.h"
#include "distill/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/random.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

namespace {
std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}
}  // namespace

int run_infer(const std::vector<std::string>& args) {
    Options opts("infer", args,
                 {{"model", "", "model spec, e.g. resnet18:num_classes=10,stem=cifar"},
                  {"weights", "", "safetensors file with the model's state dict (PyTorch names)"},
                  {"input", "", "safetensors file holding the tensor 'input' (N, C, H, W) float32"},
                  {"output", "", "safetensors file to write 'logits' and the taps to"},
                  {"taps", "", "comma-separated tap names (see retort models)"},
                  {"seed", "0", "seed of the random initialization when --weights is not given"},
                  {"device", "cpu", "cpu, cuda or cuda:N (the output file holds CPU tensors)"}});
    if (opts.help_requested()) return 0;
    for (const char* required : {"model", "input", "output"})
        require(!opts.get(required).empty(), "infer: --", required, " is required");

    const Device device = parse_device(opts.get("device"));
    require_available(device);
    manual_seed(static_cast<std::uint64_t>(opts.get_int("seed", 0, INT64_MAX)));
    std::shared_ptr<Model> model = create_model(opts.get("model"));
    const std::vector<std::string> tap_names = split_list(opts.get("taps"));
    model->check_taps(tap_names);
    // a weights file (PyTorch state dict, best.safetensors) or a training checkpoint (last.safetensors)
    if (!opts.get("weights").empty()) model->load_state_dict(load_model_weights(opts.get("weights")));

    std::map<std::string, Tensor> inputs = load_safetensors(opts.get("input"));
    require(inputs.count("input"), "infer: ", opts.get("input"), " has no tensor named 'input'");
    Tensor x = inputs.at("input");
    model->check_input(x);

    model->eval();
    model->to(device);
    x = x.to(device);
    NoGradGuard no_grad;
    Taps taps(tap_names);
    std::map<std::string, Tensor> out;
    out["logits"] = model->forward(x, &taps);
    for (const std::string& name : tap_names) out[name] = taps.at(name);
    save_safetensors(opts.get("output"), out, {{"model", opts.get("model")}});
    std::printf("wrote %s: logits %s", opts.get("output").c_str(),
                shape_str(out["logits"].shape()).c_str());
    for (const std::string& name : tap_names)
        std::printf(", %s %s", name.c_str(), shape_str(out[name].shape()).c_str());
    std::printf("\n");
    return 0;
}

}  // namespace retort::cli
