// tests/test_mutual_learning.cpp: deep mutual learning (`retort distill` with mode = dml). The loss
// and its gradients against PyTorch (fixtures/gen_mutual_learning.py) in float64 and float32, an
// f64 gradient check of each student's loss (and the summed loss's gradient being each student's
// own), the config's keys and mistakes, the peers' seeds and checks, `retort distill` end to end
// on synthetic data (the loss falls, the columns, the files, `retort eval` on them), resuming bit
// for bit, --seeds with the peers' summary, and bad configs refused before a run directory exists.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "distill/distill_config.h"
#include "distill/metrics_csv.h"
#include "distill/mutual_learning.h"
#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"
#include "tests/run_files.h"

using namespace retort;
using namespace retort::testing;
namespace fs = std::filesystem;
using retort::testing::CliRun;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::max_abs_diff;
using retort::testing::run_retort;
using retort::testing::TempDir;

namespace {

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

const char* kData = "synthetic:num_classes=4,size=96,test_size=32,channels=1,height=8,width=8";
const char* kStudent = "resnet8:in_chans=1,num_classes=4";

// A dml run on 8x8 one-channel images of 4 classes: 80 training, 16 validation and 32 test
// samples, 5 steps per epoch; `extra` lines follow the [dml] header.
std::string dml_text(const std::string& extra, int epochs = 2) {
    return cat("[model]\nspec = ", kStudent, "\n[data]\npath = ", kData,
               "\nval_size = 16\nbatch_size = 16\nworkers = 0\n"
               "train_transforms = \"random_crop:padding=1; flip\"\n"
               "[optim]\nlr = 0.05\n[run]\nepochs = ",
               epochs, "\nlog_every = 2\nthreads = 1\n[distill]\nmode = dml\n[dml]\n", extra);
}

Config dml_config(const std::string& text) {
    Config c = distill_config_schema();
    c.parse(text, "dml.cfg");
    return c;
}

Tensor leaf_of(const Tensor& t) {
    Tensor leaf = t.detach().clone();
    leaf.set_requires_grad(true);
    return leaf;
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

bool same_state(const Module& a, const Module& b) {
    const NamedTensors x = a.state_dict(), y = b.state_dict();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i].first != y[i].first || !same_bits(x[i].second, y[i].second)) return false;
    return true;
}

// Everything one dml run builds, in the order `retort distill` builds it.
struct DmlRun {
    DistillConfig config;
    std::shared_ptr<Model> student;
    DatasetSplits data;
    std::unique_ptr<MutualLearning> dml;
    std::unique_ptr<Trainer> trainer;

    explicit DmlRun(const Config& c) : config(read_distill_config(c)) {
        student = build_model(config.train);
        data = open_data(config.train);
        dml = std::make_unique<MutualLearning>(config, student, data);
        trainer = std::make_unique<Trainer>(config.train, student, data, dml->addons());
        trainer->set_loss(dml->loss_fn());
    }
};

}  // namespace

TEST_CASE("dml loss: loss and each student's gradient match PyTorch (f64 and f32)") {
    const Fixture fx("mutual_learning.txt");
    for (const char* name : {"three", "two"}) {
        for (DType dtype : {DType::f64, DType::f32}) {
            const std::string c = name;
            CAPTURE(c);
            CAPTURE(dtype_name(dtype));
            const std::int64_t students = c == "three" ? 3 : 2;
            std::vector<Tensor> logits;
            for (std::int64_t k = 0; k < students; ++k)
                logits.push_back(leaf_of(fx[cat(c, ".z.", k)].to(dtype)));
            const MutualLoss l = mutual_learning_loss(logits, fx[c + ".labels"], fx[c + ".T"].item(),
                                                      fx[c + ".alpha"].item(),
                                                      fx[c + ".label_smoothing"].item());
            const double expected = fx[c + ".loss"].item();
            CHECK(l.total.item() == doctest::Approx(expected).epsilon(1e-5));
            for (std::int64_t k = 0; k < students; ++k) {
                CHECK(l.per_student[k].item() == doctest::Approx(fx[cat(c, ".loss.", k)].item()).epsilon(1e-5));
                CHECK(l.ce[k].item() == doctest::Approx(fx[cat(c, ".ce.", k)].item()).epsilon(1e-5));
                CHECK(l.mimicry[k].item() == doctest::Approx(fx[cat(c, ".kl.", k)].item()).epsilon(1e-5));
            }
            l.total.backward();
            for (std::int64_t k = 0; k < students; ++k) {
                REQUIRE(logits[k].grad().defined());
                CHECK(logits[k].grad().dtype() == dtype);
                CHECK(max_abs_diff(logits[k].grad(), fx[cat(c, ".grad.", k)]) < 1e-4);
            }
        }
    }
}

TEST_CASE("dml loss: f64 gradient check of each student's loss, and the sum's gradient is each student's own") {
    struct Case {
        std::int64_t students, batch, classes;
        double T, alpha, smoothing;
    };
    const Case cases[] = {{2, 1, 3, 1.0, 1.0, 0.0},   // one sample
                          {3, 3, 7, 2.0, 0.5, 0.0},   // odd sizes, the fixture's settings
                          {4, 5, 2, 0.7, 3.0, 0.2},   // two classes, T < 1, smoothing
                          {2, 2, 1, 4.0, 1.0, 0.0}};  // one class: every loss is 0
    std::uint64_t seed = 10;
    for (const Case& c : cases) {
        CAPTURE(c.students);
        CAPTURE(c.classes);
        Generator gen(seed++);
        const Tensor labels = randint(0, c.classes, {c.batch}, DType::i64, &gen);
        std::vector<Tensor> values;
        for (std::int64_t k = 0; k < c.students; ++k)
            values.push_back(uniform({c.batch, c.classes}, -3, 3, DType::f64, &gen));
        auto loss_of = [&](const std::vector<Tensor>& z) {
            return mutual_learning_loss(z, labels, c.T, c.alpha, c.smoothing);
        };
        // L_k as a function of z_k alone: the other students' logits are constants in it.
        for (std::int64_t k = 0; k < c.students; ++k) {
            std::vector<Tensor> inputs;
            for (std::int64_t j = 0; j < c.students; ++j)
                inputs.push_back(j == k ? leaf_of(values[j]) : values[j].clone());
            CHECK(gradcheck([&](const std::vector<Tensor>& z) { return loss_of(z).per_student[k]; }, inputs));
        }
        // One backward pass through the sum gives every student the gradient of its own L_k:
        // the term of L_j (j != k) that reads z_k sees it detached.
        std::vector<Tensor> together;
        for (const Tensor& v : values) together.push_back(leaf_of(v));
        loss_of(together).total.backward();
        for (std::int64_t k = 0; k < c.students; ++k) {
            std::vector<Tensor> alone;
            for (const Tensor& v : values) alone.push_back(leaf_of(v));
            loss_of(alone).per_student[k].backward();
            CHECK(max_abs_diff(together[k].grad(), alone[k].grad()) < 1e-14);
            for (std::int64_t j = 0; j < c.students; ++j)
                if (j != k) CHECK_FALSE(alone[j].grad().defined());
        }
    }
}

TEST_CASE("dml loss: wrong inputs are refused with the shapes") {
    const Tensor z = zeros({2, 3}), labels = from_vector<std::int64_t>({0, 2});
    using Case = std::pair<std::function<void()>, std::string>;
    const std::vector<Case> cases = {
        {[&] { mutual_learning_loss({z}, labels, 1, 1); },
         "mutual_learning_loss: needs at least two students' logits, got 1"},
        {[&] { mutual_learning_loss({z, zeros({2, 3, 1})}, labels, 1, 1); },
         "mutual_learning_loss: the logits of student 1 must be float (B, K), got (2, 3, 1) float32"},
        {[&] { mutual_learning_loss({z, Tensor()}, labels, 1, 1); },
         "the logits of student 1 must be float (B, K), got an undefined tensor"},
        {[&] { mutual_learning_loss({z, zeros({2, 4})}, labels, 1, 1); },
         "the logits of student 1 are (2, 4) float32, student 0's (2, 3) float32"},
        {[&] { mutual_learning_loss({z, zeros({2, 3}, DType::f64)}, labels, 1, 1); },
         "the logits of student 1 are (2, 3) float64, student 0's (2, 3) float32"},
        {[&] { mutual_learning_loss({z, z}, from_vector<std::int64_t>({0}), 1, 1); },
         "mutual_learning_loss: labels must be int64 (2,) for logits (2, 3), got (1,) int64"},
        {[&] { mutual_learning_loss({z, z}, labels.to(DType::f32), 1, 1); },
         "labels must be int64 (2,) for logits (2, 3), got (2,) float32"},
        {[&] { mutual_learning_loss({z, z}, from_vector<std::int64_t>({0, 3}), 1, 1); },
         "mutual_learning_loss: label 3 is not a class of logits (2, 3)"},
        {[&] { mutual_learning_loss({z, z}, labels, 0, 1); }, "mutual_learning_loss: T must be > 0, got 0"},
        {[&] { mutual_learning_loss({z, z}, labels, 1, -0.5); },
         "mutual_learning_loss: alpha must be >= 0, got -0.5"},
        {[&] { mutual_learning_loss({z, z}, labels, 1, 1, 1.0); },
         "mutual_learning_loss: label_smoothing must be in [0, 1), got 1"},
    };
    for (const auto& [f, message] : cases) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(f(), doctest::Contains(message.c_str()), Error);
    }
}

TEST_CASE("dml config: mode, peers, T and alpha, teacher keys refused in dml and required in distill") {
    const DistillConfig plain = read_distill_config(dml_config(dml_text("")));
    CHECK(plain.mode == "dml");
    CHECK(plain.dml.peers == std::vector<std::string>{kStudent});  // "": one peer like [model]
    CHECK(plain.dml.T == 1);
    CHECK(plain.dml.alpha == 1);
    CHECK(plain.teacher.empty());
    CHECK(plain.objectives.empty());
    const DistillConfig three = read_distill_config(
        dml_config(dml_text("peers = resnet8:in_chans=1,num_classes=4 ;resnet14:in_chans=1,num_classes=4\nT = 3\n"
                            "alpha = 0.25\n[optim]\nlabel_smoothing = 0.1\n")));
    CHECK(three.dml.peers == std::vector<std::string>{"resnet8:in_chans=1,num_classes=4",
                                                      "resnet14:in_chans=1,num_classes=4"});
    CHECK(three.dml.T == 3);
    CHECK(three.dml.alpha == 0.25);
    CHECK(three.train.optim.label_smoothing == 0.1);
    CHECK(parse_peer_list(" ", "m") == std::vector<std::string>{"m"});

    auto read = [](const std::string& text) { read_distill_config(dml_config(text)); };
    // A distillation config with its [distill] lines replaced.
    auto distill_mode = [](const std::string& distill_lines) {
        std::string text = dml_text("");
        text.replace(text.find("[distill]\nmode = dml\n"), 21, "[distill]\n" + distill_lines);
        return text;
    };
    using Case = std::pair<std::function<void()>, std::string>;
    const std::vector<Case> cases = {
        {[&] { read(dml_text("[distill]\nteacher = resnet14:in_chans=1,num_classes=4\n")); },
         "distill.teacher = 'resnet14:in_chans=1,num_classes=4': mode = dml trains without a teacher"},
        {[&] { read(dml_text("[distill]\nteacher_weights = runs/t\n")); },
         "distill.teacher_weights = 'runs/t': mode = dml trains without a teacher"},
        {[&] { read(dml_text("[distill]\nobjectives = ce:1, kd:1\npairs = layer1\n")); },
         "distill.objectives, distill.pairs: not used in mode = dml"},
        {[&] { read(dml_text("[distill]\nteacher_cache = memory\n")); },
         "distill.teacher_cache: not used in mode = dml"},
        {[&] { read(dml_text("peers = resnet8:in_chans=1,num_classes=4;;resnet8\n")); },
         "dml.cfg:18: dml.peers = 'resnet8:in_chans=1,num_classes=4;;resnet8': peer 2 is empty"},
        {[&] { read(dml_text("peers = resnet8;\n")); }, "peer 2 is empty"},
        {[&] { read(dml_text("T = 0\n")); }, "dml.T must be in (0, 100], got 0"},
        {[&] { read(dml_text("T = -1\n")); }, "dml.T must be in (0, 100], got -1"},
        {[&] { read(dml_text("alpha = -0.5\n")); }, "dml.alpha must be in [0, "},
        {[&] { read(distill_mode("mode = mutual\n")); },
         "distill.mode must be one of distill, dml, self_distill, born_again; got 'mutual'"},
        {[&] { read(distill_mode("objectives = ce:1\n")); }, "distill.teacher is required in mode = distill"},
        {[&] { read(distill_mode("teacher = resnet14\nobjectives = ce:1\n")); },
         "distill.teacher_weights is required in mode = distill"},
        {[&] { read(distill_mode("teacher = resnet14\nteacher_weights = t\n")); },
         "distill.objectives is required in mode = distill"},
        {[&] { read(distill_mode("teacher = resnet14\nteacher_weights = t\nobjectives = kd:1\n[dml]\npeers = resnet8\n")); },
         "dml.peers = 'resnet8' is only read in mode = dml"},
    };
    for (const auto& [f, message] : cases) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(f(), doctest::Contains(message.c_str()), Error);
    }
}

TEST_CASE("dml: student 0 starts as `retort train` would, peers from derived seeds, each checked") {
    const Config config = dml_config(dml_text("peers = resnet8:in_chans=1,num_classes=4; resnet14:in_chans=1,num_classes=4\n"
                                              "[run]\nseed = 7\n"));
    DmlRun run(config);
    // Student 0 is [model] built from run.seed, as a training run builds it.
    std::shared_ptr<Model> alone = build_model(run.config.train);
    CHECK(same_state(*run.student, *alone));
    // Peer k from peer_seed(run.seed, k), different from student 0 and from each other.
    const std::uint64_t seeds[] = {peer_seed(7, 1), peer_seed(7, 2)};
    CHECK(seeds[0] != seeds[1]);
    CHECK(seeds[0] != 7);
    CHECK(peer_seed(7, 1) != peer_seed(8, 1));
    REQUIRE(run.dml->peers().size() == 2);
    for (int k = 0; k < 2; ++k) {
        manual_seed(seeds[k]);
        CHECK(same_state(*run.dml->peers()[k], *create_model(run.config.dml.peers[k])));
    }
    CHECK_FALSE(same_state(*run.student, *run.dml->peers()[0]));
    // Building the peers leaves the generator where student 0's run left it.
    build_model(run.config.train);
    const std::uint64_t offset = default_generator().offset();
    MutualLearning again(run.config, run.student, run.data);
    CHECK(default_generator().seed() == 7);
    CHECK(default_generator().offset() == offset);
    // One optimizer holds every student's parameters.
    std::int64_t params = static_cast<std::int64_t>(run.student->parameters().size());
    for (const auto& peer : run.dml->peers()) params += static_cast<std::int64_t>(peer->parameters().size());
    CHECK(run.trainer->optimizer().num_params() == params);
    CHECK(run.dml->num_students() == 3);
    const std::string text = run.dml->describe();
    CHECK(text.find("3 students trained together") != std::string::npos);
    CHECK(text.find(cat("student 2: resnet14:in_chans=1,num_classes=4 (peer 2, seed ", seeds[1], "): ",
                        run.dml->peers()[1]->num_parameters(), " parameters")) != std::string::npos);

    // Peers that do not fit the data are refused, naming the peer.
    auto build = [&](const std::string& peers) { DmlRun r(dml_config(dml_text("peers = " + peers + "\n"))); };
    CHECK_THROWS_WITH_AS(build("resnet8:in_chans=1,num_classes=4; resnet8:in_chans=1,num_classes=5"),
                         doctest::Contains("dml.peers: peer 2 (resnet8:in_chans=1,num_classes=5): model "
                                           "resnet8:in_chans=1,num_classes=5 has 5 outputs, but"),
                         Error);
    CHECK_THROWS_WITH_AS(build("resnet9:num_classes=4"),
                         doctest::Contains("dml.peers: peer 1 (resnet9:num_classes=4): unknown model 'resnet9'"),
                         Error);
    CHECK_THROWS_WITH_AS(build("resnet8:in_chans=1,num_classes=4,depth=3"),
                         doctest::Contains("dml.peers: peer 1 (resnet8:in_chans=1,num_classes=4,depth=3): "),
                         Error);
    CHECK_THROWS_WITH_AS(build("resnet8:in_chans=3,num_classes=4"),
                         doctest::Contains("dml.peers: peer 1 (resnet8:in_chans=3,num_classes=4): a trial batch "
                                           "of the training data"),
                         Error);
}

TEST_CASE("cli: retort distill in dml mode: the loss falls, columns, best / peer files, eval") {
    TempDir dir;
    write_file(dir / "dml.cfg", dml_text("alpha = 0.5\n", 3));
    const std::string out = dir / "run";
    CliRun r = run_retort("distill --config " + (dir / "dml.cfg") + " --out " + out);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("deep mutual learning: 2 students trained together, no teacher; T = 1, alpha = 0.5") !=
          std::string::npos);
    const std::int64_t params = create_model(kStudent)->num_parameters();
    CHECK(r.output.find(cat("student 0: ", kStudent, " ([model], seed 0): ", params, " parameters")) !=
          std::string::npos);
    CHECK(r.output.find(cat("student 1: ", kStudent, " (peer 1, seed ", peer_seed(0, 1), "): ", params,
                            " parameters")) != std::string::npos);
    CHECK(r.output.find("peers: peer 1 val top1 ") != std::string::npos);
    CHECK(r.output.find("done: 3 epochs") != std::string::npos);
    for (const char* f : {"config", "metrics.csv", "best.safetensors", "last.safetensors",
                          "peer-1.best.safetensors", "peer-1.last.safetensors"})
        CHECK_MESSAGE(fs::exists(out + "/" + f), f);
    for (const auto& entry : fs::directory_iterator(out))
        CHECK_MESSAGE(entry.path().string().find(".tmp") == std::string::npos, entry.path());

    const Csv csv(out + "/metrics.csv");
    CHECK(read_text(out + "/metrics.csv")
              .starts_with("epoch,step,split,loss,top1,top5,lr,seconds,loss.ce.0,loss.kl.0,loss.ce.1,loss.kl.1,top1.1\n"));
    const std::vector<double> loss = csv.numbers("train", "loss");
    REQUIRE(loss.size() == 9);
    CHECK(loss.back() < loss.front());
    // The total is sum_k ce.k + alpha * kl.k (each averaged the same way, 6 decimals written).
    const std::vector<double> ce0 = csv.numbers("train", "loss.ce.0"), kl0 = csv.numbers("train", "loss.kl.0"),
                              ce1 = csv.numbers("train", "loss.ce.1"), kl1 = csv.numbers("train", "loss.kl.1");
    for (std::size_t i = 0; i < loss.size(); ++i) {
        CHECK(loss[i] == doctest::Approx(ce0[i] + 0.5 * kl0[i] + ce1[i] + 0.5 * kl1[i]).epsilon(1e-5));
        CHECK(kl0[i] >= 0);
    }
    CHECK(csv.column("train", "top1.1") == std::vector<std::string>(9, ""));
    CHECK(csv.column("val", "loss.kl.0") == std::vector<std::string>(3, ""));
    const std::vector<double> peer_val = csv.numbers("val", "top1.1"), peer_test = csv.numbers("test", "top1.1");
    REQUIRE(peer_val.size() == 3);
    REQUIRE(peer_test.size() == 3);

    // best: student 0 alone (loads strictly into [model]); peer-1.best: the peer at its best
    // validation epoch; peer-1.last and last.safetensors' peer: the peer after epoch 3.
    const auto best = load_safetensors(out + "/best.safetensors");
    create_model(kStudent)->load_state_dict(best);
    const Checkpoint last = read_checkpoint(out + "/last.safetensors");
    CHECK(last.progress.epoch == 3);
    CHECK(last.model.size() == best.size());
    const SafetensorsContents peer_last = read_safetensors(out + "/peer-1.last.safetensors");
    CHECK(peer_last.metadata.at("model") == kStudent);
    CHECK(peer_last.metadata.at("epoch") == "3");
    for (const auto& [name, t] : peer_last.tensors)
        CHECK_MESSAGE(same_bits(t, last.objectives.at("peer1." + name)), name);
    const std::size_t best_epoch = static_cast<std::size_t>(
        std::max_element(peer_val.begin(), peer_val.end()) - peer_val.begin());  // the first maximum
    const SafetensorsContents peer_best = read_safetensors(out + "/peer-1.best.safetensors");
    CHECK(peer_best.metadata.at("epoch") == std::to_string(best_epoch + 1));
    CHECK(std::stod(peer_best.metadata.at("val_top1")) == doctest::Approx(peer_val[best_epoch]).epsilon(1e-4));
    CHECK(last.objectives.at("best_epoch").item() == static_cast<double>(best_epoch + 1));
    CHECK(last.objectives.at("best_test_top1").item() == doctest::Approx(peer_test[best_epoch]).epsilon(1e-4));

    for (const char* file : {"best.safetensors", "peer-1.best.safetensors"}) {
        const CliRun e = run_retort("eval --model " + std::string(kStudent) + " --weights " + out + "/" + file +
                                    " --data " + kData);
        CHECK_MESSAGE(e.status == 0, e.output);
        CHECK(e.output.find("32 images") != std::string::npos);
    }
    const CliRun plot = run_retort("plot " + out + " -o " + (dir / "curves.png"));
#ifdef RETORT_HAVE_STB
    CHECK_MESSAGE(plot.status == 0, plot.output);
#else
    CHECK(plot.output.find("built without stb") != std::string::npos);  // PNG needs stb
#endif
}

TEST_CASE("dml: stopped and resumed, the same bits as straight (3 students, warm-up and cosine)") {
    const Config config = dml_config(
        dml_text("peers = resnet8:in_chans=1,num_classes=4; resnet14:in_chans=1,num_classes=4\nT = 2\nalpha = 0.7\n"
                 "[schedule]\nwarmup_epochs = 0.5\n",
                 3));
    TempDir dir;
    {
        DmlRun straight(config);
        straight.trainer->start(dir / "straight", config);
        straight.trainer->run();
    }
    const std::vector<std::string> files = {"best.safetensors", "peer-1.best.safetensors", "peer-1.last.safetensors",
                                            "peer-2.best.safetensors", "peer-2.last.safetensors"};
    for (int stop : {1, 2}) {
        CAPTURE(stop);
        const std::string run_dir = dir / ("resumed" + std::to_string(stop));
        {
            DmlRun first(config);
            first.trainer->start(run_dir, config);
            first.trainer->run(stop);
        }
        randn({1000});  // the generator moves on, as in a new process; resume must put it back
        DmlRun resumed(config);
        resumed.trainer->resume(run_dir);
        CHECK(resumed.trainer->progress().epoch == stop);
        resumed.trainer->run();

        const Checkpoint a = read_checkpoint(dir / "straight/last.safetensors");
        const Checkpoint b = read_checkpoint(run_dir + "/last.safetensors");
        CHECK(same_tensors(a.model, b.model));
        CHECK(same_tensors(a.objectives, b.objectives));  // the peers and their records
        CHECK(same_tensors(a.optimizer, b.optimizer));
        CHECK(a.rng_offset == b.rng_offset);
        CHECK(without_seconds(dir / "straight/metrics.csv") == without_seconds(run_dir + "/metrics.csv"));
        for (const std::string& f : files)
            CHECK_MESSAGE(read_text(dir / ("straight/" + f)) == read_text(run_dir + "/" + f), f);
        const std::vector<PeerRecord> records = resumed.dml->peer_records();
        REQUIRE(records.size() == 2);
        CHECK(records[1].spec == "resnet14:in_chans=1,num_classes=4");
        CHECK(records[0].best_epoch >= 1);
        CHECK(records[0].best_val_top1 >= 0);
    }
    const Checkpoint last = read_checkpoint(dir / "straight/last.safetensors");
    CHECK(last.objectives.count("peer2.layer1.0.conv1.weight") == 1);
    CHECK(last.objectives.count("best_val_top1") == 1);
}

TEST_CASE("cli: retort distill dml --seeds summarizes the student and each peer, --resume continues") {
    TempDir dir;
    write_file(dir / "dml.cfg", dml_text("[schedule]\nname = constant\n", 1));
    const std::string seeds = dir / "seeds";
    const CliRun s = run_retort("distill --config " + (dir / "dml.cfg") + " --out " + seeds + " --seeds 1,2");
    REQUIRE_MESSAGE(s.status == 0, s.output);
    CHECK(s.output.find("seeds: peer 1: test top1 ") != std::string::npos);
    for (const char* f : {"seed-1/peer-1.best.safetensors", "seed-2/peer-1.last.safetensors", "summary.json"})
        CHECK_MESSAGE(fs::exists(seeds + "/" + f), f);
    const json::Value summary = json::parse(read_text(seeds + "/summary.json"));
    const json::Array& runs = summary.find("runs")->as_array();
    REQUIRE(runs.size() == 2);
    std::vector<double> last;
    for (const json::Value& run : runs) {
        const json::Array& peers = run.find("peers")->as_array();
        REQUIRE(peers.size() == 1);
        CHECK(peers[0].find("best_epoch")->as_int() == 1);
        last.push_back(peers[0].find("last_test_top1")->as_double());
    }
    const json::Value& peer = summary.find("peers")->as_array().at(0);
    CHECK(peer.find("model")->as_string() == kStudent);
    CHECK(peer.find("last_test_top1")->find("mean")->as_double() == doctest::Approx((last[0] + last[1]) / 2));
    CHECK(peer.find("last_test_top1")->find("std")->as_double() ==
          doctest::Approx(std::abs(last[0] - last[1]) / std::sqrt(2.0)));
    CHECK(read_text(seeds + "/summary.md").find("- peer 1 (" + std::string(kStudent) + "): ") != std::string::npos);

    // --resume of a dml run: one more epoch, the peers' files follow.
    const CliRun more = run_retort("distill --resume " + seeds + "/seed-1 --set run.epochs=2");
    REQUIRE_MESSAGE(more.status == 0, more.output);
    CHECK(more.output.find("resuming " + seeds + "/seed-1 after epoch 1") != std::string::npos);
    CHECK(read_safetensors(seeds + "/seed-1/peer-1.last.safetensors").metadata.at("epoch") == "2");
}

TEST_CASE("cli: retort distill in dml mode refuses teachers, bad peers, T and alpha before a run directory exists") {
    TempDir dir;
    const std::string out = dir / "run";
    auto dml_with = [&](const std::string& extra, const std::string& set = "") {
        write_file(dir / "bad.cfg", dml_text(extra));
        return run_retort("distill --config " + (dir / "bad.cfg") + " --out " + out + " " + set);
    };
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {dml_with("", "--set distill.teacher=resnet14:in_chans=1,num_classes=4"),
         "mode = dml trains without a teacher"},
        {dml_with("peers = resnet8:in_chans=1,num_classes=10\n"),
         "dml.peers: peer 1 (resnet8:in_chans=1,num_classes=10): model resnet8:in_chans=1,num_classes=10 has 10 "
         "outputs, but"},
        {dml_with("peers = resnet8:in_chans=1,num_classes=4; resnet99\n"),
         "dml.peers: peer 2 (resnet99): unknown model 'resnet99'"},
        {dml_with("T = 0\n"), "dml.T must be in (0, 100], got 0"},
        {dml_with("alpha = -1\n"), "dml.alpha must be in [0, "},
        {dml_with("", "--set 'dml.peers=resnet8;'"), "--set dml.peers=resnet8;: dml.peers = 'resnet8;': peer 2 is empty"},
    };
    retort::testing::check_refused(cases, out);
    CliRun help = run_retort("distill --help");
    CHECK(help.status == 0);
    CHECK(help.output.find("peers (string") != std::string::npos);
}
