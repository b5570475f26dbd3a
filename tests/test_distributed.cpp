// tests/test_distributed.cpp: data parallel (engine/dist, the Trainer's ranks, tools/ranks.h).
//
// Without MPI: how batches are split (shard_range and the loader's shards, which together must be
// the single process's batches bit for bit) and the gradient reducer's buckets, flags and hooks
// against a stand-in for a second rank. With MPI (the build found it and mpirun is installed):
// real ranks started by mpirun: summed gradients against one process on the whole batch
// (tests/dist/dist_check.cpp), a hung and a dead rank, `retort train --ranks 2` against one rank,
// resuming with another number of ranks, `retort distill` data parallel and with seed groups.
// Those skip with one line when MPI is missing.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "gradcheck.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "distill/metrics_csv.h"
#include "engine/autograd.h"
#include "engine/cuda/runtime.h"
#include "engine/dist/communicator.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/io/json.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/registry.h"

using namespace retort;
using retort::testing::CliRun;
using retort::testing::TempDir;

namespace {

TEST_CASE("dist: shard_range splits a batch evenly, the first ranks taking one more") {
    for (std::int64_t count : {0, 1, 2, 5, 11, 128})
        for (int ranks : {1, 2, 3, 8}) {
            std::int64_t next = 0;
            for (int r = 0; r < ranks; ++r) {
                const dist::Range piece = dist::shard_range(count, r, ranks);
                CHECK(piece.begin == next);  // contiguous, in rank order
                const std::int64_t size = piece.end - piece.begin;
                CHECK(size == count / ranks + (r < count % ranks ? 1 : 0));
                next = piece.end;
            }
            CHECK(next == count);  // every sample once
        }
}

TEST_CASE("dist: the loader's shards put together are the single process's batches, bit for bit") {
    SyntheticOptions o;
    o.num_classes = 3;
    o.size = 22;  // batches of 5: 5, 5, 5, 5, 2 (the last has fewer samples than 3 ranks)
    o.channels = 1;
    o.height = o.width = 8;
    auto data = std::make_shared<SyntheticDataset>(o, 4, "train");
    auto options = [](int rank, int ranks) {
        LoaderOptions l;
        l.batch_size = 5;
        l.workers = 1;
        l.seed = 9;
        l.transforms = "random_crop:padding=1; flip";
        l.shard_rank = rank;
        l.shard_count = ranks;
        return l;
    };
    DataLoader whole(data, options(0, 1));
    whole.start_epoch(2);
    std::vector<Batch> expected;
    for (Batch b; whole.next(b);) expected.push_back(b);
    REQUIRE(expected.size() == 5);
    for (int ranks : {2, 3}) {
        std::vector<std::unique_ptr<DataLoader>> loaders;
        for (int r = 0; r < ranks; ++r) {
            loaders.push_back(std::make_unique<DataLoader>(data, options(r, ranks)));
            loaders.back()->start_epoch(2);
            CHECK(loaders.back()->batches_per_epoch() == 5);  // the same steps on every rank
        }
        for (const Batch& want : expected) {
            std::vector<std::int64_t> indices, labels;
            std::vector<float> pixels;
            for (auto& loader : loaders) {
                Batch piece;
                REQUIRE(loader->next(piece));
                CHECK(piece.global_size == want.labels.numel());
                indices.insert(indices.end(), piece.indices.begin(), piece.indices.end());
                const auto l = piece.labels.to_vector<std::int64_t>();
                labels.insert(labels.end(), l.begin(), l.end());
                if (piece.labels.numel() > 0) {
                    const auto p = piece.images.to_vector<float>();
                    pixels.insert(pixels.end(), p.begin(), p.end());
                }
            }
            CHECK(indices == want.indices);
            CHECK(labels == want.labels.to_vector<std::int64_t>());
            const auto all = want.images.to_vector<float>();
            CHECK(std::memcmp(pixels.data(), all.data(), all.size() * sizeof(float)) == 0);
        }
    }
    CHECK_THROWS_WITH_AS(DataLoader(data, options(2, 2)), doctest::Contains("shard 2 of 2 does not exist"),
                         Error);
}

// A stand-in for two ranks in one process: the other rank's buffer is a copy of this one's, so
// an all-reduce doubles the values (and the used flags). Counts the collectives it saw.
class MirrorRanks : public dist::Communicator {
public:
    int started = 0;
    int rank() const override { return 0; }
    int size() const override { return 2; }
    std::string backend() const override { return "mirror"; }
    std::unique_ptr<dist::Pending> start_all_reduce(Tensor buffer) override {
        ++started;
        float* v = buffer.data<float>();
        for (std::int64_t i = 0; i < buffer.numel(); ++i) v[i] *= 2;
        struct Done : dist::Pending {
            bool done() override { return true; }
        };
        return std::make_unique<Done>();
    }
    std::unique_ptr<dist::Pending> start_broadcast(Tensor, int) override { return nullptr; }
    std::shared_ptr<dist::Communicator> split(int) override { return nullptr; }
    [[noreturn]] void abort(int code) override { std::exit(code); }
};

TEST_CASE("dist: the gradient reducer sums in buckets started during backward, and leaves unused parameters alone") {
    manual_seed(3);
    auto model = create_model(
        "vit_tiny_patch16_224:img_size=8,patch_size=4,depth=2,embed_dim=16,num_heads=2,in_chans=1,num_classes=3");
    manual_seed(3);
    auto twin = create_model(
        "vit_tiny_patch16_224:img_size=8,patch_size=4,depth=2,embed_dim=16,num_heads=2,in_chans=1,num_classes=3");
    std::vector<Tensor> params, twin_params;
    for (const auto& [_, p] : model->named_parameters()) params.push_back(p);
    for (const auto& [_, p] : twin->named_parameters()) twin_params.push_back(p);
    auto ranks = std::make_shared<MirrorRanks>();
    dist::GradientReducer reducer(ranks, params, 2048);
    CHECK(reducer.bucket_count() > 3);

    const Tensor x = randn({4, 1, 8, 8});
    // The loss reads the first block's tokens only: the second block and the head get nothing.
    auto loss_of = [&](Model& m) {
        Taps taps({"tokens.0"});
        m.forward(x, &taps);
        return mean(mul(taps.at("tokens.0"), taps.at("tokens.0")));
    };
    Tensor loss = loss_of(*model);
    reducer.begin(loss);
    loss.backward();
    reducer.finish();
    loss_of(*twin).backward();  // the same gradients without a reducer

    CHECK(ranks->started == reducer.bucket_count());
    CHECK(reducer.started_during_backward() == reducer.bucket_count());  // none waited for finish()
    int used = 0, unused = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const Tensor g = params[i].grad(), want = twin_params[i].grad();
        REQUIRE(g.defined() == want.defined());
        if (!g.defined()) {
            ++unused;
            continue;
        }
        ++used;
        const auto a = g.to_vector<float>(), b = want.to_vector<float>();
        for (std::size_t k = 0; k < a.size(); ++k) REQUIRE(a[k] == 2 * b[k]);  // exact: x2 is exact
    }
    CHECK(used > 0);
    CHECK(unused > 0);

    // A gradient already there before backward would be summed twice: refused.
    CHECK_THROWS_WITH_AS(reducer.begin(loss_of(*model)), doctest::Contains("already has a gradient"), Error);
}

TEST_CASE("dist: sync_batch_norm on one rank is batch_norm (float64: output, gradients, running statistics), and passes gradcheck") {
    auto one = dist::local_communicator();
    Generator gen(21);
    const Tensor x = randn({3, 4, 5, 2}, DType::f64, &gen).set_requires_grad(true);
    const Tensor w = randn({4}, DType::f64, &gen).set_requires_grad(true);
    const Tensor b = randn({4}, DType::f64, &gen).set_requires_grad(true);
    Tensor mean_a = zeros({4}, DType::f64), var_a = ones({4}, DType::f64);
    Tensor mean_b = zeros({4}, DType::f64), var_b = ones({4}, DType::f64);
    const Tensor up = randn({3, 4, 5, 2}, DType::f64, &gen);

    Tensor ya = dist::sync_batch_norm(x, mean_a, var_a, w, b, 0.1, 1e-5, *one);
    ya.backward(up);
    const std::vector<double> gx = x.grad().to_vector<double>(), gw = w.grad().to_vector<double>(),
                              gb = b.grad().to_vector<double>();
    for (Tensor t : {x, w, b}) t.zero_grad();
    Tensor yb = batch_norm(x, mean_b, var_b, w, b, true, 0.1, 1e-5);
    yb.backward(up);
    auto close = [](const std::vector<double>& p, const std::vector<double>& q) {
        REQUIRE(p.size() == q.size());
        for (std::size_t i = 0; i < p.size(); ++i) CHECK(std::abs(p[i] - q[i]) < 1e-12 * (1 + std::abs(q[i])));
    };
    close(ya.to_vector<double>(), yb.to_vector<double>());
    close(gx, x.grad().to_vector<double>());
    close(gw, w.grad().to_vector<double>());
    close(gb, b.grad().to_vector<double>());
    close(mean_a.to_vector<double>(), mean_b.to_vector<double>());
    close(var_a.to_vector<double>(), var_b.to_vector<double>());

    CHECK(retort::testing::gradcheck(
        [&](const std::vector<Tensor>& in) {
            return dist::sync_batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], 0.1, 1e-5, *one);
        },
        {x, w, b}));
    // the all-reduce itself: forward the identity on one rank, backward the identity
    const Tensor v = randn({6}, DType::f64, &gen).set_requires_grad(true);
    CHECK(retort::testing::gradcheck([&](const std::vector<Tensor>& in) { return dist::all_reduce_sum(in[0], *one); },
                                     {v}));
}

// ---- real ranks, under mpirun ----

#if RETORT_TEST_MPI
bool have_mpirun() {
    static const bool found = std::system(RETORT_MPIEXEC " --version > /dev/null 2>&1") == 0;
    return found;
}

// `mpirun -np N PROGRAM ARGS` with the flags this machine needs (root, fewer cores than ranks).
CliRun run_mpi(int ranks, const std::string& program_and_args) {
    return retort::testing::run_command(std::string(RETORT_MPIEXEC) +
                                        " --allow-run-as-root --oversubscribe --bind-to none -np " +
                                        std::to_string(ranks) + " " + program_and_args);
}

#define SKIP_WITHOUT_MPIRUN()                                                              \
    if (!have_mpirun()) {                                                                  \
        MESSAGE("skipped: " RETORT_MPIEXEC " does not run (install openmpi-bin)");        \
        return;                                                                            \
    }

const std::string kDistCheck = std::string(RETORT_BINARY_DIR) + "/tests/retort_dist_check";

int count_of(const std::string& text, const std::string& part) {
    int n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

TEST_CASE("dist (mpirun): gradients summed over 2 and 3 ranks equal one process's on the whole batch, and identical buffers sum exactly") {
    SKIP_WITHOUT_MPIRUN();
    for (int ranks : {2, 3}) {
        const CliRun run = run_mpi(ranks, kDistCheck + " grads");
        CAPTURE(run.output);
        CHECK(run.status == 0);
        CHECK(count_of(run.output, "-> ok") == 4);
    }
    for (int ranks : {1, 2}) {
        const CliRun run = run_mpi(ranks, kDistCheck + " exact");
        CAPTURE(run.output);
        CHECK(run.status == 0);
        CHECK(count_of(run.output, "-> ok") == 1);
    }
}

TEST_CASE("dist (mpirun): a rank that hangs or dies stops the job, with a clear error") {
    SKIP_WITHOUT_MPIRUN();
    const auto start = std::chrono::steady_clock::now();
    const CliRun hang = run_mpi(2, kDistCheck + " hang");
    const double hang_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CAPTURE(hang.output);
    CHECK(hang.status != 0);
    CHECK(hang.output.find("rank 0 of 2 waited 2 s for the other ranks") != std::string::npos);
    CHECK(hang_seconds < 40);  // the sleeping rank would hold it for 60 s

    const auto again = std::chrono::steady_clock::now();
    const CliRun die = run_mpi(2, kDistCheck + " die");
    CAPTURE(die.output);
    CHECK(die.status != 0);
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - again).count() < 40);
}

// A tiny ViT (LayerNorm, no BatchNorm, no dropout): its gradients on pieces of a batch add up to
// the whole batch's, so a data-parallel run must follow the single process's numbers. A constant
// lr, so that a run of 1 epoch resumed to 2 is the run of 2 epochs.
const char* kTinyVit = R"([model]
spec = vit_tiny_patch16_224:img_size=12,patch_size=4,depth=2,embed_dim=32,num_heads=2,in_chans=1,num_classes=4
[data]
path = synthetic:num_classes=4,size=110,test_size=30,channels=1,height=12,width=12
val_size = 16
batch_size = 16
workers = 1
train_transforms = "random_crop:padding=2; flip"
[optim]
name = adamw
lr = 0.003
[schedule]
name = constant
[run]
epochs = 2
log_every = 2
threads = 1
)";

std::string write_config(const TempDir& dir, const std::string& name, const std::string& text) {
    const std::string path = dir / name;
    std::ofstream(path) << text;
    return path;
}

// Rows of two metrics.csv files: same steps and splits; losses within `tolerance` (relative);
// top-1 within one sample of the smallest split (16).
void check_same_curves(const std::string& a_dir, const std::string& b_dir, double tolerance) {
    const MetricsTable a = read_metrics_table(a_dir + "/metrics.csv");
    const MetricsTable b = read_metrics_table(b_dir + "/metrics.csv");
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.rows() > 4);
    for (std::size_t i = 0; i < a.rows(); ++i) {
        CAPTURE(i);
        CHECK(a.split[i] == b.split[i]);
        CHECK(a.numbers.at("step")[i] == b.numbers.at("step")[i]);
        const double la = a.numbers.at("loss")[i], lb = b.numbers.at("loss")[i];
        CHECK(std::abs(la - lb) <= tolerance * std::abs(la));
        CHECK(std::abs(a.numbers.at("top1")[i] - b.numbers.at("top1")[i]) <= 100.0 / 16 + 1e-9);
    }
}

TEST_CASE("dist (mpirun): retort train --ranks 2 follows the 1-rank run, and resuming changes the number of ranks") {
    SKIP_WITHOUT_MPIRUN();
    TempDir dir;
    const std::string config = write_config(dir, "vit.conf", kTinyVit);
    const CliRun one = retort::testing::run_retort("train --config " + config + " --out " + (dir / "one"));
    REQUIRE(one.status == 0);
    const CliRun two = retort::testing::run_retort("train --config " + config + " --out " + (dir / "two") +
                                                   " --ranks 2");
    CAPTURE(two.output);
    REQUIRE(two.status == 0);
    CHECK(count_of(two.output, "done: 2 epochs") == 1);  // rank 0 alone speaks
    check_same_curves(dir / "one", dir / "two", 1e-4);

    // 1 epoch on 2 ranks started by mpirun itself, then the second epoch on 1 rank, then a third on 3
    const std::string retort = std::string(RETORT_BINARY_DIR) + "/retort";
    const CliRun first = run_mpi(2, retort + " train --config " + config + " --out " + (dir / "mixed") +
                                        " --set run.epochs=1");
    CAPTURE(first.output);
    REQUIRE(first.status == 0);
    const CliRun second = retort::testing::run_retort("train --resume " + (dir / "mixed") + " --set run.epochs=2");
    CAPTURE(second.output);
    REQUIRE(second.status == 0);
    check_same_curves(dir / "one", dir / "mixed", 1e-4);
    const CliRun third = run_mpi(3, retort + " train --resume " + (dir / "mixed") + " --set run.epochs=3");
    CAPTURE(third.output);
    CHECK(third.status == 0);
    CHECK(third.output.find("epoch 3/3") != std::string::npos);

    // BatchNorm (per-rank statistics) and a batch that splits unevenly: runs, writes once.
    const CliRun bn = retort::testing::run_retort(
        "train --config " + config + " --out " + (dir / "bn") + " --ranks 3" +
        " --set model.spec=resnet8:in_chans=1,num_classes=4 --set optim.name=sgd --set optim.lr=0.05");
    CAPTURE(bn.output);
    REQUIRE(bn.status == 0);
    CHECK(read_metrics_table(dir / "bn/metrics.csv").rows() == read_metrics_table(dir / "one/metrics.csv").rows());
    CHECK(std::filesystem::exists(dir / "bn/best.safetensors"));

    // SyncBatchNorm: with BatchNorm too, 2 ranks follow 1, over the first epoch. The two compute
    // the statistics by different formulas, and with 8 or 16 samples a batch normalization
    // magnifies their float32 rounding differences step after step: 1e-4 by the end of the first
    // epoch, 2% by the evaluation after the second. Per-rank statistics (no sync) are already
    // 7e-3 off at step 2, so the first epoch tells the two apart.
    const std::string resnet = " --set model.spec=resnet8:in_chans=1,num_classes=4 --set optim.name=sgd"
                               " --set optim.lr=0.05 --set run.epochs=1";
    REQUIRE(retort::testing::run_retort("train --config " + config + " --out " + (dir / "bn-one") + resnet).status == 0);
    const CliRun sync = retort::testing::run_retort("train --config " + config + " --out " + (dir / "bn-sync") + resnet +
                                                    " --ranks 2 --set run.sync_batchnorm=true");
    CAPTURE(sync.output);
    REQUIRE(sync.status == 0);
    check_same_curves(dir / "bn-one", dir / "bn-sync", 2e-3);
    // 94 training samples in batches of 31 leave a last batch of 1: a rank would have none.
    const CliRun small = retort::testing::run_retort("train --config " + config + " --out " + (dir / "bn-small") +
                                                     resnet + " --ranks 2 --set run.sync_batchnorm=true --set data.batch_size=31");
    CHECK(small.status != 0);
    CHECK(small.output.find("run.sync_batchnorm: the last batch of an epoch has 1 samples, fewer than the 2 ranks") !=
          std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "bn-small"));
}

TEST_CASE("dist (mpirun): retort distill over 2 ranks follows 1 rank in every mode, and --seeds with --seed-groups equals the seeds one by one") {
    SKIP_WITHOUT_MPIRUN();
    TempDir dir;
    const std::string config = write_config(dir, "vit.conf", kTinyVit);
    REQUIRE(retort::testing::run_retort("train --config " + config + " --out " + (dir / "teacher") +
                                        " --set run.epochs=1").status == 0);
    const std::string distill = write_config(dir, "kd.conf", std::string(kTinyVit) + R"(
[distill]
teacher = vit_tiny_patch16_224:img_size=12,patch_size=4,depth=2,embed_dim=32,num_heads=2,in_chans=1,num_classes=4
teacher_weights = )" + (dir / "teacher") + R"(
objectives = ce:0.5, kd:0.5
)");
    const CliRun one = retort::testing::run_retort("distill --config " + distill + " --out " + (dir / "one"));
    CAPTURE(one.output);
    REQUIRE(one.status == 0);
    const CliRun two = retort::testing::run_retort("distill --config " + distill + " --out " + (dir / "two") +
                                                   " --ranks 2");
    CAPTURE(two.output);
    REQUIRE(two.status == 0);
    check_same_curves(dir / "one", dir / "two", 1e-4);

    // The other modes: self-distillation, mutual learning, born-again generations.
    const std::vector<std::pair<std::string, std::string>> modes = {
        {"self_distill", "[distill]\nmode = self_distill\n"},
        {"dml", "[distill]\nmode = dml\n[dml]\npeers = vit_tiny_patch16_224:img_size=12,patch_size=4,depth=1,"
                "embed_dim=16,num_heads=2,in_chans=1,num_classes=4\n"},
        {"born_again", "[distill]\nmode = born_again\n[born_again]\ngenerations = 1\n"}};
    for (const auto& [mode, section] : modes) {
        CAPTURE(mode);
        const std::string conf = write_config(dir, mode + ".conf", std::string(kTinyVit) + section);
        const CliRun alone = retort::testing::run_retort("distill --config " + conf + " --out " + (dir / (mode + "-1")));
        const CliRun pair = retort::testing::run_retort("distill --config " + conf + " --out " + (dir / (mode + "-2")) +
                                                        " --ranks 2");
        CAPTURE(pair.output);
        REQUIRE(alone.status == 0);
        REQUIRE(pair.status == 0);
        const std::string run = mode == "born_again" ? "/gen-1" : "";
        check_same_curves(dir / (mode + "-1") + run, dir / (mode + "-2") + run, 1e-4);
    }

    // Two seeds, one rank each at the same time: the same numbers as one after the other.
    const CliRun serial = retort::testing::run_retort("distill --config " + distill + " --out " + (dir / "serial") +
                                                      " --seeds 1,2 --set run.epochs=1");
    REQUIRE(serial.status == 0);
    const CliRun grouped = retort::testing::run_retort("distill --config " + distill + " --out " +
                                                       (dir / "grouped") + " --seeds 1,2 --set run.epochs=1" +
                                                       " --ranks 2 --seed-groups 2");
    CAPTURE(grouped.output);
    REQUIRE(grouped.status == 0);
    auto summary = [](const std::string& run) {
        std::ifstream in(run + "/summary.json");
        std::stringstream text;
        text << in.rdbuf();
        return json::parse(text.str());
    };
    const json::Value a = summary(dir / "serial"), b = summary(dir / "grouped");
    REQUIRE(a.find("runs") != nullptr);
    REQUIRE(b.find("runs") != nullptr);
    const json::Array &runs_a = a.find("runs")->as_array(), &runs_b = b.find("runs")->as_array();
    REQUIRE(runs_a.size() == 2);
    REQUIRE(runs_b.size() == 2);
    for (std::size_t i = 0; i < 2; ++i)
        for (const char* key : {"seed", "best_epoch", "best_val_top1", "best_test_top1", "last_test_top1"}) {
            CAPTURE(key);
            const json::Value *x = runs_a[i].find(key), *y = runs_b[i].find(key);
            REQUIRE(x != nullptr);
            REQUIRE(y != nullptr);
            CHECK(*x == *y);
        }
    CHECK(std::filesystem::exists(dir / "grouped/seed-2/best.safetensors"));

    // bench model --train over 2 ranks: one record (rank 0's), for the whole batch.
    const CliRun bench = retort::testing::run_retort(
        "bench model resnet8:in_chans=1,num_classes=4 --train --batch 8 --input 1x12x12 --steps 1 --threads 1 "
        "--json --ranks 2");
    CAPTURE(bench.output);
    CHECK(bench.status == 0);
    CHECK(count_of(bench.output, "\"ranks\": 2") == 1);
    const CliRun forward = retort::testing::run_retort(
        "bench model resnet8:in_chans=1,num_classes=4 --batch 8 --input 1x12x12 --steps 1 --ranks 2");
    CHECK(forward.status != 0);
    CHECK(forward.output.find("several ranks time training steps only") != std::string::npos);

    // Bad requests, before anything runs.
    const CliRun uneven = retort::testing::run_retort("distill --config " + distill + " --out " + (dir / "x") +
                                                      " --seeds 1,2 --ranks 3 --seed-groups 2");
    CHECK(uneven.status != 0);
    CHECK(uneven.output.find("the 3 ranks must split into 2 groups of equal size") != std::string::npos);
    const CliRun no_seeds = retort::testing::run_retort("distill --config " + distill + " --out " + (dir / "y") +
                                                        " --seed-groups 2");
    CHECK(no_seeds.status != 0);
    CHECK(no_seeds.output.find("give --seeds too") != std::string::npos);
}
#endif

TEST_CASE("dist: --gpus and --ranks refuse what cannot run, before anything is written") {
    TempDir dir;
    const std::string out = dir / "run";
    const CliRun zero = retort::testing::run_retort("train --config x.conf --out " + out + " --ranks 0");
    CHECK(zero.status != 0);
    CHECK(zero.output.find("--ranks must be a whole number from 1 to 4096, got '0'") != std::string::npos);
    const CliRun timeout = retort::testing::run_retort("train --config x.conf --out " + out + " --ranks 2 --dist-timeout 0");
    CHECK(timeout.status != 0);
    CHECK(timeout.output.find("--dist-timeout must be a number of seconds from 1 to 86400") != std::string::npos);
    const CliRun groups = retort::testing::run_retort("train --config x.conf --out " + out + " --seed-groups 2");
    CHECK(groups.status != 0);
    CHECK(groups.output.find("--seed-groups is an option of retort distill") != std::string::npos);
    if (!dist::have_mpi() || retort::cuda::device_count() == 0) {
        const CliRun gpus = retort::testing::run_retort("train --config x.conf --out " + out + " --gpus 2");
        CHECK(gpus.status != 0);
        CHECK((gpus.output.find("needs MPI") != std::string::npos ||
               gpus.output.find("this machine has 0 GPUs") != std::string::npos));
    }
    CHECK_FALSE(std::filesystem::exists(out));
}

}  // namespace
