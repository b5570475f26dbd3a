// layers/layers.h: every building block of a network in one include: Module (the base class,
// with PyTorch's parameter names), the layers and the blocks the models are made of.
#pragma once

#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/fold.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/mobile_blocks.h"
#include "layers/module.h"
#include "layers/norm.h"
#include "layers/resnet_blocks.h"
#include "layers/sequential.h"
#include "layers/vit_blocks.h"
