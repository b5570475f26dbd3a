// models/models.h: the models in one include: Model (logits and named feature taps) and the
// registry that builds one from a spec string such as "resnet20:in_chans=1". The families
// themselves (cifar_resnet.cpp, vit.cpp, ...) are reached through the registry only.
#pragma once

#include "models/model.h"
#include "models/registry.h"
