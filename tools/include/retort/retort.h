// <retort/retort.h>: all of retort's library in one include.
//
// Each area also has its own header, for a program that needs only part of it:
//   "engine/engine.h"     tensors, autograd, ops, optimizers, safetensors and config files
//   "layers/layers.h"     Module and the layers
//   "models/models.h"     Model and the registry of ResNets, MobileNets, ViTs and DeiTs
//   "data/data.h"         datasets (IDX, CIFAR, image folders, synthetic), transforms, loader
//   "distill/distill.h"   objectives, the distiller, the training loop, checkpoints, strategies
// Everything is in namespace retort. Errors are thrown as retort::Error (engine/error.h), whose
// message says what was wrong and with which value; each header documents its functions' shapes
// and ownership.
//
// Link with the CMake target retort::retort (find_package(retort) or add_subdirectory), or with
// pkg-config's `retort`; either sets the include paths, C++20 and the libraries retort was built
// with.
#pragma once

#include "data/data.h"
#include "distill/distill.h"
#include "engine/engine.h"
#include "layers/layers.h"
#include "models/models.h"
