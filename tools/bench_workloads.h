// tools/bench_workloads.h: the model and distillation workloads of `retort bench`.
//
// Each runs 3 warm-up steps (the first allocates the buffers and fills the caches), then times
// `steps` steps on one fixed random batch, so the data loader plays no part. Memory is the peak
// resident size during the workload above the process's resident size just before the model
// was built (its idle baseline): one workload per process, as the PyTorch script measures its own.
#pragma once

#include <cstdint>
#include <string>

#include "engine/device.h"
#include "tools/bench_report.h"

namespace retort::cli {

struct ModelBenchOptions {
    std::string spec;
    std::int64_t batch = 64;
    std::int64_t steps = 10;
    std::string input;  // "CxHxW"; empty: the model's in_chans x img_size x img_size
    bool train = false;  // forward + cross-entropy + backward + SGD, else a no-graph forward
    Device device = Device::cpu();
};
BenchRecord run_model_bench(const ModelBenchOptions& options);

// One KD step: the teacher (eval mode, BatchNorms folded, no graph) and the student forward on
// the same batch, loss = cross_entropy + T^2 * KL(teacher || student at temperature T),
// backward, SGD.
struct KdBenchOptions {
    std::string teacher, student;
    std::int64_t batch = 64;
    std::int64_t steps = 10;
    std::string input;
    double temperature = 4;
    Device device = Device::cpu();  // teacher, student and batch; run.precision applies to both
};
BenchRecord run_kd_bench(const KdBenchOptions& options);

}  // namespace retort::cli
