// tests/test_distill.cpp: distillation runs: the config's lists and their errors, the default
// feature pairs and OFD's BatchNorm lookup, the teacher (loaded strictly, frozen, never in the
// optimizer), mistakes refused before a run directory exists, `retort distill` end to end on
// synthetic data (the loss falls, the objectives' columns, best / last, `retort eval` on best),
// resuming bit for bit through a pre-training stage, a memory bank and random negatives, and
// --seeds with its summary.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "distill/distill_config.h"
#include "distill/distiller.h"
#include "distill/metrics_csv.h"
#include "distill/objectives/ofd.h"
#include "engine/io/json.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/gradcheck.h"
#include "tests/run_files.h"

using namespace retort;
using namespace retort::testing;
namespace fs = std::filesystem;
using retort::testing::CliRun;
using retort::testing::run_retort;
using retort::testing::TempDir;

namespace {

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

const char* kData = "synthetic:num_classes=4,size=96,test_size=32,channels=1,height=8,width=8";

// The shared part of the teacher's and the student's runs: 8x8 one-channel images of 4 classes;
// 80 training, 16 validation and 32 test samples; 5 steps per epoch.
std::string run_sections(const std::string& spec, int epochs) {
    return cat("[model]\nspec = ", spec, "\n[data]\npath = ", kData,
               "\nval_size = 16\nbatch_size = 16\nworkers = 0\n"
               "train_transforms = \"random_crop:padding=1; flip\"\n"
               "[optim]\nlr = 0.05\n[run]\nepochs = ",
               epochs, "\nlog_every = 2\nthreads = 1\n");
}

const char* kStudent = "resnet8:in_chans=1,num_classes=4";
const char* kTeacher = "resnet14:in_chans=1,num_classes=4";

// A distillation config: the student, a teacher from `teacher_weights`, and `distill_extra`
// lines after the [distill] section's keys (objectives included).
std::string distill_text(const std::string& teacher_weights, const std::string& distill_extra,
                         int epochs = 2) {
    return run_sections(kStudent, epochs) +
           cat("[distill]\nteacher = ", kTeacher, "\nteacher_weights = ", teacher_weights, "\n",
               distill_extra);
}

Config distill_config(const std::string& text) {
    Config c = distill_config_schema();
    c.parse(text, "distill.cfg");
    return c;
}

// A teacher trained for one epoch with `retort train`: RUN/best.safetensors.
std::string train_teacher(const TempDir& dir) {
    write_file(dir / "teacher.cfg", run_sections(kTeacher, 1));
    CliRun r = run_retort("train --config " + (dir / "teacher.cfg") + " --out " + (dir / "teacher"));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return dir / "teacher";
}

// A teacher's weights without training: every BatchNorm's weight and bias drawn at random (so
// OFD's margins differ from the untrained ones), saved as a weights file.
std::string random_teacher(const TempDir& dir, const std::string& spec = kTeacher) {
    manual_seed(11);
    std::shared_ptr<Model> teacher = create_model(spec);
    std::map<std::string, Tensor> state;
    for (auto& [name, t] : teacher->state_dict())
        state[name] = name.find("bn") != std::string::npos && t.is_floating_point()
                          ? rand(t.shape()) * 0.5 + 0.25
                          : t;
    teacher->load_state_dict(state);
    const std::string path = dir / "random_teacher.safetensors";
    save_weights(path, *teacher, {{"model", spec}});
    return path;
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

// The rows of one split of a metrics table, as (column -> value) for the columns asked.
std::vector<double> column_of(const MetricsTable& t, const std::string& split,
                              const std::string& column) {
    std::vector<double> values;
    for (std::size_t row = 0; row < t.rows(); ++row)
        if (t.split[row] == split) values.push_back(t.numbers.at(column)[row]);
    return values;
}

// Everything one run builds, in the order `retort distill` builds it.
struct DistillRun {
    DistillConfig config;
    std::shared_ptr<Model> student, teacher;
    DatasetSplits data;
    std::unique_ptr<Distiller> distiller;
    std::unique_ptr<Trainer> trainer;

    explicit DistillRun(const Config& c) : config(read_distill_config(c)) {
        student = build_model(config.train);
        data = open_data(config.train);
        teacher = load_teacher(config, *student);
        distiller = std::make_unique<Distiller>(config, student, teacher, data);
        trainer = std::make_unique<Trainer>(config.train, student, data, distiller->addons());
        trainer->set_loss(distiller->loss_fn());
    }
};

}  // namespace

TEST_CASE("distill config: objective and pair lists, per-objective pairs, and every mistake named") {
    const std::vector<ObjectiveTerm> terms = parse_objective_list(" ce:0.1 , kd:0.9,at:1000 ");
    REQUIRE(terms.size() == 3);
    CHECK(terms[0].name == "ce");
    CHECK(terms[0].weight == 0.1);
    CHECK(terms[2].name == "at");
    CHECK(terms[2].weight == 1000);
    const std::vector<TapPair> pairs = parse_pair_list("layer1:layer2, layer3");
    REQUIRE(pairs.size() == 2);
    CHECK(pairs[0].student == "layer1");
    CHECK(pairs[0].teacher == "layer2");
    CHECK(pairs[0].name() == "layer1:layer2");
    CHECK(pairs[1].name() == "layer3");
    CHECK(parse_pair_list(" ").empty());

    const DistillConfig d = read_distill_config(distill_config(distill_text(
        "t.safetensors",
        "objectives = ce:1, at:1000, fitnet:1\npairs = layer1, layer2\n[fitnet]\npairs = layer2:layer3\n"
        "[kd]\nT = 2\n")));
    CHECK(d.teacher == kTeacher);
    CHECK(d.teacher_weights == "t.safetensors");
    CHECK(d.pairs.size() == 2);
    CHECK(d.objective_pairs.count("at") == 0);
    REQUIRE(d.objective_pairs.count("fitnet") == 1);
    CHECK(d.objective_pairs.at("fitnet")[0].teacher == "layer3");
    CHECK(d.resolved.get_double("kd.T") == 2);
    CHECK(d.teacher_cache == "off");
    // A logit objective has no pairs key; a feature objective has one.
    CHECK(distill_config_schema().has("at.pairs"));
    CHECK_FALSE(distill_config_schema().has("kd.pairs"));
    CHECK(d.resolved.str().find("[distill]") != std::string::npos);

    auto read = [](const std::string& extra) {
        read_distill_config(distill_config(distill_text("t.safetensors", extra)));
    };
    using Case = std::pair<std::function<void()>, std::string>;
    const std::vector<Case> cases = {
        {[&] { read("objectives = ce:1, kdd:1\n"); },
         "distill.cfg:18: distill.objectives = 'ce:1, kdd:1': unknown objective 'kdd'; valid objectives: kd, dkd"},
        {[&] { read("objectives = ce:-1\n"); }, "the weight of ce must be a finite number >= 0, got '-1'"},
        {[&] { read("objectives = kd:inf\n"); }, "the weight of kd must be a finite number >= 0, got 'inf'"},
        {[&] { read("objectives = ce:1, kd:x\n"); }, "the weight of kd must be a finite number >= 0, got 'x'"},
        {[&] { read("objectives = ce\n"); }, "expected name:weight items such as ce:0.1, kd:0.9, got 'ce'"},
        {[&] { read("objectives = ce:1, ce:2\n"); }, "objective ce is given twice"},
        {[&] { read("objectives = \"\"\n"); }, "needs at least one objective"},
        {[&] { read(""); }, "distill.objectives is required"},
        {[&] { read("objectives = ce:1\npairs = layer1:layer2:layer3\n"); },
         "a pair is student_tap:teacher_tap, got 'layer1:layer2:layer3'"},
        {[&] { read("objectives = ce:1\npairs = layer1:\n"); }, "with both taps named, got 'layer1:'"},
        {[&] { read("objectives = ce:1\nteacher_cache = disk\n"); },
         "distill.teacher_cache must be one of off, memory, file; got 'disk'"},
        {[&] { read("objectives = ce:1\nteacher_cache_limit_gib = 0\n"); },
         "distill.teacher_cache_limit_gib"},
        {[&] { read("objectives = ce:1\n[kd]\npairs = layer1\n"); }, "unknown key 'pairs' in [kd]"},
        {[&] { read("objectives = ce:1\n[data]\nbatch_transform = mixup:alpha=1\n"); },
         "data.batch_transform = 'mixup:alpha=1' is not supported in a distillation run"},
        {[&] { read("objectives = ce:1\n[optim]\nlabel_smoothing = 0.1\n"); },
         "set [ce] label_smoothing instead"},
        {[] {
             Config c = distill_config_schema();
             c.parse(run_sections(kStudent, 1) + "[distill]\nobjectives = ce:1\n", "distill.cfg");
             read_distill_config(c);
         },
         "distill.teacher is required"},
    };
    for (const auto& [f, message] : cases) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(f(), doctest::Contains(message.c_str()), Error);
    }
    CHECK_THROWS_WITH_AS(resolve_teacher_weights("/nonexistent/w.safetensors"),
                         doctest::Contains("no weights file or run directory at /nonexistent/w.safetensors"), Error);
    TempDir dir;
    CHECK_THROWS_WITH_AS(resolve_teacher_weights(dir.path.string()),
                         doctest::Contains("has no best.safetensors"), Error);
    write_file(dir / "best.safetensors", "");
    CHECK(resolve_teacher_weights(dir.path.string()) == dir / "best.safetensors");
}

TEST_CASE("distill: default pairs by model family, and the BatchNorm before a pre-ReLU tap") {
    auto pairs_of = [](const std::string& student, const std::string& teacher) {
        std::string text;
        for (const TapPair& p : default_pairs(*create_model(student), *create_model(teacher)))
            text += p.student + ":" + p.teacher + " ";
        return text;
    };
    CHECK(pairs_of("resnet8:num_classes=4", "resnet14:num_classes=4") ==
          "layer1:layer1 layer2:layer2 layer3:layer3 ");
    CHECK(pairs_of("resnet8:num_classes=4", "mobilenet_v2:num_classes=4,width_mult=0.25") ==
          "layer1:layer1 layer2:layer2 layer3:layer3 ");
    const std::string vit = "vit_tiny_patch16_224:img_size=16,patch_size=8,embed_dim=16,num_heads=2,num_classes=4";
    CHECK(pairs_of(vit + ",depth=2", vit + ",depth=5") == "tokens.0:tokens.2 tokens.1:tokens.4 ");
    CHECK(pairs_of(vit + ",depth=3", vit + ",depth=3") == "tokens.0:tokens.0 tokens.1:tokens.1 tokens.2:tokens.2 ");
    CHECK_THROWS_WITH_AS(pairs_of(vit + ",depth=2", "resnet8:num_classes=4"),
                         doctest::Contains("no default feature pairs for student vit_tiny_patch16_224 and teacher resnet8"),
                         Error);

    // ResNets: the last block's residual-branch BatchNorm (bn3 in a Bottleneck); WRNs: the
    // BatchNorm that opens the next stage, or the final one.
    const NamedTensors resnet = create_model("resnet8:num_classes=4")->state_dict();
    CHECK(batch_norm_before_tap(resnet, "layer2.pre") == "layer2.0.bn2");
    CHECK(batch_norm_before_tap(create_model("resnet14:num_classes=4")->state_dict(), "layer3.pre") ==
          "layer3.1.bn2");
    const NamedTensors bottleneck = {{"layer1.0.bn3.weight", Tensor()}, {"layer1.2.bn2.weight", Tensor()},
                                     {"layer1.2.bn3.weight", Tensor()}, {"layer1.10.bn3.weight", Tensor()}};
    CHECK(batch_norm_before_tap(bottleneck, "layer1.pre") == "layer1.10.bn3");
    const NamedTensors wrn = create_model("wrn_16_1:num_classes=4")->state_dict();
    CHECK(batch_norm_before_tap(wrn, "layer1.pre") == "block2.layer.0.bn1");
    CHECK(batch_norm_before_tap(wrn, "layer3.pre") == "bn1");
    CHECK(batch_norm_before_tap(resnet, "layer2") == "");
    CHECK(batch_norm_before_tap(resnet, "layer7.pre") == "");
    CHECK(batch_norm_before_tap(resnet, "feature_map") == "");
}

TEST_CASE("distill: objectives with their own default taps (fitnet layer2, rkd pre_logits, ofd layerN.pre)") {
    TempDir dir;
    const std::string weights = random_teacher(dir);
    DistillRun run(distill_config(distill_text(weights, "objectives = ce:1, fitnet:1, rkd:1, ofd:0.001, at:1\n")));
    std::map<std::string, std::string> pairs;
    for (const Distiller::Slot& slot : run.distiller->slots()) {
        std::string list;
        for (const TapPair& p : slot.pairs) list += p.name() + " ";
        pairs[slot.term.name] = list;
    }
    CHECK(pairs.at("ce") == "");
    CHECK(pairs.at("fitnet") == "layer2 ");
    CHECK(pairs.at("rkd") == "pre_logits ");
    CHECK(pairs.at("ofd") == "layer1.pre layer2.pre layer3.pre ");
    CHECK(pairs.at("at") == "layer1 layer2 layer3 ");
}

TEST_CASE("distill: the teacher is loaded strictly and frozen, OFD's margins come from its BatchNorm") {
    TempDir dir;
    const std::string weights = random_teacher(dir);
    DistillRun run(distill_config(distill_text(
        weights, "objectives = ce:1, ofd:0.001, fitnet:1\n[ofd]\npairs = layer1.pre, layer3.pre\n"
                 "[fitnet]\npairs = layer2\n")));
    // Frozen, in eval mode, and its weights are the file's.
    CHECK_FALSE(run.teacher->is_training());
    const auto saved = load_safetensors(weights);
    for (const auto& [name, t] : run.teacher->state_dict()) {
        CHECK_MESSAGE(same_bits(t, saved.at(name)), name);
        CHECK_FALSE(t.requires_grad());
    }
    // The optimizer holds the student's and the connectors' parameters, never the teacher's.
    const TrainerAddons addons = run.distiller->addons();
    CHECK(addons.term_names == std::vector<std::string>{"ce", "ofd", "fitnet"});
    CHECK(addons.pre_stage_epochs == 0);
    const std::int64_t connectors = static_cast<std::int64_t>(addons.objectives->parameters().size());
    CHECK(connectors > 0);
    CHECK(run.trainer->optimizer().num_params() ==
          static_cast<std::int64_t>(run.student->parameters().size()) + connectors);

    // OFD's margin of pair i is computed from the BatchNorm before teacher tap i.
    std::map<std::string, Tensor> teacher_state;
    for (auto& [name, t] : run.teacher->state_dict()) teacher_state[name] = t;
    std::map<std::string, Tensor> objectives;
    for (auto& [name, t] : addons.objectives->state_dict()) objectives[name] = t;
    const char* bns[] = {"layer1.1.bn2", "layer3.1.bn2"};
    for (int i = 0; i < 2; ++i) {
        const Tensor expected = OverhaulDistillation::margins_from_batch_norm(
            teacher_state.at(std::string(bns[i]) + ".weight"), teacher_state.at(std::string(bns[i]) + ".bias"));
        const Tensor margin = objectives.at("ofd.margin." + std::to_string(i));
        CHECK(margin.shape() == Shape{1, expected.numel(), 1, 1});
        CHECK(retort::testing::max_abs_diff(margin.reshape({-1}), expected) == 0);
    }

    // Teachers that do not fit are refused, saying why.
    auto build = [&](const std::string& text) { DistillRun r(distill_config(text)); };
    std::string wrong_classes = distill_text(weights, "objectives = kd:1\n");
    wrong_classes.replace(wrong_classes.find("teacher = resnet14:in_chans=1,num_classes=4"),
                          43, "teacher = resnet14:in_chans=1,num_classes=5");
    CHECK_THROWS_WITH_AS(build(wrong_classes),
                         doctest::Contains("the teacher resnet14:in_chans=1,num_classes=5 has 5 classes but the "
                                           "student resnet8:in_chans=1,num_classes=4 has 4"),
                         Error);
    std::string wrong_depth = distill_text(weights, "objectives = kd:1\n");
    wrong_depth.replace(wrong_depth.find("teacher = resnet14"), 18, "teacher = resnet20");
    CHECK_THROWS_WITH_AS(build(wrong_depth),
                         doctest::Contains("do not fit the teacher resnet20:in_chans=1,num_classes=4 (the file "
                                           "was saved for model resnet14:in_chans=1,num_classes=4): load_state_dict"),
                         Error);
    CHECK_THROWS_WITH_AS(build(distill_text(weights, "objectives = ce:1, ofd:1\npairs = layer1\n")),
                         doctest::Contains("objective ofd: the teacher tap 'layer1' (distill.pairs) is not a "
                                           "pre-ReLU stage output"),
                         Error);
    CHECK_THROWS_WITH_AS(build(distill_text(weights, "objectives = ce:1, fitnet:1\npairs = layer1, layer2\n")),
                         doctest::Contains("objective fitnet needs 1 feature pair(s)"), Error);
    CHECK_THROWS_WITH_AS(build(distill_text(weights, "objectives = ce:1, at:1\n[at]\npairs = layer2:layer9\n")),
                         doctest::Contains("at.pairs (objective at): unknown tap 'layer9' for model resnet14; "
                                           "valid taps: stem, layer1, layer2, layer3, layer1.pre"),
                         Error);
}

TEST_CASE("cli: retort distill refuses bad configs, teachers and pairs before a run directory exists") {
    TempDir dir;
    const std::string weights = random_teacher(dir);
    fs::create_directories(dir / "untrained_run");
    const std::string out = dir / "run";
    auto distill_with = [&](const std::string& weights_path, const std::string& extra,
                            const std::string& set = "") {
        write_file(dir / "bad.cfg", distill_text(weights_path, extra));
        return run_retort("distill --config " + (dir / "bad.cfg") + " --out " + out + " " + set);
    };
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {distill_with(weights, "objectives = ce:0.5, kdd:0.5\n"),
         "bad.cfg:18: distill.objectives = 'ce:0.5, kdd:0.5': unknown objective 'kdd'; valid objectives: kd"},
        {distill_with(weights, "objectives = ce:0.5, kd:-2\n"), "the weight of kd must be a finite number >= 0, got '-2'"},
        {distill_with(dir / "missing.safetensors", "objectives = kd:1\n"),
         "distill.teacher_weights: no weights file or run directory at " + (dir / "missing.safetensors")},
        {distill_with(dir / "untrained_run", "objectives = kd:1\n"), "has no best.safetensors"},
        {distill_with(weights, "objectives = kd:1\n", "--set distill.teacher=resnet14:in_chans=1,num_classes=5"),
         "has 5 classes but the student resnet8:in_chans=1,num_classes=4 has 4"},
        {distill_with(weights, "objectives = kd:1, at:1\npairs = layer1:layer4\n"),
         "distill.pairs (objective at): unknown tap 'layer4' for model resnet14; valid taps: stem, layer1"},
        {distill_with(weights, "objectives = kd:1\n", "--set distill.teacher=resnet9"),
         "distill.teacher: unknown model 'resnet9'"},
        {distill_with(weights, "objectives = kd:1\n", "--seeds 3"), "--seeds needs at least two seeds"},
        {run_retort("distill --resume " + (dir / "nowhere")), "distill: no run directory"},
        {run_retort("distill"), "distill: give --config FILE to start a run, or --resume RUN_DIR"},
    };
    retort::testing::check_refused(cases, out);
    CliRun help = run_retort("distill --help");
    CHECK(help.status == 0);
    CHECK(help.output.find("objectives (string") != std::string::npos);
    CHECK(help.output.find("--seeds") != std::string::npos);
}

TEST_CASE("cli: retort distill with ce, kd, at and fitnet: the loss falls, columns, best / last, eval") {
    TempDir dir;
    const std::string teacher = train_teacher(dir);
    write_file(dir / "kd.cfg",
               distill_text(teacher, "objectives = ce:0.5, kd:0.5, at:100, fitnet:0.5\n[fitnet]\npairs = layer2\n", 3));
    const std::string out = dir / "run";
    CliRun r = run_retort("distill --config " + (dir / "kd.cfg") + " --out " + out);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CHECK(r.output.find("teacher resnet14:in_chans=1,num_classes=4: ") != std::string::npos);
    CHECK(r.output.find("from " + teacher + "/best.safetensors") != std::string::npos);
    CHECK(r.output.find("at x 100 on layer1:layer1, layer2:layer2, layer3:layer3 (the default pairs)") !=
          std::string::npos);
    CHECK(r.output.find("fitnet x 0.5 on layer2:layer2 (fitnet.pairs)") != std::string::npos);
    CHECK(r.output.find("epoch 3/3: train loss ") != std::string::npos);
    CHECK(r.output.find("done: 3 epochs") != std::string::npos);
    for (const char* f : {"config", "metrics.csv", "best.safetensors", "last.safetensors"})
        CHECK_MESSAGE(fs::exists(out + "/" + f), f);

    const std::string csv = read_text(out + "/metrics.csv");
    CHECK(csv.starts_with("epoch,step,split,loss,top1,top5,lr,seconds,loss.ce,loss.kd,loss.at,loss.fitnet\n"));
    const MetricsTable t = read_metrics_table(out + "/metrics.csv");
    const std::vector<double> loss = column_of(t, "train", "loss");
    REQUIRE(loss.size() == 9);
    CHECK(loss.back() < loss.front());
    // The total is the weighted sum of the objectives' own values (each averaged the same way,
    // written with 6 decimals: the weight 100 makes the sum agree to about 1e-4).
    const std::vector<double> ce = column_of(t, "train", "loss.ce"), kd = column_of(t, "train", "loss.kd"),
                              at = column_of(t, "train", "loss.at"), hint = column_of(t, "train", "loss.fitnet");
    for (std::size_t i = 0; i < loss.size(); ++i)
        CHECK(loss[i] == doctest::Approx(0.5 * ce[i] + 0.5 * kd[i] + 100 * at[i] + 0.5 * hint[i]).epsilon(1e-4));
    for (double v : column_of(t, "val", "loss.kd")) CHECK(std::isnan(v));  // training-only columns
    CHECK(column_of(t, "test", "top1").size() == 3);

    // best holds the student alone (loads strictly); last adds the connectors and the optimizer.
    const auto best = load_safetensors(out + "/best.safetensors");
    create_model(kStudent)->load_state_dict(best);
    const Checkpoint last = read_checkpoint(out + "/last.safetensors");
    CHECK(last.progress.epoch == 3);
    CHECK(last.objectives.count("fitnet.regressor.conv.weight") == 1);
    CHECK(last.model.size() == best.size());

    const CliRun e = run_retort("eval --model " + std::string(kStudent) + " --weights " + out +
                                "/best.safetensors --data " + kData);
    REQUIRE_MESSAGE(e.status == 0, e.output);
    CHECK(e.output.find("32 images") != std::string::npos);
    const CliRun plot = run_retort("plot " + out + " -o " + (dir / "curves.png"));
#ifdef RETORT_HAVE_STB
    CHECK_MESSAGE(plot.status == 0, plot.output);
#else
    CHECK(plot.output.find("built without stb") != std::string::npos);  // PNG needs stb
#endif
    // A distillation run is not a training run's to resume.
    const CliRun train = run_retort("train --resume " + out);
    CHECK(train.status != 0);
    CHECK(train.output.find("unknown section [distill]") != std::string::npos);
}

TEST_CASE("distill: stopped and resumed (in and after the pre-training stage), the same bits as straight") {
    // FitNet's two-stage recipe (a pre-training stage of 1 epoch, then a fresh optimizer), CRD's
    // memory bank and random negatives, KD, under a cosine schedule with warm-up: everything a
    // run draws or keeps must be in the checkpoint.
    TempDir dir;
    const std::string weights = random_teacher(dir);
    const Config config = distill_config(
        distill_text(weights,
                     "objectives = ce:1, kd:1, fitnet:1, crd:0.8\n[fitnet]\npairs = layer2\n"
                     "stage1_epochs = 1\n[crd]\npairs = pre_logits\nnce_k = 16\nfeat_dim = 8\n"
                     "[schedule]\nwarmup_epochs = 0.5\n",
                     2));
    {
        DistillRun straight(config);
        CHECK(straight.trainer->total_epochs() == 3);
        straight.trainer->start(dir / "straight", config);
        straight.trainer->run();
    }
    for (int stop : {1, 2}) {
        CAPTURE(stop);
        const std::string run_dir = dir / ("resumed" + std::to_string(stop));
        {
            DistillRun first(config);
            first.trainer->start(run_dir, config);
            first.trainer->run(stop);
        }
        randn({1000});  // the generator moves on, as in a new process; resume must put it back
        DistillRun resumed(config);
        resumed.trainer->resume(run_dir);
        CHECK(resumed.trainer->progress().epoch == stop);
        resumed.trainer->run();

        const Checkpoint a = read_checkpoint(dir / "straight/last.safetensors");
        const Checkpoint b = read_checkpoint(run_dir + "/last.safetensors");
        CHECK(same_tensors(a.model, b.model));
        CHECK(same_tensors(a.objectives, b.objectives));
        CHECK(same_tensors(a.optimizer, b.optimizer));
        CHECK(a.rng_offset == b.rng_offset);
        CHECK(without_seconds(dir / "straight/metrics.csv") == without_seconds(run_dir + "/metrics.csv"));
        CHECK(read_text(dir / "straight/best.safetensors") == read_text(run_dir + "/best.safetensors"));
    }
    // The pre-training stage: its rows say so, only fitnet's column has values, it is never best.
    const std::string csv = read_text(dir / "straight/metrics.csv");
    CHECK(csv.starts_with("epoch,step,split,loss,top1,top5,lr,seconds,stage,loss.ce,loss.kd,loss.fitnet,loss.crd\n"));
    CHECK(csv.find("0.4000,2,train,") != std::string::npos);
    const MetricsTable t = read_metrics_table(dir / "straight/metrics.csv");
    const std::vector<double> ce = column_of(t, "train", "loss.ce"), hint = column_of(t, "train", "loss.fitnet");
    CHECK(std::isnan(ce[0]));
    CHECK(hint[0] > 0);
    CHECK(ce.back() > 0);
    CHECK(hint.back() == 0);  // the two-stage FitNet gives nothing in the main stage
    CHECK(csv.find(",pre,") != std::string::npos);
    CHECK(read_checkpoint(dir / "straight/last.safetensors").progress.best_epoch >= 2);
}

TEST_CASE("cli: retort distill --resume with run.epochs, and --seeds with its summary") {
    TempDir dir;
    const std::string teacher = train_teacher(dir);
    // A constant schedule: a run of 1 epoch extended to 2 computes what a run of 2 epochs does.
    write_file(dir / "kd.cfg", distill_text(teacher, "objectives = ce:0.5, kd:0.5\n[schedule]\nname = constant\n"));
    const std::string cfg = dir / "kd.cfg";
    REQUIRE(run_retort("distill --config " + cfg + " --out " + (dir / "straight")).status == 0);
    REQUIRE(run_retort("distill --config " + cfg + " --out " + (dir / "resumed") + " --set run.epochs=1").status == 0);
    const CliRun more = run_retort("distill --resume " + (dir / "resumed") + " --set run.epochs=2");
    REQUIRE_MESSAGE(more.status == 0, more.output);
    CHECK(more.output.find("resuming " + (dir / "resumed") + " after epoch 1") != std::string::npos);
    CHECK(without_seconds(dir / "straight/metrics.csv") == without_seconds(dir / "resumed/metrics.csv"));
    CHECK(read_text(dir / "straight/best.safetensors") == read_text(dir / "resumed/best.safetensors"));
    const CliRun changed = run_retort("distill --resume " + (dir / "resumed") + " --set distill.objectives=kd:1");
    CHECK(changed.status != 0);
    CHECK(changed.output.find("distill.objectives cannot change when resuming") != std::string::npos);
    const CliRun done = run_retort("distill --resume " + (dir / "resumed"));
    CHECK(done.output.find("has already done 2 of its 2 epochs") != std::string::npos);

    const std::string seeds = dir / "seeds";
    const CliRun s = run_retort("distill --config " + cfg + " --out " + seeds + " --seeds 1,2 --set run.epochs=1");
    REQUIRE_MESSAGE(s.status == 0, s.output);
    for (const char* f : {"seed-1/best.safetensors", "seed-2/last.safetensors", "summary.json", "summary.md"})
        CHECK_MESSAGE(fs::exists(seeds + "/" + f), f);
    CHECK(read_text(seeds + "/seed-2/config").find("seed = 2") != std::string::npos);
    const json::Value summary = json::parse(read_text(seeds + "/summary.json"));
    const json::Array& runs = summary.find("runs")->as_array();
    REQUIRE(runs.size() == 2);
    double sum = 0, squares = 0;
    std::vector<double> last;
    for (const json::Value& run : runs) last.push_back(run.find("last_test_top1")->as_double());
    for (double v : last) sum += v;
    const double mean = sum / 2;
    for (double v : last) squares += (v - mean) * (v - mean);
    const json::Value* stats = summary.find("last_test_top1");
    CHECK(stats->find("mean")->as_double() == doctest::Approx(mean));
    CHECK(stats->find("std")->as_double() == doctest::Approx(std::sqrt(squares)));  // n - 1 = 1
    CHECK(runs[0].find("seed")->as_int() == 1);
    CHECK(runs[0].find("best_epoch")->as_int() == 1);
    CHECK(runs[0].find("best_test_top1")->as_double() == doctest::Approx(last[0]));  // one epoch
    CHECK(read_text(seeds + "/summary.md").find("| seed | best epoch |") != std::string::npos);
}
