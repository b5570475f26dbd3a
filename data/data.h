// data/data.h: datasets, transforms and the loader in one include.
//
// Not included: the helpers the readers share (file_bytes.h, jpeg_check.h, sample_rng.h) and the
// loader benchmark (loader_bench.h).
#pragma once

#include "data/batch_transforms.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "data/transform_spec.h"
#include "data/transforms.h"
