// models/registry.h: models by name, built from a spec string "name:key=value,key=value".
//
// Each model family (one file each) lists its models with the keys they take, their defaults and
// a factory. create_model() parses the spec, rejects unknown names and keys (listing the valid
// ones), duplicate keys, keys without a value and out-of-range values, then calls the factory.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace retort {

// The parsed key=value pairs of a spec, with typed, range-checked access.
class ModelConfig {
public:
    ModelConfig(std::string model, std::map<std::string, std::string> values)
        : model_(std::move(model)), values_(std::move(values)) {}
    std::int64_t get_int(const std::string& key, std::int64_t min, std::int64_t max) const;
    double get_double(const std::string& key, double min, double max) const;
    // One of the allowed words.
    std::string get_choice(const std::string& key, const std::vector<std::string>& allowed) const;
    const std::string& model() const { return model_; }

private:
    const std::string& raw(const std::string& key) const;
    std::string model_;
    std::map<std::string, std::string> values_;  // every declared key, defaults filled in
};

struct ModelKey {
    std::string name, default_value, help;
};

struct ModelEntry {
    std::string name, summary;
    std::vector<ModelKey> keys;
    std::function<std::shared_ptr<Model>(const ModelConfig&)> make;
};

// "resnet18:num_classes=10,stem=cifar" -> ("resnet18", {num_classes: 10, stem: cifar}).
struct ModelSpec {
    std::string name;
    std::vector<std::pair<std::string, std::string>> values;  // in the order given
};
ModelSpec parse_model_spec(const std::string& spec);

// Every registered model, in a stable order.
const std::vector<ModelEntry>& model_registry();
const ModelEntry& find_model(const std::string& name);  // an Error listing the names if unknown
std::shared_ptr<Model> create_model(const std::string& spec);

// What create_model checks before it builds anything: the spec's syntax, the model name and the
// key names. The entry's factory then reads and range-checks the values from `config`.
struct ResolvedModelSpec {
    const ModelEntry& entry;
    ModelConfig config;  // every key of the entry, the given values over the defaults
};
ResolvedModelSpec resolve_model_spec(const std::string& spec);

// The families (one file each under models/).
std::vector<ModelEntry> resnet_family();        // torchvision ResNets
std::vector<ModelEntry> cifar_resnet_family();  // RepDistiller's CIFAR ResNets and WRNs
std::vector<ModelEntry> mobilenet_family();     // MobileNetV2, V3 small and large
std::vector<ModelEntry> vit_family();           // ViT and DeiT (distilled)

}  // namespace retort
