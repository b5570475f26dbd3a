// tests/dist/dist_check.cpp: checks of the data-parallel path that need real ranks, run by the
// suite under mpirun (tests/test_distributed.cpp starts it). One mode per run:
//
//   dist_check grads   every rank takes its piece of one global batch, backward with the
//                      GradientReducer; the summed gradients must equal, to float32 round-off,
//                      those of one process on the whole batch (computed on every rank).
//                      Four cases: a ViT (LayerNorm), resnet8 in eval mode (conv, BatchNorm
//                      affine), a ViT with a head that gets no gradient, and resnet8 training
//                      with SyncBatchNorm (whose running statistics must also match). Small
//                      buckets, so several start while backward runs.
//   dist_check hang    rank 1 sleeps; rank 0 must give up on its all-reduce after the timeout
//                      (2 s) with a clear error, and the job must end.
//   dist_check exact   identical buffers summed over a power-of-two number of ranks: exactly
//                      size x the buffer (over one rank: the buffer, bit for bit).
//   dist_check die     rank 1 exits at once with status 3; rank 0 must not wait forever.
// A second argument `cuda` runs grads / exact on GPU ranks over NCCL (tools/gpu-check.sh).
//
// Prints one line per check from rank 0; exit status 0 only when every check passed.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "engine/autograd.h"
#include "engine/cuda/runtime.h"
#include "engine/dist/communicator.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "layers/norm.h"
#include "models/registry.h"

namespace {

using namespace retort;

struct Case {
    std::string spec;
    bool eval_mode;      // BatchNorm with running statistics: per-sample, so shards add up exactly
    bool freeze_head;    // leave the classifier out of the loss: its parameters get no gradient
    bool sync_bn;        // training-mode BatchNorm over all ranks (SyncBatchNorm)
};

// max over parameters of max|g - ref| / max(max|ref|, 1e-12); an undefined gradient must be
// undefined in both.
double compare(const std::vector<Tensor>& params, const std::vector<Tensor>& reference, bool& defined_ok) {
    double worst = 0;
    defined_ok = true;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const Tensor g = params[i].grad(), r = reference[i].grad();
        if (g.defined() != r.defined()) defined_ok = false;
        if (!g.defined() || !r.defined()) continue;
        const auto a = g.to_vector<double>(), b = r.to_vector<double>();
        double diff = 0, scale = 1e-12;
        for (std::size_t k = 0; k < a.size(); ++k) {
            diff = std::max(diff, std::abs(a[k] - b[k]));
            scale = std::max(scale, std::abs(b[k]));
        }
        worst = std::max(worst, diff / scale);
    }
    return worst;
}

std::vector<Tensor> trained(const Model& model) {
    std::vector<Tensor> params;
    for (const auto& [_, p] : model.named_parameters()) params.push_back(p);
    return params;
}

Tensor loss_of(Model& model, const Tensor& images, const Tensor& labels, bool freeze_head) {
    if (!freeze_head) return cross_entropy(model.forward(images), labels);
    Taps taps({"tokens.0"});  // the first block's tokens: the head after it gets no gradient
    model.forward(images, &taps);
    const Tensor tokens = taps.at("tokens.0");
    return mean(mul(tokens, tokens));
}

bool check_grads(dist::Communicator& comm, Device device) {
    const std::int64_t batch = 11;  // uneven over 2 or 3 ranks
    const std::vector<Case> cases = {
        {"vit_tiny_patch16_224:img_size=12,patch_size=4,depth=2,embed_dim=32,num_heads=2,in_chans=1,num_classes=4", false, false, false},
        {"resnet8:in_chans=1,num_classes=4", true, false, false},
        {"vit_tiny_patch16_224:img_size=12,patch_size=4,depth=1,embed_dim=16,num_heads=2,in_chans=1,num_classes=4", false, true, false},
        {"resnet8:in_chans=1,num_classes=4", false, false, true},
    };
    bool all_ok = true;
    for (const Case& c : cases) {
        manual_seed(7);
        auto model = create_model(c.spec);
        manual_seed(7);
        auto reference = create_model(c.spec);
        for (Model* m : {model.get(), reference.get()}) {
            if (c.eval_mode) m->eval(); else m->train();
            m->to(device);
        }
        Generator data(11);  // the same global batch on every rank
        const Tensor images = randn({batch, 1, 12, 12}, DType::f32, &data).to(device);
        std::vector<std::int64_t> label_values;
        for (std::int64_t i = 0; i < batch; ++i) label_values.push_back((i * 3) % 4);
        const Tensor labels = from_vector(label_values).to(device);

        // one process, the whole batch
        loss_of(*reference, images, labels, c.freeze_head).backward();

        // this rank's piece, weighted by its share, then summed over the ranks
        const std::vector<Tensor> params = trained(*model);
        dist::GradientReducer reducer(std::shared_ptr<dist::Communicator>(&comm, [](auto*) {}), params, 4096);
        const dist::Range piece = dist::shard_range(batch, comm.rank(), comm.size());
        if (c.sync_bn) set_batchnorm_sync(std::shared_ptr<dist::Communicator>(&comm, [](auto*) {}));
        const std::int64_t n = piece.end - piece.begin;
        Tensor loss = loss_of(*model, narrow(images, 0, piece.begin, n), narrow(labels, 0, piece.begin, n),
                              c.freeze_head);
        loss = mul(loss, scalar_tensor(static_cast<double>(n) / batch, loss.dtype(), loss.device()));
        reducer.begin(loss);
        loss.backward();
        reducer.finish();
        set_batchnorm_sync(nullptr);

        bool defined_ok = false;
        double err = compare(params, trained(*reference), defined_ok);
        if (c.sync_bn) {  // the running statistics moved as one process's on the whole batch
            std::vector<Tensor> buffers, reference_buffers;
            for (const auto& [_, b] : model->named_buffers()) buffers.push_back(b);
            for (const auto& [_, b] : reference->named_buffers()) reference_buffers.push_back(b);
            for (std::size_t i = 0; i < buffers.size(); ++i) {
                if (buffers[i].dtype() != DType::f32) continue;  // num_batches_tracked
                const auto a = buffers[i].to_vector<double>(), b = reference_buffers[i].to_vector<double>();
                for (std::size_t k = 0; k < a.size(); ++k)
                    err = std::max(err, std::abs(a[k] - b[k]) / std::max(std::abs(b[k]), 1e-3));
            }
        }
        // the worst rank decides
        const std::vector<double> worst = comm.sum({err, defined_ok ? 0.0 : 1.0}, "the check's result");
        // SyncBatchNorm's backward subtracts nearly equal per-channel sums, which amplifies the
        // float32 round-off of summing in another order (its float64 equality with batch_norm is
        // checked in tests/test_distributed.cpp): a looser bound there.
        const double tolerance = (c.sync_bn ? 1e-4 : 1e-5) * comm.size();
        const bool ok = worst[0] < tolerance && worst[1] == 0 && reducer.bucket_count() > 1 &&
                        reducer.started_during_backward() >= 1;
        if (comm.is_root())
            std::printf("grads %s%s: %lld ranks, relative difference %.3g (summed over ranks), %lld buckets, "
                        "%lld started during backward, gradients present alike: %s -> %s\n",
                        c.spec.substr(0, c.spec.find(':')).c_str(),
                        c.sync_bn ? " (SyncBatchNorm, running statistics too)" : "", static_cast<long long>(comm.size()),
                        worst[0], static_cast<long long>(reducer.bucket_count()),
                        static_cast<long long>(reducer.started_during_backward()),
                        worst[1] == 0 ? "yes" : "no", ok ? "ok" : "FAILED");
        all_ok = all_ok && ok;
    }
    return all_ok;
}

// The all-reduce of identical buffers on a power-of-two number of ranks is exact: each rank's
// result must be size x its buffer, bit for bit (on one rank: the buffer itself).
bool check_exact(dist::Communicator& comm, Device device) {
    Generator gen(5);
    const Tensor original = randn({4099}, DType::f32, &gen);
    Tensor buffer = original.clone().to(device);
    comm.all_reduce(buffer, "the exactness check");
    const auto got = buffer.to_vector<float>(), want = original.to_vector<float>();
    std::int64_t wrong = 0;
    for (std::size_t i = 0; i < got.size(); ++i) wrong += got[i] != want[i] * static_cast<float>(comm.size());
    const std::int64_t total = static_cast<std::int64_t>(comm.sum({static_cast<double>(wrong)}, "the count")[0]);
    if (comm.is_root())
        std::printf("exact: all-reduce over %d rank(s) (%s, %s), %lld values off -> %s\n", comm.size(),
                    comm.backend().c_str(), device.str().c_str(), static_cast<long long>(total),
                    total == 0 ? "ok" : "FAILED");
    return total == 0;
}

int env_int(const char* name) {
    const char* text = std::getenv(name);
    return text ? std::atoi(text) : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    const bool on_gpu = argc > 2 && std::string(argv[2]) == "cuda";
    std::shared_ptr<dist::Communicator> comm;
    try {
        std::shared_ptr<dist::Communicator> world = dist::mpi_world();
        comm = world;
        Device device = Device::cpu();
        if (on_gpu) {  // GPU ranks: the GPU of the rank on its node, and NCCL between them
            const int gpus = cuda::device_count();
            require(gpus > 0, "dist_check: no GPU");
            device = Device::cuda(env_int("OMPI_COMM_WORLD_LOCAL_RANK") % gpus);
            comm = dist::nccl_communicator(*world, device);
        }
        if (mode == "grads" || mode == "exact") {
            const bool ok = mode == "grads" ? check_grads(*comm, device) : check_exact(*comm, device);
            comm.reset();
            dist::finalize();
            return ok ? 0 : 1;
        }
        if (mode == "hang") {
            comm->timeout_seconds = 2;
            if (comm->rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
            comm->sum({1.0}, "the hang check's all-reduce");
            std::printf("hang: rank %d got an answer it should not have\n", comm->rank());
            return 1;
        }
        if (mode == "die") {
            if (comm->rank() == 1) ::_exit(3);
            comm->timeout_seconds = 120;
            comm->sum({1.0}, "the die check's all-reduce");
            std::printf("die: rank %d got an answer it should not have\n", comm->rank());
            return 1;
        }
        std::fprintf(stderr, "dist_check: mode grads, exact, hang or die (then cuda for GPU ranks)\n");
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "dist_check %s: error on rank %d: %s\n", mode.c_str(), comm ? comm->rank() : -1,
                     e.what());
        std::fflush(stderr);
        if (comm && comm->size() > 1) comm->abort(1);
        return 1;
    }
}
