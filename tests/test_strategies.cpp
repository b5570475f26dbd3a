// tests/test_strategies.cpp: the training strategies of `retort distill` whose teacher is the
// network itself: self-distillation (mode = self_distill) and born-again generations (mode =
// born_again). The shared CE + KD loss against a direct computation and an f64 gradient check;
// the config keys and their mistakes; the self-distillation teacher (frozen, never in the
// optimizer, equal to the best epoch's or the k-th epoch's weights, plain CE before it teaches)
// and a batch's KD term from the saved teacher; resuming bit for bit; born-again runs end to end
// on synthetic data (directories, generations.json against metrics.csv and against an independent
// evaluation of the saved weights, generation 0 as `retort train`, generation 1's first KD loss
// from generation 0's best), resuming between and inside generations, `first` and --seeds.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/loader.h"
#include "distill/born_again.h"
#include "distill/checkpoint.h"
#include "distill/distill_config.h"
#include "distill/metrics_csv.h"
#include "distill/self_distillation.h"
#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/gradcheck.h"
#include "tests/run_files.h"

using namespace retort;
using namespace retort::testing;
namespace fs = std::filesystem;
using retort::testing::CliRun;
using retort::testing::gradcheck;
using retort::testing::run_retort;
using retort::testing::TempDir;

namespace {

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

const char* kData = "synthetic:num_classes=4,size=96,test_size=32,channels=1,height=8,width=8";
const char* kModel = "resnet8:in_chans=1,num_classes=4";

// A training run on 8x8 one-channel images of 4 classes: 80 training, 16 validation and 32 test
// samples, 5 steps per epoch.
std::string run_sections(int epochs, int log_every = 2) {
    return cat("[model]\nspec = ", kModel, "\n[data]\npath = ", kData,
               "\nval_size = 16\nbatch_size = 16\nworkers = 0\n"
               "train_transforms = \"random_crop:padding=1; flip\"\n"
               "[optim]\nlr = 0.05\n[run]\nepochs = ",
               epochs, "\nlog_every = ", log_every, "\nthreads = 1\n");
}

std::string self_text(const std::string& extra, int epochs = 3) {
    return run_sections(epochs) + "[distill]\nmode = self_distill\n[self_distill]\n" + extra;
}

std::string born_text(const std::string& extra, int epochs = 2, int log_every = 2) {
    return run_sections(epochs, log_every) + "[distill]\nmode = born_again\n[born_again]\n" + extra;
}

// The text parsed by the distillation schema, then `overrides` applied as --set would.
Config parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
    Config c = distill_config_schema();
    c.parse(text, "s.cfg");
    for (const std::string& o : overrides) c.apply_override(o);
    return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() &&
           std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}

bool same_tensors(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [name, t] : a)
        if (!b.count(name) || !same_bits(t, b.at(name))) return false;
    return true;
}

std::map<std::string, Tensor> state_of(const Module& m) {
    const NamedTensors named = m.state_dict();
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : named) state[name] = t.clone();
    return state;
}

// The checkpoint's objectives under `prefix` ("teacher."), without it.
std::map<std::string, Tensor> under(const std::map<std::string, Tensor>& all, const std::string& prefix) {
    std::map<std::string, Tensor> out;
    for (const auto& [name, t] : all)
        if (name.starts_with(prefix)) out[name.substr(prefix.size())] = t;
    return out;
}

// ---- direct computations, in double, from the definitions ----

double log_sum_exp(const double* row, std::int64_t K, double scale) {
    double top = row[0] * scale;
    for (std::int64_t k = 1; k < K; ++k) top = std::max(top, row[k] * scale);
    double sum = 0;
    for (std::int64_t k = 0; k < K; ++k) sum += std::exp(row[k] * scale - top);
    return top + std::log(sum);
}

// T^2 / B * sum_b sum_k p_bk (log p_bk - log q_bk), p = softmax(t / T), q = softmax(s / T).
double direct_kd(const Tensor& s, const Tensor& t, double T) {
    const std::vector<double> x = s.to_vector<double>(), y = t.to_vector<double>();
    const std::int64_t B = s.size(0), K = s.size(1);
    double total = 0;
    for (std::int64_t b = 0; b < B; ++b) {
        const double* sr = x.data() + b * K;
        const double* tr = y.data() + b * K;
        const double ls = log_sum_exp(sr, K, 1 / T), lt = log_sum_exp(tr, K, 1 / T);
        for (std::int64_t k = 0; k < K; ++k) {
            const double log_p = tr[k] / T - lt, log_q = sr[k] / T - ls;
            total += std::exp(log_p) * (log_p - log_q);
        }
    }
    return T * T * total / static_cast<double>(B);
}

// Mean over the batch of -log softmax(s)[y].
double direct_ce(const Tensor& s, const Tensor& labels) {
    const std::vector<double> x = s.to_vector<double>();
    const std::vector<std::int64_t> y = labels.to_vector<std::int64_t>();
    const std::int64_t B = s.size(0), K = s.size(1);
    double total = 0;
    for (std::int64_t b = 0; b < B; ++b) total += log_sum_exp(x.data() + b * K, K, 1) - x[b * K + y[b]];
    return total / static_cast<double>(B);
}

// Top-1 (%) of the average softmax of the models in `weights` over a split, every model loaded
// into [model] and run in eval mode: the ensemble computed here from the saved files alone.
double ensemble_top1(const std::vector<std::string>& weights, const std::shared_ptr<const Dataset>& split) {
    LoaderOptions o;
    o.batch_size = 7;  // another batching than the run's: the result must not depend on it
    o.shuffle = false;
    o.workers = 0;
    std::vector<double> sum;
    std::vector<std::int64_t> labels;
    std::int64_t classes = 0;
    for (const std::string& path : weights) {
        std::shared_ptr<Model> model = create_model(kModel);
        model->load_state_dict(load_model_weights(path));
        model->eval();
        NoGradGuard no_grad;
        DataLoader loader(split, o);
        loader.start_epoch(0);
        Batch batch;
        std::size_t at = 0;
        labels.clear();
        while (loader.next(batch)) {
            const Tensor logits = model->forward(batch.images);
            classes = logits.size(1);
            for (double p : softmax(logits, 1).to_vector<double>()) {
                if (sum.size() <= at) sum.push_back(0);
                sum[at++] += p;
            }
            for (std::int64_t y : batch.labels.to_vector<std::int64_t>()) labels.push_back(y);
        }
    }
    std::int64_t hits = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        std::int64_t best = 0;
        for (std::int64_t k = 1; k < classes; ++k)
            if (sum[i * classes + k] > sum[i * classes + best]) best = k;
        hits += best == labels[i];
    }
    return 100.0 * static_cast<double>(hits) / static_cast<double>(labels.size());
}

// Everything one self-distillation run builds, in the order `retort distill` builds it.
struct SelfRun {
    DistillConfig config;
    std::shared_ptr<Model> network;
    DatasetSplits data;
    std::unique_ptr<SelfDistillation> sd;
    std::unique_ptr<Trainer> trainer;

    explicit SelfRun(const Config& c) : config(read_distill_config(c)) {
        network = build_model(config.train);
        data = open_data(config.train);
        sd = std::make_unique<SelfDistillation>(config, network, data);
        trainer = std::make_unique<Trainer>(config.train, network, data, sd->addons());
        sd->attach(*trainer);
        trainer->set_loss(sd->loss_fn());
    }
};

}  // namespace

// ---- the loss ----

TEST_CASE("soft_target_loss: KD and CE terms and the weighted total against a direct computation") {
    struct Case {
        std::int64_t batch, classes;
        double T, ce_weight, kd_weight;
    };
    const Case cases[] = {{1, 1, 4.0, 0.5, 0.5},   // one sample, one class: both terms 0
                          {3, 7, 4.0, 0.5, 0.5},   // self_distill's defaults
                          {5, 2, 1.0, 1.0, 1.0},   // born_again with labels
                          {4, 3, 0.5, 0.0, 1.0}};  // KD alone, T < 1
    std::uint64_t seed = 3;
    for (const Case& c : cases) {
        for (DType dtype : {DType::f64, DType::f32}) {
            CAPTURE(c.classes);
            CAPTURE(dtype_name(dtype));
            Generator gen(seed++);
            const Tensor s = uniform({c.batch, c.classes}, -3, 3, dtype, &gen);
            const Tensor t = uniform({c.batch, c.classes}, -3, 3, dtype, &gen);
            const Tensor labels = randint(0, c.classes, {c.batch}, DType::i64, &gen);
            const SoftTargetLoss l = soft_target_loss(s, t, labels, c.ce_weight, c.kd_weight, c.T);
            const double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
            const double kd = direct_kd(s, t, c.T), ce = direct_ce(s, labels);
            CHECK(l.kd.item() == doctest::Approx(kd).epsilon(tol).scale(1e-6));
            CHECK(l.ce.item() == doctest::Approx(ce).epsilon(tol));
            CHECK(l.total.item() ==
                  doctest::Approx(c.ce_weight * ce + c.kd_weight * kd).epsilon(tol).scale(1e-6));
            CHECK(l.total.dtype() == dtype);
        }
    }
    // Identical logits: nothing to distil.
    const Tensor z = from_vector<double>({0.5, -1, 2, 3, 0, -2}, {2, 3});
    CHECK(std::abs(soft_target_loss(z, z, from_vector<std::int64_t>({0, 2}), 0, 1, 4).kd.item()) < 1e-12);
}

TEST_CASE("soft_target_loss: f64 gradient check, the teacher gets no gradient, a zero CE weight adds no graph") {
    struct Case {
        std::int64_t batch, classes;
        double T, ce_weight, kd_weight, smoothing;
    };
    const Case cases[] = {{1, 3, 4.0, 0.5, 0.5, 0.0},
                          {3, 7, 2.0, 1.0, 1.0, 0.1},
                          {4, 2, 0.7, 0.0, 1.0, 0.0},
                          {2, 5, 1.0, 0.3, 0.0, 0.0}};
    std::uint64_t seed = 20;
    for (const Case& c : cases) {
        CAPTURE(c.classes);
        Generator gen(seed++);
        const Tensor labels = randint(0, c.classes, {c.batch}, DType::i64, &gen);
        Tensor s = uniform({c.batch, c.classes}, -3, 3, DType::f64, &gen);
        s.set_requires_grad(true);
        Tensor t = uniform({c.batch, c.classes}, -3, 3, DType::f64, &gen);
        t.set_requires_grad(true);  // a constant in the loss all the same
        CHECK(gradcheck(
            [&](const std::vector<Tensor>& in) {
                return soft_target_loss(in[0], t.detach(), labels, c.ce_weight, c.kd_weight, c.T,
                                        c.smoothing)
                    .total;
            },
            {s}));
        s.zero_grad();
        soft_target_loss(s, t, labels, c.ce_weight, c.kd_weight, c.T, c.smoothing).total.backward();
        CHECK_FALSE(t.grad().defined());
    }
    Tensor s = uniform({2, 3}, -1, 1, DType::f64);
    s.set_requires_grad(true);
    const SoftTargetLoss l = soft_target_loss(s, zeros({2, 3}, DType::f64), from_vector<std::int64_t>({1, 2}), 0, 1, 2);
    CHECK_FALSE(l.ce.requires_grad());
    CHECK(l.kd.requires_grad());
}

TEST_CASE("soft_target_loss: wrong inputs are refused with the shapes") {
    const Tensor z = zeros({2, 3}), labels = from_vector<std::int64_t>({0, 2});
    using Case = std::pair<std::function<void()>, std::string>;
    const std::vector<Case> cases = {
        {[&] { soft_target_loss(z, zeros({2, 4}), labels, 1, 1, 1); },
         "soft_target_loss: student logits (2, 3) and teacher logits (2, 4) differ in number of classes"},
        {[&] { soft_target_loss(z, zeros({3, 3}), labels, 1, 1, 1); }, "differ in batch size"},
        {[&] { soft_target_loss(zeros({2, 3, 1}), z, labels, 1, 1, 1); },
         "soft_target_loss: the student logits must be (B, K), got shape (2, 3, 1)"},
        {[&] { soft_target_loss(z, zeros({2, 3}, DType::f64), labels, 1, 1, 1); },
         "soft_target_loss: student logits are float32 but teacher logits are float64"},
        {[&] { soft_target_loss(z, z, from_vector<std::int64_t>({0}), 1, 1, 1); },
         "soft_target_loss: labels must be (B) with B = 2"},
        {[&] { soft_target_loss(z, z, from_vector<std::int64_t>({0, 3}), 1, 1, 1); },
         "soft_target_loss: label 3 of sample 1 is outside [0, 3)"},
        {[&] { soft_target_loss(z, z, labels, 1, 1, 0); }, "soft_target_loss: T must be > 0, got 0"},
        {[&] { soft_target_loss(z, z, labels, -1, 1, 1); },
         "soft_target_loss: the weights must be finite and >= 0, got -1 (CE) and 1 (KD)"},
        {[&] { soft_target_loss(z, z, labels, 1, 1, 1, 1.0); },
         "soft_target_loss: label_smoothing must be in [0, 1), got 1"},
    };
    for (const auto& [f, message] : cases) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(f(), doctest::Contains(message.c_str()), Error);
    }
}

// ---- the config ----

TEST_CASE("strategy configs: defaults, values, and every mistake refused with its key") {
    const DistillConfig s = read_distill_config(parse(self_text("")));
    CHECK(s.mode == "self_distill");
    CHECK(s.self_distill.start == 2);
    CHECK(s.self_distill.lambda == 0.5);
    CHECK(s.self_distill.T == 4);
    CHECK(s.self_distill.update == "best");
    CHECK(s.self_distill.every == 1);
    const DistillConfig s2 = read_distill_config(
        parse(self_text("start = 1\nlambda = 0.25\nT = 2\nupdate = every_k\nevery = 3\n"), {"optim.label_smoothing=0.1"}));
    CHECK(s2.self_distill.start == 1);
    CHECK(s2.self_distill.lambda == 0.25);
    CHECK(s2.self_distill.T == 2);
    CHECK(s2.self_distill.update == "every_k");
    CHECK(s2.self_distill.every == 3);
    CHECK(s2.train.optim.label_smoothing == 0.1);

    const DistillConfig b = read_distill_config(parse(born_text("")));
    CHECK(b.mode == "born_again");
    CHECK(b.born_again.generations == 3);
    CHECK(b.born_again.first.empty());
    CHECK(b.born_again.with_labels);
    CHECK(b.born_again.T == 1);
    const DistillConfig b2 =
        read_distill_config(parse(born_text("generations = 5\nfirst = runs/x\nwith_labels = false\nT = 3\n")));
    CHECK(b2.born_again.generations == 5);
    CHECK(b2.born_again.first == "runs/x");
    CHECK_FALSE(b2.born_again.with_labels);
    CHECK(b2.born_again.T == 3);

    auto read = [](const std::string& text, const std::vector<std::string>& overrides = {}) {
        read_distill_config(parse(text, overrides));
    };
    using Case = std::pair<std::function<void()>, std::string>;
    const std::vector<Case> cases = {
        {[&] { read(self_text("lambda = 1.5\n")); }, "self_distill.lambda must be in [0, 1], got 1.5"},
        {[&] { read(self_text("T = 0\n")); }, "self_distill.T must be in (0, 100], got 0"},
        {[&] { read(self_text("start = 0\n")); }, "self_distill.start must be in [1, "},
        {[&] { read(self_text("update = last\n")); }, "self_distill.update must be one of best, every_k; got 'last'"},
        {[&] { read(self_text("every = 0\nupdate = every_k\n")); }, "self_distill.every must be in [1, "},
        {[&] { read(self_text("every = 2\n")); }, "self_distill.every = 2 is only read with self_distill.update = every_k"},
        {[&] { read(self_text("start = 4\n")); },
         "self_distill.start = 4 is after the last epoch (run.epochs = 3): the run would never distil"},
        {[&] { read(self_text("alpha = 1\n")); }, "s.cfg:18: unknown key 'alpha' in [self_distill]; valid keys: start, lambda, T, update, every"},
        {[&] { read(self_text(""), {"distill.teacher=resnet14"}); },
         "distill.teacher = 'resnet14': mode = self_distill trains without a teacher (the network's own best "
         "checkpoint teaches it)"},
        {[&] { read(self_text(""), {"distill.objectives=kd:1"}); },
         "distill.objectives: not used in mode = self_distill, whose loss is (1 - lambda) CE + lambda T^2 KL"},
        {[&] { read(self_text("[born_again]\ngenerations = 2\n")); },
         "born_again.generations = '2' is only read in mode = born_again; set distill.mode = born_again or remove it"},
        {[&] { read(self_text("[dml]\nalpha = 2\n")); }, "dml.alpha = '2' is only read in mode = dml"},
        {[&] { read(born_text("generations = 0\n")); }, "born_again.generations must be in [1, 1000], got 0"},
        {[&] { read(born_text("T = 0\n")); }, "born_again.T must be in (0, 100], got 0"},
        {[&] { read(born_text("with_labels = maybe\n")); }, "born_again.with_labels"},
        {[&] { read(born_text("rounds = 2\n")); }, "unknown key 'rounds' in [born_again]; valid keys: generations, first, with_labels, T"},
        {[&] { read(born_text(""), {"distill.teacher_weights=runs/t"}); },
         "distill.teacher_weights = 'runs/t': mode = born_again trains without a teacher (each generation is "
         "taught by the one before)"},
        {[&] { read(born_text("[self_distill]\nlambda = 0.3\n")); },
         "self_distill.lambda = '0.3' is only read in mode = self_distill"},
        {[&] { read(born_text("[dml]\npeers = resnet8\n")); }, "dml.peers = 'resnet8' is only read in mode = dml"},
        {[&] { read(run_sections(2) + "[distill]\nmode = dml\n[born_again]\nwith_labels = false\n"); },
         "born_again.with_labels = 'false' is only read in mode = born_again"},
        {[&] {
             read(run_sections(2) + "[distill]\nteacher = resnet14\nteacher_weights = t\nobjectives = kd:1\n"
                                    "[self_distill]\nupdate = every_k\n");
         },
         "self_distill.update = 'every_k' is only read in mode = self_distill"},
        {[&] { read(self_text(""), {"distill.mode=self"}); },
         "distill.mode must be one of distill, dml, self_distill, born_again; got 'self'"},
    };
    for (const auto& [f, message] : cases) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(f(), doctest::Contains(message.c_str()), Error);
    }
}

// ---- self-distillation ----

TEST_CASE("self_distill: the teacher is frozen and not trained, update = best: after every epoch it is best.safetensors") {
    TempDir dir;
    const Config config = parse(self_text("", 4));
    SelfRun run(config);
    // The optimizer holds the network's parameters only; the frozen copy is in `objectives`.
    CHECK(run.trainer->optimizer().num_params() == static_cast<std::int64_t>(run.network->parameters().size()));
    for (const Tensor& p : run.sd->teacher().parameters()) CHECK_FALSE(p.requires_grad());
    CHECK(run.sd->teacher_epoch() == 0);
    CHECK(run.sd->describe().find("from epoch 2: loss = 0.5 CE + 0.5 T^2 KL at T = 4") != std::string::npos);

    run.trainer->start(dir / "run", config);
    std::int64_t improved = 0;
    for (std::int64_t epoch = 1; epoch <= 4; ++epoch) {
        CAPTURE(epoch);
        run.trainer->run(epoch);
        const TrainProgress& p = run.trainer->progress();
        improved += p.best_epoch == epoch;
        CHECK(run.sd->teacher_epoch() == p.best_epoch);
        const auto best = load_safetensors(dir / "run/best.safetensors");
        CHECK(same_tensors(state_of(run.sd->teacher()), best));
        const Checkpoint last = read_checkpoint(dir / "run/last.safetensors");
        CHECK(same_tensors(under(last.objectives, "teacher."), best));
        CHECK(last.objectives.at("teacher_epoch").item() == static_cast<double>(p.best_epoch));
        CHECK(last.optimizer.size() == read_checkpoint(dir / "run/last.safetensors").optimizer.size());
    }
    CHECK(improved >= 1);
    // Epoch 1 trains on CE alone (no teacher, and start = 2); epochs 2.. distil from the teacher.
    const Csv csv(dir / "run/metrics.csv");
    CHECK(csv.header == std::vector<std::string>{"epoch", "step", "split", "loss", "top1", "top5", "lr", "seconds",
                                                 "loss.ce", "loss.kd", "teacher_epoch"});
    const std::vector<std::string> kd = csv.column("train", "loss.kd");
    const std::vector<double> loss = csv.numbers("train", "loss"), ce = csv.numbers("train", "loss.ce");
    REQUIRE(kd.size() == 12);  // train rows at steps 2, 4, 5 of each epoch
    for (std::size_t i = 0; i < kd.size(); ++i) {
        CAPTURE(i);
        if (i < 3) {
            CHECK(kd[i].empty());
            CHECK(loss[i] == ce[i]);
        } else {
            REQUIRE_FALSE(kd[i].empty());
            CHECK(std::stod(kd[i]) >= 0);
            CHECK(loss[i] == doctest::Approx(0.5 * ce[i] + 0.5 * std::stod(kd[i])).epsilon(1e-5));
        }
    }
    const std::vector<std::string> taught = csv.column("val", "teacher_epoch");
    REQUIRE(taught.size() == 4);
    CHECK(taught[0].empty());
    CHECK(std::stod(taught[1]) == 1);  // epoch 1 is the first best: it taught epoch 2
}

TEST_CASE("self_distill: update = every_k: the teacher is the k-th epoch's network, no teacher yet means plain CE") {
    TempDir dir;
    const Config config = parse(self_text("start = 1\nupdate = every_k\nevery = 2\n", 5), {"data.val_size=0"});
    SelfRun run(config);  // every_k needs no validation split
    run.trainer->start(dir / "run", config);
    std::map<std::int64_t, std::map<std::string, Tensor>> network_after;
    for (std::int64_t epoch = 1; epoch <= 5; ++epoch) {
        CAPTURE(epoch);
        run.trainer->run(epoch);
        network_after[epoch] = state_of(*run.network);
        const std::int64_t expected = epoch / 2 * 2;  // the teacher of epochs 2k and 2k + 1 is epoch 2k's
        CHECK(run.sd->teacher_epoch() == expected);
        if (expected > 0) CHECK(same_tensors(state_of(run.sd->teacher()), network_after[expected]));
    }
    // Epochs 1 and 2 had no teacher yet (the first one is made after epoch 2): CE alone.
    const Csv csv(dir / "run/metrics.csv");
    const std::vector<std::string> kd = csv.column("train", "loss.kd");
    REQUIRE(kd.size() == 15);
    for (std::size_t i = 0; i < kd.size(); ++i) CHECK_MESSAGE(kd[i].empty() == (i < 6), i);
    CHECK(csv.column("test", "teacher_epoch") == std::vector<std::string>{"", "", "2.000000", "2.000000", "4.000000"});
}

TEST_CASE("self_distill: before `start` the run is `retort train`'s, bit for bit") {
    TempDir dir;
    const Config config = parse(self_text("start = 3\n", 3));
    SelfRun self(config);
    self.trainer->start(dir / "self", config);
    self.trainer->run(2);
    CHECK(self.sd->teacher_epoch() >= 1);  // a teacher exists, but start = 3 has not come

    const DistillConfig dc = read_distill_config(config);
    std::shared_ptr<Model> plain = build_model(dc.train);
    Trainer trainer(dc.train, plain, open_data(dc.train));
    trainer.start(dir / "plain", config);
    trainer.run(2);
    CHECK(same_tensors(state_of(*self.network), state_of(*plain)));
    const std::vector<double> a = Csv(dir / "self/metrics.csv").numbers("train", "loss");
    const std::vector<double> b = Csv(dir / "plain/metrics.csv").numbers("train", "loss");
    CHECK(a == b);
}

TEST_CASE("self_distill: a batch's KD term equals a direct computation from the saved teacher") {
    TempDir dir;
    const Config config = parse(self_text("lambda = 0.3\nT = 2\n"));
    SelfRun run(config);
    run.trainer->start(dir / "run", config);
    run.trainer->run(1);
    REQUIRE(run.sd->teacher_epoch() == 1);

    LoaderOptions o;
    o.batch_size = 16;
    o.workers = 0;
    o.transforms = "random_crop:padding=1; flip";
    DataLoader loader(run.data.train, o);
    loader.start_epoch(1);
    Batch batch;
    REQUIRE(loader.next(batch));
    run.network->train();
    const StepContext ctx{1, 5, 5, 15, 0, 3};  // epoch 2 (0-based 1): distils
    const LossOutput out = run.sd->loss(*run.network, batch, ctx);

    // Independently: the teacher from best.safetensors in eval mode, the network in train mode
    // (BatchNorm normalizes with the batch's statistics, so a second pass gives the same logits).
    std::shared_ptr<Model> teacher = create_model(kModel);
    teacher->load_state_dict(load_safetensors(dir / "run/best.safetensors"));
    teacher->eval();
    NoGradGuard no_grad;
    const Tensor t = teacher->forward(batch.images);
    const Tensor s = run.network->forward(batch.images);
    const double kd = direct_kd(s, t, 2.0), ce = direct_ce(s, batch.labels);
    REQUIRE(out.terms.size() == 2);
    CHECK(out.terms[0] == doctest::Approx(ce).epsilon(1e-5));
    CHECK(out.terms[1] == doctest::Approx(kd).epsilon(1e-4));
    CHECK(kd > 0);
    CHECK(out.loss.item() == doctest::Approx(0.7 * ce + 0.3 * kd).epsilon(1e-5));
    // Before `start` (epoch 1) the same batch gives CE alone and no KD term.
    const LossOutput before = run.sd->loss(*run.network, batch, StepContext{0, 0, 5, 15, 0, 3});
    CHECK(std::isnan(before.terms[1]));
    CHECK(before.loss.item() == doctest::Approx(ce).epsilon(1e-5));

    // update = best with no validation split: refused when the run is built.
    CHECK_THROWS_WITH_AS(SelfRun(parse(self_text(""), {"data.val_size=0"})),
                         doctest::Contains("self_distill.update = best chooses the teacher by validation top-1, but "
                                           "the data has no validation split (data.val_size = 0)"),
                         Error);
}

TEST_CASE("self_distill: stopped and resumed, the same bits as straight (update = best and every_k)") {
    for (const char* extra : {"", "update = every_k\nevery = 2\nstart = 1\n"}) {
        CAPTURE(extra);
        const Config config = parse(self_text(std::string(extra) + "T = 3\n", 3), {"schedule.warmup_epochs=0.5"});
        TempDir dir;
        {
            SelfRun straight(config);
            straight.trainer->start(dir / "straight", config);
            straight.trainer->run();
        }
        for (int stop : {1, 2}) {
            CAPTURE(stop);
            const std::string run_dir = dir / cat("resumed", stop);
            {
                SelfRun first(config);
                first.trainer->start(run_dir, config);
                first.trainer->run(stop);
            }
            randn({1000});  // the generator moves on, as in a new process; resume must put it back
            SelfRun resumed(config);
            resumed.trainer->resume(run_dir);
            CHECK(resumed.sd->teacher_epoch() == read_checkpoint(run_dir + "/last.safetensors").objectives.at("teacher_epoch").item());
            resumed.trainer->run();
            const Checkpoint a = read_checkpoint(dir / "straight/last.safetensors");
            const Checkpoint b = read_checkpoint(run_dir + "/last.safetensors");
            CHECK(same_tensors(a.model, b.model));
            CHECK(same_tensors(a.objectives, b.objectives));  // the teacher snapshot and its epoch
            CHECK(same_tensors(a.optimizer, b.optimizer));
            CHECK(a.rng_offset == b.rng_offset);
            CHECK(without_seconds(dir / "straight/metrics.csv") == without_seconds(run_dir + "/metrics.csv"));
            CHECK(read_text(dir / "straight/best.safetensors") == read_text(run_dir + "/best.safetensors"));
        }
    }
}

TEST_CASE("cli: retort distill in self_distill mode: console, files, eval, --seeds, mistakes refused before a run directory exists") {
    TempDir dir;
    write_file(dir / "self.cfg", self_text(""));
    const std::string out = dir / "run";
    const CliRun r = run_retort("distill --config " + (dir / "self.cfg") + " --out " + out);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("self-distillation: the network's own checkpoint teaches it from epoch 2") != std::string::npos);
    CHECK(r.output.find("self-distillation: the teacher is now the network of epoch 1") != std::string::npos);
    CHECK(r.output.find("done: 3 epochs") != std::string::npos);
    const Checkpoint last = read_checkpoint(out + "/last.safetensors");
    CHECK(last.objectives.count("teacher.conv1.weight") == 1);
    CHECK(last.objectives.at("teacher_epoch").item() == static_cast<double>(last.progress.best_epoch));
    const CliRun e = run_retort("eval --model " + std::string(kModel) + " --weights " + out +
                                "/best.safetensors --data " + kData);
    CHECK_MESSAGE(e.status == 0, e.output);
    const CliRun more = run_retort("distill --resume " + out + " --set run.epochs=4");
    REQUIRE_MESSAGE(more.status == 0, more.output);
    CHECK(more.output.find("resuming " + out + " after epoch 3") != std::string::npos);

    write_file(dir / "one.cfg", self_text("start = 1\n", 1));
    const CliRun seeds = run_retort("distill --config " + (dir / "one.cfg") + " --out " + (dir / "seeds") + " --seeds 1,2");
    REQUIRE_MESSAGE(seeds.status == 0, seeds.output);
    const json::Value summary = json::parse(read_text(dir / "seeds/summary.json"));
    CHECK(summary.find("runs")->as_array().size() == 2);
    CHECK(fs::exists(dir / "seeds/seed-2/last.safetensors"));

    const std::string bad = dir / "bad";
    auto self_with = [&](const std::string& extra, const std::string& set = "") {
        write_file(dir / "bad.cfg", self_text(extra));
        return run_retort("distill --config " + (dir / "bad.cfg") + " --out " + bad + " " + set);
    };
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {self_with("", "--set data.val_size=0"),
         "self_distill.update = best chooses the teacher by validation top-1, but the data has no validation split"},
        {self_with("lambda = 2\n"), "self_distill.lambda must be in [0, 1], got 2"},
        {self_with("update = worst\n"), "self_distill.update must be one of best, every_k"},
        {self_with("", "--set distill.teacher=resnet14:in_chans=1,num_classes=4"),
         "mode = self_distill trains without a teacher"},
        {self_with("gamma = 1\n"), "unknown key 'gamma' in [self_distill]"},
    };
    retort::testing::check_refused(cases, bad);
}

// ---- born-again networks ----

TEST_CASE("cli: retort distill born_again: generations, generations.json against metrics.csv and the saved weights") {
    TempDir dir;
    write_file(dir / "ba.cfg", born_text("generations = 2\n", 2, 1));
    const std::string out = dir / "ba";
    const CliRun r = run_retort("distill --config " + (dir / "ba.cfg") + " --out " + out);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("born-again generation 1 of 2: " + std::string(kModel) + " from seed " +
                        std::to_string(generation_seed(0, 1)) + ", taught by " + out + "/gen-0/best.safetensors") !=
          std::string::npos);
    CHECK(r.output.find("taught by " + out + "/gen-1/best.safetensors") != std::string::npos);
    for (const char* f : {"config", "generations.json", "generations.md", "gen-0/config", "gen-0/metrics.csv",
                          "gen-0/best.safetensors", "gen-0/last.safetensors", "gen-1/best.safetensors",
                          "gen-2/last.safetensors", "gen-2/metrics.csv"})
        CHECK_MESSAGE(fs::exists(out + "/" + f), f);
    CHECK_FALSE(fs::exists(out + "/gen-3"));
    CHECK(read_text(out + "/gen-1/metrics.csv").starts_with("epoch,step,split,loss,top1,top5,lr,seconds,loss.ce,loss.kd\n"));
    CHECK(read_text(out + "/gen-0/metrics.csv").starts_with("epoch,step,split,loss,top1,top5,lr,seconds\n"));
    CHECK(read_text(out + "/generations.md").find("| 1..2 (born-again students) |") != std::string::npos);

    // Each generation's numbers as its own files record them.
    const json::Value summary = json::parse(read_text(out + "/generations.json"));
    const json::Array& generations = summary.find("generations")->as_array();
    REQUIRE(generations.size() == 3);
    double seconds = 0;
    for (std::int64_t k = 0; k < 3; ++k) {
        CAPTURE(k);
        const json::Value& g = generations[k];
        const std::string gdir = out + cat("/gen-", k);
        CHECK(g.find("generation")->as_int() == k);
        CHECK(g.find("dir")->as_string() == cat("gen-", k));
        CHECK(static_cast<std::uint64_t>(g.find("seed")->as_int()) == generation_seed(0, k));
        const std::int64_t best = g.find("best_epoch")->as_int();
        CHECK(std::to_string(best) == read_safetensors(gdir + "/best.safetensors").metadata.at("epoch"));
        const Csv csv(gdir + "/metrics.csv");
        const std::vector<double> val = csv.numbers("val", "top1"), test = csv.numbers("test", "top1");
        REQUIRE(val.size() == 2);
        CHECK(g.find("best_val_top1")->as_double() == doctest::Approx(val[best - 1]).epsilon(1e-6));
        CHECK(g.find("best_test_top1")->as_double() == doctest::Approx(test[best - 1]).epsilon(1e-6));
        CHECK(g.find("last_test_top1")->as_double() == doctest::Approx(test.back()).epsilon(1e-6));
        const Checkpoint last = read_checkpoint(gdir + "/last.safetensors");
        CHECK(last.progress.epoch == 2);
        CHECK(g.find("seconds")->as_double() == doctest::Approx(last.progress.seconds));
        seconds += last.progress.seconds;
    }
    CHECK(summary.find("total_seconds")->as_double() ==
          doctest::Approx(seconds + summary.find("eval_seconds")->as_double()));

    // The ensembles, recomputed from the saved best.safetensors files alone.
    const DistillConfig dc = read_distill_config(parse(born_text("generations = 2\n")));
    const DatasetSplits data = open_data(dc.train);
    const json::Array& ensembles = summary.find("ensembles")->as_array();
    REQUIRE(ensembles.size() == 2);
    const std::vector<std::string> students = {out + "/gen-1/best.safetensors", out + "/gen-2/best.safetensors"};
    std::vector<std::string> all = students;
    all.insert(all.begin(), out + "/gen-0/best.safetensors");
    CHECK(ensembles[0].find("members")->as_array().size() == 2);
    CHECK(ensembles[0].find("test_top1")->as_double() == doctest::Approx(ensemble_top1(students, data.test)));
    CHECK(ensembles[0].find("val_top1")->as_double() == doctest::Approx(ensemble_top1(students, data.val)));
    CHECK(ensembles[1].find("members")->as_array().size() == 3);
    CHECK(ensembles[1].find("test_top1")->as_double() == doctest::Approx(ensemble_top1(all, data.test)));
    CHECK(ensembles[1].find("val_top1")->as_double() == doctest::Approx(ensemble_top1(all, data.val)));

    // Generation 1's first step: CE + KD of its initial network against generation 0's best, on
    // the first batch of the run (log_every = 1: the first train row is that step alone).
    manual_seed(generation_seed(0, 1));
    std::shared_ptr<Model> initial = create_model(kModel);
    std::shared_ptr<Model> teacher = create_model(kModel);
    teacher->load_state_dict(load_model_weights(out + "/gen-0/best.safetensors"));
    teacher->eval();
    LoaderOptions o;
    o.batch_size = 16;
    o.workers = 0;
    o.transforms = "random_crop:padding=1; flip";
    DataLoader loader(data.train, o);
    loader.start_epoch(0);
    Batch batch;
    REQUIRE(loader.next(batch));
    NoGradGuard no_grad;
    const Tensor s = initial->forward(batch.images), t = teacher->forward(batch.images);
    const Csv gen1(out + "/gen-1/metrics.csv");
    const double kd = direct_kd(s, t, 1.0), ce = direct_ce(s, batch.labels);
    CHECK(kd > 0);
    CHECK(gen1.numbers("train", "loss.kd").front() == doctest::Approx(kd).epsilon(1e-4));
    CHECK(gen1.numbers("train", "loss.ce").front() == doctest::Approx(ce).epsilon(1e-4));
    CHECK(gen1.numbers("train", "loss").front() == doctest::Approx(ce + kd).epsilon(1e-4));

    // Generation 0 is what `retort train` makes of the same sections, bit for bit.
    write_file(dir / "train.cfg", run_sections(2, 1));
    const CliRun train = run_retort("train --config " + (dir / "train.cfg") + " --out " + (dir / "train"));
    REQUIRE_MESSAGE(train.status == 0, train.output);
    CHECK(without_seconds(dir / "train/metrics.csv") == without_seconds(out + "/gen-0/metrics.csv"));
    CHECK(read_text(dir / "train/best.safetensors") == read_text(out + "/gen-0/best.safetensors"));
}

TEST_CASE("born_again: resumed between and inside generations, nothing finished is rerun, the same bits as straight") {
    TempDir dir;
    const Config two = parse(born_text("generations = 2\nwith_labels = false\nT = 2\n"));
    {
        BornAgain straight(read_distill_config(two));
        straight.start(dir / "straight", run_generation_quietly);
    }
    auto same_generation = [&](const std::string& run_dir, std::int64_t k) {
        const std::string a = dir / cat("straight/gen-", k), b = run_dir + cat("/gen-", k);
        const Checkpoint x = read_checkpoint(a + "/last.safetensors"), y = read_checkpoint(b + "/last.safetensors");
        CHECK(same_tensors(x.model, y.model));
        CHECK(same_tensors(x.optimizer, y.optimizer));
        CHECK(x.rng_offset == y.rng_offset);
        CHECK(without_seconds(a + "/metrics.csv") == without_seconds(b + "/metrics.csv"));
        CHECK(read_text(a + "/best.safetensors") == read_text(b + "/best.safetensors"));
    };

    // Between generations: one generation, then resumed with two.
    const std::string between = dir / "between";
    {
        const Config one = parse(born_text("generations = 1\nwith_labels = false\nT = 2\n"));
        BornAgain first(read_distill_config(one));
        first.start(between, run_generation_quietly);
    }
    const std::string gen0_last = read_text(between + "/gen-0/last.safetensors");
    const std::string gen1_last = read_text(between + "/gen-1/last.safetensors");
    std::vector<std::string> trained;
    const GenerationRunner recording = [&](const GenerationJob& job) {
        trained.push_back(fs::path(job.dir).filename().string());
        run_generation_quietly(job);
    };
    {
        BornAgain resumed(read_distill_config(two));
        resumed.resume(between, recording);
    }
    CHECK(trained == std::vector<std::string>{"gen-2"});
    CHECK(read_text(between + "/gen-0/last.safetensors") == gen0_last);  // not run again
    CHECK(read_text(between + "/gen-1/last.safetensors") == gen1_last);
    for (std::int64_t k = 0; k <= 2; ++k) same_generation(between, k);

    // Inside generations: stopped after generation 1's first epoch, then in generation 2 right
    // after it started.
    struct Stop {};
    const std::string inside = dir / "inside";
    const GenerationRunner stop_in_gen1 = [&](const GenerationJob& job) {
        if (job.resume) job.trainer.resume(job.dir);
        else job.trainer.start(job.dir, job.config);
        job.trainer.run(job.dir.ends_with("gen-1") ? 1 : 0);
        if (job.dir.ends_with("gen-1")) throw Stop{};
    };
    {
        BornAgain run(read_distill_config(two));
        CHECK_THROWS_AS(run.start(inside, stop_in_gen1), Stop);
    }
    CHECK(generation_state(inside + "/gen-1", 2) == GenerationState::unfinished);
    trained.clear();
    const GenerationRunner stop_in_gen2 = [&](const GenerationJob& job) {
        trained.push_back(cat(fs::path(job.dir).filename().string(), job.resume ? " resumed" : " started"));
        if (!job.dir.ends_with("gen-2")) return run_generation_quietly(job);
        job.trainer.start(job.dir, job.config);
        throw Stop{};
    };
    {
        BornAgain run(read_distill_config(two));
        CHECK_THROWS_AS(run.resume(inside, stop_in_gen2), Stop);
    }
    CHECK(trained == std::vector<std::string>{"gen-1 resumed", "gen-2 started"});
    // its starting checkpoint is there: generation 2 is resumed from step 0
    CHECK(generation_state(inside + "/gen-2", 2) == GenerationState::unfinished);
    CHECK(read_checkpoint(inside + "/gen-2/last.safetensors").progress.step == 0);
    // killed before that checkpoint was written: a directory with a config only, which starts over
    fs::remove(inside + "/gen-2/last.safetensors");
    CHECK(generation_state(inside + "/gen-2", 2) == GenerationState::unstarted);
    trained.clear();
    BornAgainSummary summary;
    {
        BornAgain run(read_distill_config(two));
        summary = run.resume(inside, recording);
    }
    CHECK(trained == std::vector<std::string>{"gen-2"});
    for (std::int64_t k = 0; k <= 2; ++k) same_generation(inside, k);
    const json::Value a = json::parse(read_text(dir / "straight/generations.json"));
    const json::Value b = json::parse(read_text(inside + "/generations.json"));
    for (const char* key : {"val_top1", "test_top1"})
        for (int e = 0; e < 2; ++e)
            CHECK(a.find("ensembles")->as_array()[e].find(key)->as_double() ==
                  b.find("ensembles")->as_array()[e].find(key)->as_double());
    CHECK(summary.generations.size() == 3);

    // Everything finished: a further resume is refused until generations are added.
    BornAgain done(read_distill_config(two));
    CHECK_THROWS_WITH_AS(done.resume(inside, run_generation_quietly),
                         doctest::Contains("has finished all 2 generations after generation 0; to add generations, "
                                           "resume with --set born_again.generations=N (N > 2)"),
                         Error);
    const std::string nowhere = "no run directory " + (dir / "nowhere");
    CHECK_THROWS_WITH_AS(done.resume(dir / "nowhere", run_generation_quietly),
                         doctest::Contains(nowhere.c_str()), Error);
    // A teacher that went missing is named.
    fs::remove_all(inside + "/gen-2");
    fs::remove(inside + "/gen-1/best.safetensors");
    const std::string missing =
        "born-again generation 2 is taught by generation 1, but " + inside + "/gen-1/best.safetensors does not exist";
    CHECK_THROWS_WITH_AS(done.resume(inside, run_generation_quietly), doctest::Contains(missing.c_str()), Error);
}

TEST_CASE("cli: born_again from an existing `retort train` run, --resume, --seeds, and mistakes refused before any file") {
    TempDir dir;
    write_file(dir / "train.cfg", run_sections(1));
    const CliRun train = run_retort("train --config " + (dir / "train.cfg") + " --out " + (dir / "teacher"));
    REQUIRE_MESSAGE(train.status == 0, train.output);

    // Generation 0 is the given run: nothing trained for it, generation 1 learns from its best.
    write_file(dir / "ba.cfg", born_text("generations = 1\nfirst = " + (dir / "teacher") + "\n", 1));
    const std::string out = dir / "ba";
    const CliRun r = run_retort("distill --config " + (dir / "ba.cfg") + " --out " + out);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("taught by " + (dir / "teacher") + "/best.safetensors") != std::string::npos);
    CHECK_FALSE(fs::exists(out + "/gen-0"));
    CHECK(fs::exists(out + "/gen-1/best.safetensors"));
    const json::Value summary = json::parse(read_text(out + "/generations.json"));
    const json::Value& g0 = summary.find("generations")->as_array().at(0);
    CHECK(g0.find("dir")->as_string() == dir / "teacher");
    const Csv teacher_csv(dir / "teacher/metrics.csv");
    CHECK(g0.find("best_val_top1")->as_double() == doctest::Approx(teacher_csv.numbers("val", "top1")[0]).epsilon(1e-6));
    CHECK(g0.find("last_test_top1")->as_double() == doctest::Approx(teacher_csv.numbers("test", "top1")[0]).epsilon(1e-6));

    // --resume adds a generation (and refuses another run.epochs or a generation directory).
    const CliRun more = run_retort("distill --resume " + out + " --set born_again.generations=2");
    REQUIRE_MESSAGE(more.status == 0, more.output);
    CHECK(more.output.find("born-again generation 1 of 2: finished earlier in " + out + "/gen-1, not run again") !=
          std::string::npos);
    CHECK(fs::exists(out + "/gen-2/best.safetensors"));
    CHECK(json::parse(read_text(out + "/generations.json")).find("generations")->as_array().size() == 3);
    const CliRun epochs = run_retort("distill --resume " + out + " --set run.epochs=3");
    CHECK(epochs.status != 0);
    CHECK(epochs.output.find("run.epochs cannot change when a born-again run resumes") != std::string::npos);
    const CliRun gen = run_retort("distill --resume " + out + "/gen-1");
    CHECK(gen.status != 0);
    CHECK(gen.output.find("is one generation of the born-again run in " + out +
                          ": continue the whole run with `retort distill --resume " + out + "`") != std::string::npos);
    const CliRun finished = run_retort("distill --resume " + out);
    CHECK(finished.status != 0);
    CHECK(finished.output.find("has finished all 2 generations") != std::string::npos);
    const CliRun moved = run_retort("distill --resume " + out + " --out " + (dir / "elsewhere"));
    CHECK(moved.status != 0);
    CHECK(moved.output.find("distill: --out cannot be used with --resume (the run stays in " + out + ")") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(dir / "elsewhere"));

    // --seeds: one born-again run per seed, summarized by its last generation.
    write_file(dir / "seeds.cfg", born_text("generations = 1\n", 1));
    const CliRun seeds = run_retort("distill --config " + (dir / "seeds.cfg") + " --out " + (dir / "seeds") + " --seeds 3,4");
    REQUIRE_MESSAGE(seeds.status == 0, seeds.output);
    const json::Value seed_summary = json::parse(read_text(dir / "seeds/summary.json"));
    const json::Array& runs = seed_summary.find("runs")->as_array();
    REQUIRE(runs.size() == 2);
    for (const json::Value& run : runs) {
        const std::string seed_dir = dir / ("seeds/" + run.find("dir")->as_string());
        const json::Value generations = json::parse(read_text(seed_dir + "/generations.json"));
        const json::Value& last = generations.find("generations")->as_array().at(1);
        CHECK(run.find("best_test_top1")->as_double() == last.find("best_test_top1")->as_double());
        CHECK(run.find("best_epoch")->as_int() == last.find("best_epoch")->as_int());
    }

    // Mistakes, each before anything is written.
    write_file(dir / "other_seed.cfg", run_sections(1));
    const std::string bad = dir / "bad";
    auto born_with = [&](const std::string& extra, const std::string& options = "") {
        write_file(dir / "bad.cfg", born_text(extra, 1));
        return run_retort("distill --config " + (dir / "bad.cfg") + " --out " + bad + " " + options);
    };
    fs::create_directories(dir / "empty_run");
    for (const char* name : {"no_config", "bad_config"}) {
        fs::create_directories(dir / name);
        fs::copy_file(dir / "teacher/best.safetensors", dir / (std::string(name) + "/best.safetensors"));
    }
    write_file(dir / "bad_config/config", "[model\n");
    write_file(dir / "r14.cfg", cat("[model]\nspec = resnet14:in_chans=1,num_classes=4\n[data]\npath = ", kData,
                                    "\nval_size = 16\nworkers = 0\n[run]\nepochs = 1\nthreads = 1\n"));
    const CliRun r14 = run_retort("train --config " + (dir / "r14.cfg") + " --out " + (dir / "r14"));
    REQUIRE_MESSAGE(r14.status == 0, r14.output);
    const CliRun seed5 = run_retort("train --config " + (dir / "other_seed.cfg") + " --out " + (dir / "seed5") +
                                    " --set run.seed=5");
    REQUIRE_MESSAGE(seed5.status == 0, seed5.output);
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {born_with("first = missing/dir\n"), "born_again.first: no run directory at missing/dir"},
        {born_with("first = " + (dir / "empty_run") + "\n"),
         "born_again.first: the run directory " + (dir / "empty_run") + " has no best.safetensors"},
        {born_with("first = " + (dir / "no_config") + "\n"),
         "born_again.first: the run directory " + (dir / "no_config") + " has no config: it is not a run directory"},
        {born_with("first = " + (dir / "bad_config") + "\n"),
         "born_again.first: " + (dir / "bad_config") + "/config is not a readable run config: "},
        {born_with("first = " + (dir / "seed5") + "\n"),
         "born_again.first: the run in " + (dir / "seed5") + " was trained with run.seed = 5 (here 0)"},
        {born_with("first = " + (dir / "r14") + "\n"),
         "born_again.first: " + (dir / "r14") + "/best.safetensors does not fit [model] " + kModel +
             " (it was saved for model resnet14:in_chans=1,num_classes=4)"},
        {born_with("first = " + (dir / "teacher") + "\n", "--seeds 1,2"),
         "--seeds trains generation 0 once per seed, but born_again.first = '"},
        {born_with("generations = 0\n"), "born_again.generations must be in [1, 1000], got 0"},
        {born_with("", "--set distill.objectives=kd:1"), "distill.objectives: not used in mode = born_again"},
    };
    retort::testing::check_refused(cases, bad);
}
