// tests/test_objectives_vit.cpp: the ViT objectives (deit_hard, deit_soft, attn, manifold):
// values and gradients against PyTorch fixtures written from the reference code
// (tests/fixtures/gen_objectives_vit.py), f64 gradient checks through the student inputs (none of
// them has connectors), the random sampling of manifold, the error paths, `retort objective` with
// manifold's given sample, and `retort distill` with a DeiT student and a ViT teacher.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "distill/checkpoint.h"
#include "distill/objective.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tests/cli_run.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

using namespace retort;
using retort::testing::CliRun;
using retort::testing::Fixture;
using retort::testing::gradcheck;
using retort::testing::run_retort;
using retort::testing::TempDir;

namespace {

const Fixture& fixture() {
    static const Fixture f("objectives_vit.txt");
    return f;
}

// A config with the objective's keys declared and the given "key=value" settings applied.
Config config_for(const std::string& name, const std::map<std::string, std::string>& settings = {}) {
    Config config;
    find_objective(name).declare(config);
    for (const auto& [key, value] : settings) config.set(name + "." + key, value, "test");
    return config;
}

// Builds an objective for pairs shaped like `in`'s.
std::shared_ptr<Objective> build(const std::string& name, const ObjectiveInputs& in,
                                 const std::map<std::string, std::string>& settings = {}) {
    ObjectiveSetup setup;
    for (const FeaturePair& p : in.features)
        setup.pairs.push_back({p.name, p.student.shape(), p.teacher.shape()});
    setup.seed = 5;
    return create_objective(name, config_for(name, settings), setup);
}

ObjectiveInputs pairs_of(const std::vector<FeaturePair>& pairs) {
    ObjectiveInputs in;
    in.features = pairs;
    return in;
}

// max |got - want| <= tol * max(max |want|, tiny)
void check_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    REQUIRE_MESSAGE(got.defined(), what, " is undefined");
    REQUIRE_MESSAGE(got.shape() == want.shape(), what, ": shape ", shape_str(got.shape()), " vs ",
                    shape_str(want.shape()));
    std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
    double scale = 1e-30, diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, std::abs(b[i]));
        diff = std::max(diff, std::abs(a[i] - b[i]));
    }
    CHECK_MESSAGE(diff <= tol * scale, what, ": max diff ", diff, " vs scale ", scale);
}

// A float32 leaf from the fixture that wants a gradient.
Tensor student_leaf(const std::string& name) {
    Tensor t = fixture().f32(name);
    t.set_requires_grad(true);
    return t;
}

// Evaluates one fixture case in float32: its pairs are "<case>.<pair>.student" / ".teacher" (or
// "<case>.student" / ".teacher" for one unnamed pair); checks the loss and every student grad.
void check_fixture_case(const std::string& method, const std::string& key,
                        const std::vector<std::string>& pair_names,
                        const std::map<std::string, std::string>& settings = {},
                        const std::map<std::string, Tensor>& extras = {}) {
    CAPTURE(key);
    ObjectiveInputs in;
    for (const std::string& pair : pair_names) {
        const std::string prefix = key + (pair.empty() ? "" : "." + pair);
        in.features.push_back({pair.empty() ? "feat" : pair, student_leaf(prefix + ".student"),
                               fixture().f32(prefix + ".teacher")});
    }
    in.extras = extras;
    auto objective = build(method, in, settings);
    CHECK(objective->parameters().empty());
    Tensor loss = objective->forward(in);
    REQUIRE(loss.shape() == Shape{});
    check_close(loss, fixture()[key + ".loss"], 1e-5, key + ".loss");
    loss.backward();
    for (std::size_t i = 0; i < pair_names.size(); ++i) {
        const std::string& pair = pair_names[i];
        const std::string name = key + ".grad." + (pair.empty() ? "" : pair + ".") + "student";
        check_close(in.features[i].student.grad(), fixture()[name], 1e-4, name);
    }
}

// f64 gradient check of an objective through the student side of every pair.
// `student_of` maps a leaf to the tensor the objective reads (e.g. a softmax for attention maps).
bool gradcheck_objective(const std::string& method, std::vector<Tensor> leaves,
                         const std::vector<Tensor>& teachers,
                         const std::map<std::string, std::string>& settings = {},
                         const std::map<std::string, Tensor>& extras = {},
                         const std::function<Tensor(const Tensor&)>& student_of =
                             [](const Tensor& x) { return x; }) {
    auto make_inputs = [&](const std::vector<Tensor>& xs) {
        ObjectiveInputs in;
        for (std::size_t i = 0; i < xs.size(); ++i)
            in.features.push_back({"pair" + std::to_string(i), student_of(xs[i]), teachers[i]});
        in.extras = extras;
        return in;
    };
    auto objective = build(method, make_inputs(leaves), settings);
    CHECK(objective->parameters().empty());  // nothing but the student inputs to check
    return gradcheck([&](const std::vector<Tensor>& xs) { return objective->forward(make_inputs(xs)); },
                     leaves, 1e-6, 1e-5);
}

Tensor f64_leaf(const Shape& shape, std::uint64_t seed) { return retort::testing::leaf(shape, seed); }
Tensor f64_const(const Shape& shape, std::uint64_t seed, double scale = 1.0) {
    Generator gen(seed);
    return randn(shape, DType::f64, &gen) * scale;
}
// Attention probabilities (B, H, N, N): softmax over the keys of random scores.
Tensor f64_maps(const Shape& shape, std::uint64_t seed) { return softmax(f64_const(shape, seed, 2.0), 3); }

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

// ------------------------------------------------------------------------------------ the rows

TEST_CASE("objectives vit: the table rows, their default taps and keys") {
    Config config;
    declare_objective_keys(config);
    for (const char* name : {"deit_hard", "deit_soft", "attn", "manifold"}) {
        CAPTURE(name);
        const ObjectiveEntry& e = find_objective(name);
        CHECK(!e.paper.empty());
        CHECK(!e.reference.empty());
        CHECK(!e.taps.empty());
        CHECK(!e.defaults.empty());
        CHECK(!e.uses_teacher_logits);  // deit reads the teacher's logits through its pair
        CHECK(!e.uses_labels);
        CHECK(e.min_pairs == 1);
    }
    CHECK(find_objective("deit_hard").default_taps == "dist_logits:logits");
    CHECK(find_objective("deit_soft").default_taps == "dist_logits:logits");
    CHECK(find_objective("deit_hard").max_pairs == 1);
    CHECK(find_objective("attn").max_pairs == -1);
    CHECK(find_objective("manifold").max_pairs == -1);
    CHECK(find_objective("manifold").default_taps == "");
    CHECK(config.get_double("deit_soft.tau") == 1.0);
    CHECK(config.get_double("manifold.w_sample") == 0.1);
    CHECK(config.get_double("manifold.w_patch") == 4.0);
    CHECK(config.get_double("manifold.w_rand") == 0.2);
    CHECK(config.get_int("manifold.K") == 192);
}

// ----------------------------------------------------------------------------- deit_hard / soft

TEST_CASE("objective deit_hard / deit_soft: value and gradient match the PyTorch reference") {
    check_fixture_case("deit_hard", "deit_hard", {""});
    check_fixture_case("deit_soft", "deit_soft", {""});
    check_fixture_case("deit_soft", "deit_soft_t3", {""}, {{"tau", "3"}});
}

TEST_CASE("objective deit_hard / deit_soft: f64 gradient check on odd sizes, one sample") {
    for (const Shape& shape : {Shape{1, 3}, Shape{5, 7}, Shape{2, 1}, Shape{6, 4}}) {
        CAPTURE(shape_str(shape));
        const Tensor teacher = f64_const(shape, 3, 3.0);
        CHECK(gradcheck_objective("deit_hard", {f64_leaf(shape, 1)}, {teacher}));
        CHECK(gradcheck_objective("deit_soft", {f64_leaf(shape, 2)}, {teacher}, {{"tau", "2.5"}}));
    }
}

TEST_CASE("objective deit_soft: DeiT's sum over B K logits, so K times below kd, deit_hard is CE "
          "on the teacher's top class") {
    const Tensor s = f64_const({4, 6}, 8, 2.0), t = f64_const({4, 6}, 9, 2.0);
    ObjectiveInputs in = pairs_of({{"dist_logits:logits", s, t}});
    in.student_logits = s;
    in.teacher_logits = t;
    Config kd_config = config_for("kd", {{"T", "2"}});
    ObjectiveSetup none;
    const double kd = create_objective("kd", kd_config, none)->forward(in).item();
    CHECK(build("deit_soft", in, {{"tau", "2"}})->forward(in).item() == doctest::Approx(kd / 6));
    const double hard = build("deit_hard", in)->forward(in).item();
    CHECK(hard == doctest::Approx(cross_entropy(s, argmax(t, 1)).item()));
}

TEST_CASE("objective deit: refuses pair counts, batches, non-logit pairs and a bad tau") {
    const Tensor s = f64_const({4, 5}, 1), t = f64_const({4, 5}, 2);
    ObjectiveSetup none;
    CHECK_THROWS_WITH_AS(create_objective("deit_hard", config_for("deit_hard"), none),
                         doctest::Contains("objective deit_hard needs 1 feature pair(s), got 0"), Error);
    auto objective = build("deit_soft", pairs_of({{"dist_logits:logits", s, t}}));
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"a", s, t}, {"b", s, t}})),
                         doctest::Contains("deit_soft: built for 1 feature pair(s), got 2"), Error);
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"dist_logits:logits", s, f64_const({3, 5}, 2)}})),
                         doctest::Contains("deit_soft: pair 'dist_logits:logits' has batch 4 on the "
                                           "student side but 3 on the teacher side"),
                         Error);
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"dist_logits:logits", s, f64_const({4, 6}, 2)}})),
                         doctest::Contains("deit_soft: pair 'dist_logits:logits' must hold logits (B, K) "
                                           "of one shape on both sides"),
                         Error);
    // e.g. distill.pairs = tokens... reaching deit_hard: the message names the usual pair
    CHECK_THROWS_WITH_AS(build("deit_hard", pairs_of({{"tokens.3", f64_const({4, 5, 8}, 1),
                                                       f64_const({4, 5, 8}, 2)}})),
                         doctest::Contains("got student (4, 5, 8) and teacher (4, 5, 8); the usual "
                                           "pair is [deit_hard] pairs = dist_logits:logits"),
                         Error);
    Config config;
    declare_objective_keys(config);
    CHECK_THROWS_WITH_AS(config.apply_override("deit_soft.tau=0"),
                         doctest::Contains("deit_soft.tau must be in (0, 100], got 0"), Error);
    // deit_hard has no hyperparameters at all (no alpha: the weights of `objectives =` are it)
    CHECK_THROWS_WITH_AS(config.apply_override("deit_hard.alpha=0.5"),
                         doctest::Contains("unknown section [deit_hard]"), Error);
}

// ------------------------------------------------------------------------------------------ attn

TEST_CASE("objective attn: value and gradient match the PyTorch reference") {
    check_fixture_case("attn", "attn_same", {""});
    check_fixture_case("attn", "attn_heads", {"a", "b"});   // grouped heads; heads to one map
    check_fixture_case("attn", "attn_tokens", {""});        // 2 + 2x2 tokens against 1 + 2x2
}

TEST_CASE("objective attn: f64 gradient check through the student's maps (heads and tokens matched)") {
    // equal maps; teacher heads averaged in groups (B = 1); student heads averaged and prefix
    // tokens cut (6 = 2 + 2x2 against 5 = 1 + 2x2); 3 and 2 heads, both to one map
    const std::vector<Shape> students = {{2, 2, 5, 5}, {2, 3, 5, 5}, {2, 4, 6, 6}, {2, 3, 5, 5}};
    const std::vector<Tensor> teachers = {f64_maps({2, 2, 5, 5}, 11), f64_maps({2, 6, 5, 5}, 12),
                                          f64_maps({2, 2, 5, 5}, 13), f64_maps({2, 2, 5, 5}, 14)};
    std::vector<Tensor> leaves;
    for (std::size_t i = 0; i < students.size(); ++i) leaves.push_back(f64_leaf(students[i], 20 + i));
    CHECK(gradcheck_objective("attn", leaves, teachers, {}, {},
                              [](const Tensor& scores) { return softmax(scores, 3); }));
    const Tensor one = f64_leaf({1, 3, 5, 5}, 30);
    CHECK(gradcheck_objective("attn", {one}, {f64_maps({1, 6, 5, 5}, 31)}, {}, {},
                              [](const Tensor& scores) { return softmax(scores, 3); }));
}

TEST_CASE("objective attn: the same maps cost nothing, the loss is the mean over pairs") {
    const Tensor a = f64_maps({2, 3, 5, 5}, 1), b = f64_maps({2, 3, 5, 5}, 2);
    CHECK(build("attn", pairs_of({{"x", a, a}}))->forward(pairs_of({{"x", a, a}})).item() ==
          doctest::Approx(0.0).epsilon(1e-12));
    const double ab = build("attn", pairs_of({{"x", a, b}}))->forward(pairs_of({{"x", a, b}})).item();
    ObjectiveInputs both = pairs_of({{"x", a, b}, {"y", a, a}});
    CHECK(build("attn", both)->forward(both).item() == doctest::Approx(ab / 2));
}

TEST_CASE("objective attn: refuses no pairs, non-maps, non-probabilities, other grids and batches") {
    const Tensor maps = f64_maps({2, 2, 5, 5}, 1);
    ObjectiveSetup none;
    CHECK_THROWS_WITH_AS(create_objective("attn", config_for("attn"), none),
                         doctest::Contains("objective attn needs at least 1 feature pair(s), got 0"), Error);
    // the family default pairs ViT tokens: the message says which taps to pair
    CHECK_THROWS_WITH_AS(build("attn", pairs_of({{"tokens.1", f64_const({2, 5, 8}, 1), f64_const({2, 5, 8}, 2)}})),
                         doctest::Contains("attn: pair 'tokens.1': the student tensor (2, 5, 8) is not an "
                                           "attention map (B, heads, N, N); pair the attn.L taps of two "
                                           "ViTs, e.g. [attn] pairs = attn.5:attn.11"),
                         Error);
    auto objective = build("attn", pairs_of({{"x", maps, maps}}));
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"x", f64_const({2, 2, 5, 5}, 3), maps}})),
                         doctest::Contains("attn: pair 'x': the student maps are not attention probabilities"),
                         Error);
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"x", maps, maps * 2.0}})),
                         doctest::Contains("attn: pair 'x': the teacher maps are not attention probabilities"),
                         Error);
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"x", maps, f64_maps({3, 2, 5, 5}, 4)}})),
                         doctest::Contains("attn: pair 'x' has batch 2 on the student side but 3"), Error);
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"x", maps, maps}, {"y", maps, maps}})),
                         doctest::Contains("attn: built for 1 feature pair(s), got 2"), Error);
    // 1 + 2x2 tokens against 1 + 3x3: no common patch grid
    CHECK_THROWS_WITH_AS(build("attn", pairs_of({{"x", maps, f64_maps({2, 2, 10, 10}, 5)}})),
                         doctest::Contains("attn: pair 'x': the student's maps cover 5 tokens (4 patches) "
                                           "but the teacher's 10 (9 patches)"),
                         Error);
}

// -------------------------------------------------------------------------------------- manifold

TEST_CASE("objective manifold: value and gradient match the PyTorch reference (given sample)") {
    check_fixture_case("manifold", "manifold", {"a", "b"}, {{"K", "13"}},
                       {{"manifold.sample", fixture()["manifold.sample"]}});
    check_fixture_case("manifold", "manifold_map", {""},
                       {{"w_sample", "0.5"}, {"w_patch", "2"}, {"w_rand", "1.5"}},
                       {{"manifold.sample", fixture()["manifold_map.sample"]}});
}

TEST_CASE("objective manifold: f64 gradient check through the student tokens") {
    // student drops 1 prefix token; a map teacher (9 tokens) against 9 student tokens; the
    // teacher drops its 1 prefix token; all with B N = 27 rows for the K = 7 sampled
    const std::vector<Tensor> leaves = {f64_leaf({3, 10, 4}, 1), f64_leaf({3, 9, 3}, 2),
                                        f64_leaf({3, 9, 2}, 3)};
    const std::vector<Tensor> teachers = {f64_const({3, 9, 5}, 4), f64_const({3, 6, 3, 3}, 5),
                                          f64_const({3, 10, 4}, 6)};
    Generator gen(7);
    std::vector<Tensor> rows;
    for (int p = 0; p < 3; ++p) rows.push_back(narrow(randperm(27, &gen), 0, 0, 7));
    CHECK(gradcheck_objective("manifold", leaves, teachers,
                              {{"K", "7"}, {"w_sample", "0.7"}, {"w_patch", "1.3"}, {"w_rand", "2"}},
                              {{"manifold.sample", stack(rows, 0)}}));
    // B = 1: the inter-image relation is one entry per position, always 1 on both sides
    CHECK(gradcheck_objective("manifold", {f64_leaf({1, 5, 3}, 8)}, {f64_const({1, 5, 4}, 9)},
                              {{"K", "5"}}, {{"manifold.sample", from_vector<std::int64_t>({4, 0, 2, 1, 3}, {1, 5})}}));
}

TEST_CASE("objective manifold: the sample is drawn from the default generator, as given through extras") {
    const Tensor s = f64_const({4, 5, 3}, 1), t = f64_const({4, 5, 6}, 2);
    ObjectiveInputs in = pairs_of({{"tokens.0", s, t}});
    auto objective = build("manifold", in, {{"K", "6"}});
    manual_seed(17);
    const double first = objective->forward(in).item();
    manual_seed(17);
    CHECK(objective->forward(in).item() == first);
    manual_seed(17);
    in.extras["manifold.sample"] = narrow(randperm(20), 0, 0, 6).reshape({1, 6});
    CHECK(objective->forward(in).item() == first);
    in.extras["manifold.sample"] = from_vector<std::int64_t>({0, 1, 2, 3, 4, 5}, {1, 6});
    CHECK(objective->forward(in).item() != first);
    // identical tokens on both sides: every relation matches
    ObjectiveInputs same = pairs_of({{"tokens.0", s, s}});
    CHECK(build("manifold", same)->forward(same).item() == doctest::Approx(0.0).epsilon(1e-12));
}

TEST_CASE("objective manifold: refuses other token sets, bad samples, batches and settings") {
    const Tensor s = f64_const({2, 5, 3}, 1), t = f64_const({2, 5, 4}, 2);
    ObjectiveSetup none;
    CHECK_THROWS_WITH_AS(create_objective("manifold", config_for("manifold"), none),
                         doctest::Contains("objective manifold needs at least 1 feature pair(s), got 0"),
                         Error);
    CHECK_THROWS_WITH_AS(build("manifold", pairs_of({{"x", s, f64_const({2, 9, 4}, 2)}})),
                         doctest::Contains("manifold: pair 'x': the student has 5 tokens and the teacher 9; "
                                           "relations need one set of tokens"),
                         Error);
    CHECK_THROWS_WITH_AS(build("manifold", pairs_of({{"pre_logits", f64_const({2, 5}, 1), f64_const({2, 5}, 2)}})),
                         doctest::Contains("manifold: pair 'pre_logits': the student tensor (2, 5) is "
                                           "neither tokens (B, N, C) nor a map (B, C, H, W)"),
                         Error);
    ObjectiveInputs in = pairs_of({{"x", s, t}});
    auto objective = build("manifold", in, {{"K", "4"}});
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"x", s, f64_const({3, 5, 4}, 2)}})),
                         doctest::Contains("manifold: pair 'x' has batch 2 on the student side but 3"), Error);
    CHECK_THROWS_WITH_AS(objective->forward(pairs_of({{"x", s, t}, {"y", s, t}})),
                         doctest::Contains("manifold: built for 1 feature pair(s), got 2"), Error);
    in.extras["manifold.sample"] = from_vector<std::int64_t>({0, 1, 2}, {1, 3});
    CHECK_THROWS_WITH_AS(objective->forward(in),
                         doctest::Contains("manifold: extras[\"manifold.sample\"] must be int64 (1, 4): per "
                                           "pair, min(K, B N) = min(4, 10) token indices; got int64 (1, 3)"),
                         Error);
    in.extras["manifold.sample"] = from_vector<std::int64_t>({0, 1, 10, 3}, {1, 4});
    CHECK_THROWS_WITH_AS(objective->forward(in),
                         doctest::Contains("manifold: extras[\"manifold.sample\"] holds 10 for pair 'x', "
                                           "outside its [0, 10) tokens (B N)"),
                         Error);
    Config config;
    declare_objective_keys(config);
    CHECK_THROWS_WITH_AS(config.apply_override("manifold.K=0"), doctest::Contains("manifold.K must be in [1, "),
                         Error);
    CHECK_THROWS_WITH_AS(config.apply_override("manifold.w_patch=-1"),
                         doctest::Contains("manifold.w_patch must be in [0, 10000], got -1"), Error);
}

// ------------------------------------------------------------------------- through the binary

TEST_CASE("cli: objective manifold writes the loss and the student gradients of the fixture case") {
    TempDir dir;
    std::map<std::string, Tensor> file;
    for (const char* pair : {"a", "b"}) {
        const std::string key = std::string("manifold.") + pair;
        file[std::string("student.feat.") + (pair[0] == 'a' ? "0_a" : "1_b")] = fixture().f32(key + ".student");
        file[std::string("teacher.feat.") + (pair[0] == 'a' ? "0_a" : "1_b")] = fixture().f32(key + ".teacher");
    }
    file["extra.manifold.sample"] = fixture()["manifold.sample"];
    save_safetensors(dir / "in.safetensors", file);
    const CliRun r = run_retort("objective --method manifold --inputs " + (dir / "in.safetensors") +
                                " --output " + (dir / "out.safetensors") + " --set K=13");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    const auto out = load_safetensors(dir / "out.safetensors");
    CHECK(out.size() == 3);
    check_close(out.at("loss"), fixture()["manifold.loss"], 1e-5, "loss");
    check_close(out.at("grad.student.feat.0_a"), fixture()["manifold.grad.a.student"], 1e-4, "grad a");
    check_close(out.at("grad.student.feat.1_b"), fixture()["manifold.grad.b.student"], 1e-4, "grad b");
}

TEST_CASE("cli: retort distill of a DeiT student from a ViT teacher with ce, deit_*, attn, manifold") {
    TempDir dir;
    // 8x8 one-channel images, 2x2 patches of 4 pixels: the student has 2 + 4 tokens, 2 heads and
    // 2 blocks; the teacher 1 + 4 tokens, 4 heads and 3 blocks
    const std::string student = "deit_tiny_distilled_patch16_224:in_chans=1,img_size=8,patch_size=4,"
                                "embed_dim=8,depth=2,num_heads=2,num_classes=4";
    const std::string teacher = "vit_tiny_patch16_224:in_chans=1,img_size=8,patch_size=4,"
                                "embed_dim=12,depth=3,num_heads=4,num_classes=4";
    manual_seed(3);
    save_weights(dir / "teacher.safetensors", *create_model(teacher), {{"model", teacher}});
    const std::string common =
        cat("[model]\nspec = ", student,
            "\n[data]\npath = synthetic:num_classes=4,size=48,test_size=16,channels=1,height=8,width=8"
            "\nval_size = 16\nbatch_size = 16\nworkers = 0\n[optim]\nlr = 0.01\n[run]\nepochs = 1\n"
            "threads = 1\n[distill]\nteacher = ",
            teacher, "\nteacher_weights = ", dir / "teacher.safetensors", "\n");
    write_file(dir / "vit.cfg", common + "objectives = ce:0.5, deit_hard:0.5, deit_soft:0.5, attn:1, "
                                         "manifold:1\n[attn]\npairs = attn.1:attn.2\n");
    const std::string run = dir / "run";
    CliRun r = run_retort("distill --config " + (dir / "vit.cfg") + " --out " + run);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    CAPTURE(r.output);
    CHECK(contains(r.output, "deit_hard x 0.5 on dist_logits:logits (the default pairs of deit_hard)"));
    CHECK(contains(r.output, "attn x 1 on attn.1:attn.2 (attn.pairs)"));
    CHECK(contains(r.output, "manifold x 1 on tokens.0:tokens.1, tokens.1:tokens.2 (the default pairs)"));
    CHECK(read_text(run + "/metrics.csv")
              .starts_with("epoch,step,split,loss,top1,top5,lr,seconds,loss.ce,loss.deit_hard,"
                           "loss.deit_soft,loss.attn,loss.manifold\n"));

    // attn without pairs gets the family default (tokens): refused with the taps to pair
    write_file(dir / "no_pairs.cfg", common + "objectives = ce:1, attn:1\n");
    r = run_retort("distill --config " + (dir / "no_pairs.cfg") + " --out " + (dir / "bad"));
    CHECK(r.status != 0);
    CHECK(contains(r.output, "[attn] pairs = attn.5:attn.11"));
    CHECK_FALSE(std::filesystem::exists(dir / "bad"));
}
