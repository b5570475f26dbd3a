// tests/tiny_run.h: a tiny training run that several tests share: resnet8 on 12x12 one-channel
// generated images of 4 classes (80 training samples in 5 batches of 16, 16 validation, 32 test),
// 2 epochs, batches built on the caller's thread, one kernel thread.
#pragma once

#include <string>
#include <vector>

#include "distill/train_config.h"
#include "engine/io/config.h"

namespace retort::testing {

inline constexpr const char* kTinyRun = R"([model]
spec = resnet8:in_chans=1,num_classes=4
[data]
path = synthetic:num_classes=4,size=96,test_size=32,channels=1,height=12,width=12
val_size = 16
batch_size = 16
workers = 0
[optim]
lr = 0.05
[run]
epochs = 2
threads = 1
)";

// The tiny run's config with `overrides` ("section.key=value") applied.
inline Config tiny_run_config(const std::vector<std::string>& overrides = {}) {
    Config config = train_config_schema();
    config.parse(kTinyRun, "tiny.cfg");
    for (const std::string& o : overrides) config.apply_override(o);
    return config;
}

}  // namespace retort::testing
