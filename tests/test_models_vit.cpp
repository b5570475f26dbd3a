// tests/test_models_vit.cpp: the ViT / DeiT family (models/vit.cpp, layers/attention.cpp,
// layers/vit_blocks.cpp).
//
// Against PyTorch (tests/fixtures/gen_models_vit.py, a plain-torch model with timm's names and
// semantics, run in float64):
//   - small configurations with random weights saved as safetensors: logits, every tap, and
//     train-mode gradients of a few parameters;
//   - the full-size architectures at 224 px with deterministic formula weights (described below
//     and in the generator), which need no stored weights: logits, pre_logits and the parameter
//     counts timm reports (vit_small, deit_small and vit_base run with fewer blocks, see below).
// Also: parameter names and order, initialization, the attention layer against reference loops,
// train mode (DeiT's output, drop path, gradients for every parameter), taps, and the errors for
// bad specs, inputs, layer arguments, taps and state dicts.
// Tolerance: max|got - want| / max|want| < 1e-4 in float32.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

#include "engine/io/safetensors.h"
#include "engine/engine.h"
#include "layers/attention.h"
#include "layers/dropout.h"
#include "layers/vit_blocks.h"
#include "models/registry.h"
#include "tests/fixture.h"
#include "tests/model_check.h"

using namespace retort;
using retort::testing::Fixture;

using retort::testing::relative_error;

namespace {

double max_abs(const Tensor& t) {
    double m = 0;
    for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
    return m;
}

void check_close(const std::string& what, const Tensor& got, const Tensor& want) {
    const double r = relative_error(got, want);
    MESSAGE(what, ": max relative difference ", r);
    CHECK_MESSAGE(r < 1e-4, what, ": max relative difference ", r);
}

// ---- the deterministic formula weights (same as gen_models_vit.py) ----
// Tensor k of the state dict, element i: a 32-bit integer hash, exact in both languages,
//   x = (i + 2654435761 (k + 1)) mod 2^32;  twice x = (((x >> 16) ^ x) * 0x45d9f3b) mod 2^32;
//   x = (x >> 16) ^ x;  h = 2 x / 2^32 - 1  in [-1, 1)
// scaled by kind: weights with 2+ dims sqrt(3 / fan_in) h; 1-D ".weight" (LayerNorm) 1 + 0.25 h;
// ".bias" 0.1 h; anything else (cls_token, dist_token, pos_embed) 0.5 h. The input uses
// k = 1000 and the value h.
double hash_value(std::uint64_t i, std::uint64_t k) {
    const std::uint64_t mask = 0xFFFFFFFFull;
    std::uint64_t x = (i + 2654435761ull * (k + 1)) & mask;
    for (int r = 0; r < 2; ++r) x = (((x >> 16) ^ x) * 0x45D9F3Bull) & mask;
    x = (x >> 16) ^ x;
    return static_cast<double>(x) * (2.0 / 4294967296.0) - 1.0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void fill_formula(Model& model) {
    std::uint64_t k = 0;
    for (auto& [name, tensor] : model.state_dict()) {
        Tensor t = tensor;
        float* p = t.data<float>();
        double scale = 0.5, offset = 0.0;
        if (t.dim() >= 2 && ends_with(name, "weight")) {
            scale = std::sqrt(3.0 / static_cast<double>(t.numel() / t.size(0)));
        } else if (ends_with(name, ".weight")) {
            scale = 0.25, offset = 1.0;
        } else if (ends_with(name, ".bias")) {
            scale = 0.1;
        }
        for (std::int64_t i = 0; i < t.numel(); ++i)
            p[i] = static_cast<float>(offset + scale * hash_value(static_cast<std::uint64_t>(i), k));
        ++k;
    }
}

Tensor formula_input(const Shape& shape) {
    Tensor x = Tensor::empty(shape);
    float* p = x.data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i)
        p[i] = static_cast<float>(hash_value(static_cast<std::uint64_t>(i), 1000));
    return x;
}

std::shared_ptr<Module> child(const Module& m, const std::string& name) {
    for (auto& [n, c] : m.named_children())
        if (n == name) return c;
    FAIL("no child module ", name);
    return nullptr;
}

std::map<std::string, Tensor> state_of(const Model& m) {
    std::map<std::string, Tensor> out;
    for (auto& [name, t] : m.state_dict()) out[name] = t.detach().clone();
    return out;
}

const char* const kSmallVit =
    "vit_tiny_patch16_224:img_size=32,patch_size=8,embed_dim=64,depth=2,num_heads=4,num_classes=10";
const char* const kSmallDeit =
    "deit_tiny_distilled_patch16_224:img_size=24,patch_size=6,in_chans=2,embed_dim=48,depth=2,"
    "num_heads=3,mlp_ratio=2.5,num_classes=7";

// A small model with the fixture's weights, in eval mode.
std::shared_ptr<Model> load_small(const std::string& spec, const std::string& fixture) {
    auto model = create_model(spec);
    model->load_state_dict(load_safetensors(std::string(RETORT_FIXTURES_DIR) + "/models_vit_" +
                                            fixture + ".safetensors"));
    model->eval();
    return model;
}

}  // namespace

// ---- architecture -----------------------------------------------------------------------------

TEST_CASE("models/vit: parameter names, shapes and order are timm's") {
    // depth 2 instead of 12: the names of blocks 2..11 follow the same pattern
    auto vit = create_model("vit_tiny_patch16_224:depth=2");
    NamedTensors p = vit->named_parameters();
    REQUIRE(p.size() == 4 + 2 * 12 + 4);
    CHECK(p[0].first == "cls_token");
    CHECK(p[0].second.shape() == Shape{1, 1, 192});
    CHECK(p[1].first == "pos_embed");
    CHECK(p[1].second.shape() == Shape{1, 197, 192});
    CHECK(p[2].first == "patch_embed.proj.weight");
    CHECK(p[2].second.shape() == Shape{192, 3, 16, 16});
    CHECK(p[3].first == "patch_embed.proj.bias");
    const char* block0[] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                            "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                            "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
    for (int j = 0; j < 12; ++j) CHECK(p[4 + j].first == std::string("blocks.0.") + block0[j]);
    CHECK(p[6].second.shape() == Shape{576, 192});
    CHECK(p[12].second.shape() == Shape{768, 192});
    CHECK(p[4 + 12].first == "blocks.1.norm1.weight");
    CHECK(p[p.size() - 4].first == "norm.weight");
    CHECK(p[p.size() - 2].first == "head.weight");
    CHECK(p[p.size() - 2].second.shape() == Shape{1000, 192});
    CHECK(vit->named_buffers().empty());

    auto deit = create_model("deit_tiny_distilled_patch16_224:depth=2");
    NamedTensors d = deit->named_parameters();
    REQUIRE(d.size() == 5 + 2 * 12 + 6);
    CHECK(d[1].first == "pos_embed");
    CHECK(d[1].second.shape() == Shape{1, 198, 192});
    CHECK(d[2].first == "dist_token");
    CHECK(d[3].first == "patch_embed.proj.weight");
    CHECK(d[d.size() - 2].first == "head_dist.weight");
    CHECK(d[d.size() - 1].first == "head_dist.bias");
}

TEST_CASE("models/vit: initialization follows timm") {
    manual_seed(3);
    auto vit = create_model("vit_small_patch16_224:depth=1,num_classes=10");
    std::map<std::string, Tensor> s = state_of(*vit);
    auto stddev = [](const Tensor& t) {
        std::vector<double> v = t.to_vector<double>();
        double m = 0, q = 0;
        for (double x : v) m += x;
        m /= static_cast<double>(v.size());
        for (double x : v) q += (x - m) * (x - m);
        return std::sqrt(q / static_cast<double>(v.size()));
    };
    CHECK(stddev(s["blocks.0.attn.qkv.weight"]) == doctest::Approx(0.02).epsilon(0.02));
    CHECK(stddev(s["pos_embed"]) == doctest::Approx(0.02).epsilon(0.05));
    CHECK(max_abs(s["cls_token"]) < 1e-5);
    CHECK(max_abs(s["blocks.0.mlp.fc2.bias"]) == 0.0);
    CHECK(max_abs(s["head.bias"]) == 0.0);
    CHECK(max_abs(s["norm.weight"] - 1.0) == 0.0);
    // patch_embed.proj keeps Conv2d's default, U(+-1/sqrt(fan_in)) with fan_in = 3 * 16 * 16
    CHECK(max_abs(s["patch_embed.proj.weight"]) <= 1.0 / std::sqrt(768.0));
    CHECK(max_abs(s["patch_embed.proj.weight"]) > 0.02);
    auto deit = create_model("deit_tiny_distilled_patch16_224:depth=1");
    CHECK(stddev(deit->state_dict()[2].second) == doctest::Approx(0.02).epsilon(0.3));  // dist_token
}

TEST_CASE("models/vit: attention matches reference loops and returns its probabilities") {
    manual_seed(11);
    const std::int64_t B = 2, N = 5, C = 6, H = 3, D = 2;
    Attention attn(C, H);
    attn.eval();
    Tensor x = randn({B, N, C});
    Tensor probs;
    Tensor y = attn.forward(x, &probs);
    REQUIRE(probs.shape() == Shape{B, H, N, N});

    std::vector<float> xs = x.to_vector<float>(), wq = attn.qkv->weight.to_vector<float>(),
                       bq = attn.qkv->bias.to_vector<float>(),
                       wp = attn.proj->weight.to_vector<float>(),
                       bp = attn.proj->bias.to_vector<float>();
    // qkv[b][n][j] = x[b][n] . W[j] + bias[j]; j = part * C + head * D + d
    std::vector<double> qkv(B * N * 3 * C);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t j = 0; j < 3 * C; ++j) {
                double s = bq[j];
                for (std::int64_t c = 0; c < C; ++c) s += xs[(b * N + n) * C + c] * wq[j * C + c];
                qkv[(b * N + n) * 3 * C + j] = s;
            }
    auto at = [&](std::int64_t b, std::int64_t n, int part, std::int64_t h, std::int64_t d) {
        return qkv[(b * N + n) * 3 * C + part * C + h * D + d];
    };
    std::vector<double> p_ref(B * H * N * N), joined(B * N * C, 0.0);
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t i = 0; i < N; ++i) {
                std::vector<double> s(N);
                double top = -1e300, total = 0;
                for (std::int64_t j = 0; j < N; ++j) {
                    for (std::int64_t d = 0; d < D; ++d) s[j] += at(b, i, 0, h, d) * at(b, j, 1, h, d);
                    s[j] /= std::sqrt(static_cast<double>(D));
                    top = std::max(top, s[j]);
                }
                for (double& v : s) total += (v = std::exp(v - top));
                for (std::int64_t j = 0; j < N; ++j) {
                    p_ref[((b * H + h) * N + i) * N + j] = s[j] / total;
                    for (std::int64_t d = 0; d < D; ++d)
                        joined[(b * N + i) * C + h * D + d] += s[j] / total * at(b, j, 2, h, d);
                }
            }
    std::vector<double> y_ref(B * N * C);
    for (std::int64_t r = 0; r < B * N; ++r)
        for (std::int64_t o = 0; o < C; ++o) {
            double s = bp[o];
            for (std::int64_t c = 0; c < C; ++c) s += joined[r * C + c] * wp[o * C + c];
            y_ref[r * C + o] = s;
        }
    CHECK(relative_error(probs, from_vector(p_ref, {B, H, N, N})) < 1e-5);
    CHECK(relative_error(y, from_vector(y_ref, {B, N, C})) < 1e-5);

    CHECK_THROWS_WITH_AS(attn(randn({2, 5, 4})), doctest::Contains("Attention: expected input (B, N, 6)"),
                         Error);
    CHECK_THROWS_WITH_AS(Attention(10, 3), doctest::Contains("dim (10) must be divisible by num_heads (3)"),
                         Error);
}

// ---- against PyTorch: small configurations, saved weights --------------------------------------

TEST_CASE("models/vit: small ViT with saved weights matches PyTorch (logits and taps)") {
    Fixture f("models_vit_vit_small_cfg.txt");
    auto model = load_small(kSmallVit, "vit_small_cfg");
    Taps taps(model->tap_names());
    Tensor logits = model->forward(f.f32("input"), &taps);
    check_close("vit logits", logits, f["logits"]);
    for (const std::string& tap : model->tap_names()) check_close("vit " + tap, taps.at(tap), f[tap]);
    CHECK(taps.at("patch_tokens").shape() == Shape{2, 16, 64});
    CHECK(taps.at("attn.1").shape() == Shape{2, 4, 17, 17});
    // cls_logits is the output itself for a plain ViT
    CHECK(relative_error(taps.at("cls_logits"), logits) == 0.0);
}

TEST_CASE("models/vit: small DeiT with saved weights matches PyTorch (logits and taps)") {
    Fixture f("models_vit_deit_small_cfg.txt");
    auto model = load_small(kSmallDeit, "deit_small_cfg");
    Taps taps(model->tap_names());
    Tensor logits = model->forward(f.f32("input"), &taps);
    check_close("deit logits", logits, f["logits"]);
    for (const std::string& tap : model->tap_names()) check_close("deit " + tap, taps.at(tap), f[tap]);
    CHECK(taps.at("tokens.0").shape() == Shape{2, 18, 48});
    CHECK(taps.at("dense_dist_logits").shape() == Shape{2, 16, 7});

    // Train mode (no dropout or drop path here, so deterministic): the output is the class head.
    model->train();
    Taps train_taps({"cls_logits", "dist_logits"});
    Tensor train_logits = model->forward(f.f32("input"), &train_taps);
    check_close("deit train-mode logits", train_logits, f["cls_logits"]);
    check_close("deit train-mode dist_logits", train_taps.at("dist_logits"), f["dist_logits"]);
}

TEST_CASE("models/vit: train-mode gradients match PyTorch (small ViT and DeiT)") {
    // loss = sum(w_cls * output) (+ sum(w_dist * dist_logits) for DeiT): in train mode the output
    // is the class head, so both heads and every block get their gradient as in PyTorch.
    const std::pair<const char*, const char*> cases[] = {{kSmallVit, "vit_small_cfg"},
                                                         {kSmallDeit, "deit_small_cfg"}};
    for (auto [spec, fixture] : cases) {
        CAPTURE(spec);
        Fixture f(std::string("models_vit_") + fixture + ".txt");
        auto model = load_small(spec, fixture);
        model->train();
        const bool deit = f.has("loss_weight.dist");
        Taps taps(deit ? std::vector<std::string>{"dist_logits"} : std::vector<std::string>{});
        Tensor logits = model->forward(f.f32("input"), &taps);
        Tensor loss = sum(logits * f.f32("loss_weight.cls"));
        if (deit) loss = loss + sum(taps.at("dist_logits") * f.f32("loss_weight.dist"));
        loss.backward();
        int checked = 0;
        for (auto& [name, p] : model->named_parameters()) {
            if (!f.has("grad." + name)) continue;
            check_close(std::string(fixture) + " grad." + name, p.grad(), f["grad." + name]);
            ++checked;
        }
        CHECK(checked == (deit ? 10 : 8));
    }
}

// ---- against PyTorch: full-size architectures, formula weights ---------------------------------
// All at 224 px with 1000 classes. Building a model costs more than running it (every weight is
// drawn at random first), so vit_small, deit_small and vit_base run with fewer blocks; their
// full parameter count is that model's count plus the missing blocks, each the size of blocks.0.
// The expected counts are the ones the reference prints (timm's architectures; the same numbers
// timm reports for these models).

namespace {
std::int64_t block0_parameters(const Model& m) {
    std::int64_t n = 0;
    for (auto& [name, t] : m.named_parameters())
        if (name.rfind("blocks.0.", 0) == 0) n += t.numel();
    return n;
}

void check_full(const std::string& prefix, const std::string& name, std::int64_t depth,
                std::int64_t expected_parameters) {
    Fixture f("models_vit_full.txt");
    auto model = create_model(depth == 12 ? name : name + ":depth=" + std::to_string(depth));
    CHECK(model->num_parameters() + (12 - depth) * block0_parameters(*model) == expected_parameters);
    fill_formula(*model);
    model->eval();
    NoGradGuard no_grad;
    Taps taps({"pre_logits"});
    Tensor logits = model->forward(formula_input({1, 3, 224, 224}), &taps);
    check_close(prefix + " logits", logits, f[prefix + ".logits"]);
    check_close(prefix + " pre_logits", taps.at("pre_logits"), f[prefix + ".pre_logits"]);
}
}  // namespace

TEST_CASE("models/vit: vit_tiny_patch16_224 has 5,717,416 parameters and PyTorch's logits") {
    check_full("vit_tiny", "vit_tiny_patch16_224", 12, 5'717'416);
}

TEST_CASE("models/vit: deit_tiny_distilled_patch16_224 has 5,910,800 parameters and PyTorch's logits") {
    check_full("deit_tiny", "deit_tiny_distilled_patch16_224", 12, 5'910'800);
}

TEST_CASE("models/vit: vit_small_patch16_224 has 22,050,664 parameters and PyTorch's logits (2 blocks)") {
    check_full("vit_small", "vit_small_patch16_224", 2, 22'050'664);
}

TEST_CASE("models/vit: deit_small_distilled_patch16_224 has 22,436,432 parameters and PyTorch's logits (2 blocks)") {
    check_full("deit_small", "deit_small_distilled_patch16_224", 2, 22'436'432);
}

TEST_CASE("models/vit: vit_base_patch16_224 has 86,567,656 parameters and PyTorch's logits (1 block)") {
    check_full("vit_base", "vit_base_patch16_224", 1, 86'567'656);
}

// ---- training ---------------------------------------------------------------------------------

TEST_CASE("models/vit: train-mode forward and backward give every parameter a gradient") {
    manual_seed(5);
    const std::pair<const char*, bool> specs[] = {
        {"vit_tiny_patch16_224:img_size=16,patch_size=4,embed_dim=24,depth=3,num_heads=2,"
         "num_classes=5,drop_path_rate=0.2",
         false},
        {"deit_tiny_distilled_patch16_224:img_size=16,patch_size=8,embed_dim=12,depth=2,"
         "num_heads=3,num_classes=4,in_chans=1,drop_path_rate=0.1",
         true}};
    for (auto [spec, deit] : specs) {
        CAPTURE(spec);
        auto model = create_model(spec);
        model->train();
        Taps taps(deit ? std::vector<std::string>{"dist_logits"} : std::vector<std::string>{});
        Tensor x = randn({3, model->info().in_chans, 16, 16});
        Tensor logits = model->forward(x, &taps);
        Tensor loss = cross_entropy(logits, from_vector<std::int64_t>({0, 1, 2}));
        // DeiT's train-mode output is the class head; the distillation head learns from its tap.
        if (deit) loss = loss + cross_entropy(taps.at("dist_logits"), from_vector<std::int64_t>({2, 1, 0}));
        loss.backward();
        for (auto& [name, p] : model->named_parameters()) {
            CAPTURE(name);
            REQUIRE(p.grad().defined());
            CHECK(p.grad().shape() == p.shape());
            CHECK(std::isfinite(max_abs(p.grad())));
        }
        CHECK(max_abs(model->named_parameters()[0].second.grad()) > 0);  // cls_token
    }
}

TEST_CASE("models/vit: drop path grows linearly over the blocks and only acts in train mode") {
    auto model = create_model(
        "vit_tiny_patch16_224:img_size=8,patch_size=4,embed_dim=8,depth=5,num_heads=2,"
        "num_classes=3,drop_path_rate=0.4");
    auto blocks = child(*model, "blocks");
    for (int l = 0; l < 5; ++l) {
        auto block = child(*blocks, std::to_string(l));
        for (const char* name : {"drop_path1", "drop_path2"}) {
            auto dp = std::dynamic_pointer_cast<DropPath>(child(*block, name));
            REQUIRE(dp);
            CHECK(dp->p == doctest::Approx(0.1 * l));
        }
    }
    manual_seed(9);
    Tensor x = randn({16, 3, 8, 8});
    model->eval();
    Tensor a = model->forward(x), b = model->forward(x);
    CHECK(relative_error(a, b) == 0.0);
    model->train();
    Tensor c = model->forward(x), d = model->forward(x);
    CHECK(relative_error(c, d) > 0.0);  // different samples dropped each time
}

// ---- taps -------------------------------------------------------------------------------------

TEST_CASE("models/vit: tap names, unrequested taps and the unknown-tap error") {
    auto vit = create_model("vit_tiny_patch16_224:img_size=8,patch_size=4,embed_dim=8,depth=2,num_heads=2");
    std::vector<std::string> names = vit->tap_names();
    const std::vector<std::string> vit_taps{"tokens.0", "tokens.1", "attn.0", "attn.1",
                                            "patch_tokens", "pre_logits", "cls_logits"};
    CHECK(names == vit_taps);
    Tensor x = randn({1, 3, 8, 8});
    Taps bad({"dist_logits"});
    CHECK_THROWS_WITH_AS(vit->forward(x, &bad),
                         doctest::Contains("unknown tap 'dist_logits' for model vit_tiny_patch16_224; "
                                           "valid taps: tokens.0, tokens.1, attn.0, attn.1, "
                                           "patch_tokens, pre_logits, cls_logits"),
                         Error);
    Taps out_of_range({"tokens.2"});
    CHECK_THROWS_WITH_AS(vit->forward(x, &out_of_range), doctest::Contains("unknown tap 'tokens.2'"),
                         Error);

    auto deit = create_model(
        "deit_tiny_distilled_patch16_224:img_size=8,patch_size=4,embed_dim=8,depth=1,num_heads=2,"
        "num_classes=3");
    names = deit->tap_names();
    CHECK(names.back() == "dense_dist_logits");
    CHECK(names[names.size() - 2] == "dist_logits");
    // Only what is asked for is kept: no attention maps, no dense logits.
    Taps some({"tokens.0", "dist_logits"});
    deit->eval();
    Tensor logits = deit->forward(x, &some);
    CHECK(some.values().size() == 2);
    CHECK(some.at("tokens.0").shape() == Shape{1, 6, 8});
    CHECK_THROWS_WITH_AS(some.at("attn.0"), doctest::Contains("tap 'attn.0' was not requested"), Error);
    // eval output = mean of the two heads
    Taps heads({"cls_logits", "dist_logits"});
    logits = deit->forward(x, &heads);
    CHECK(relative_error(logits, (heads.at("cls_logits") + heads.at("dist_logits")) * 0.5) < 1e-7);
    Taps dense({"dense_dist_logits", "pre_logits"});
    deit->forward(randn({2, 3, 8, 8}), &dense);
    CHECK(dense.at("dense_dist_logits").shape() == Shape{2, 4, 3});
    CHECK(dense.at("pre_logits").shape() == Shape{2, 8});
}

// ---- errors -----------------------------------------------------------------------------------

TEST_CASE("models/vit: layer arguments and inputs are checked") {
    CHECK_THROWS_WITH_AS(Attention(0, 1), doctest::Contains("Attention: dim and num_heads must be positive"),
                         Error);
    CHECK_THROWS_WITH_AS(PatchEmbed(30, 16, 3, 8),
                         doctest::Contains("PatchEmbed: img_size (30) must be a positive multiple of "
                                           "patch_size (16)"),
                         Error);
    PatchEmbed embed(32, 8, 3, 4);
    CHECK(embed(randn({2, 3, 32, 32})).shape() == Shape{2, 16, 4});
    CHECK_THROWS_WITH_AS(embed(randn({2, 3, 32, 24})),
                         doctest::Contains("PatchEmbed: expected input (B, C, 32, 32), got (2, 3, 32, 24)"),
                         Error);
    BlockOptions o;
    o.dim = 8;
    o.num_heads = 2;
    o.mlp_ratio = 0.1;
    CHECK_THROWS_WITH_AS(Block{o}, doctest::Contains("int(8 * 0.1) must be at least 1"), Error);
    o.mlp_ratio = 0.5;
    Block block(o);
    Tensor probs;
    CHECK(block.forward(randn({1, 3, 8}), &probs).shape() == Shape{1, 3, 8});
    CHECK(probs.shape() == Shape{1, 2, 3, 3});
}


TEST_CASE("models/vit: bad specs give clear errors") {
    CHECK_THROWS_WITH_AS(create_model("vit_tiny_patch16_224:stem=cifar"),
                         doctest::Contains("model 'vit_tiny_patch16_224' has no key 'stem'; valid keys: "
                                           "num_classes, in_chans, img_size, patch_size, embed_dim, "
                                           "depth, num_heads, mlp_ratio, drop_path_rate"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("vit_tiny_patch16_224:num_classes=0"),
                         doctest::Contains("key 'num_classes' must be in [1, 100000], got 0"), Error);
    CHECK_THROWS_WITH_AS(create_model("vit_base_patch16_224:drop_path_rate=1"),
                         doctest::Contains("key 'drop_path_rate' must be in [0, 0.99], got 1"), Error);
    CHECK_THROWS_WITH_AS(create_model("vit_tiny_patch16_224:mlp_ratio=four"),
                         doctest::Contains("key 'mlp_ratio' must be a number, got 'four'"), Error);
    CHECK_THROWS_WITH_AS(create_model("vit_small_patch16_224:img_size=30"),
                         doctest::Contains("vit_small_patch16_224: img_size (30) must be divisible by "
                                           "patch_size (16)"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("deit_tiny_distilled_patch16_224:embed_dim=100"),
                         doctest::Contains("deit_tiny_distilled_patch16_224: embed_dim (100) must be "
                                           "divisible by num_heads (3)"),
                         Error);
    CHECK_THROWS_WITH_AS(create_model("vit_tiny_patch16_224:mlp_ratio=0.001"),
                         doctest::Contains("must give an MLP hidden size of at least 1"), Error);
}

TEST_CASE("models/vit: wrong inputs give clear errors") {
    auto model = create_model("vit_tiny_patch16_224:img_size=32,patch_size=8,embed_dim=8,depth=1,num_heads=2");
    CHECK_THROWS_WITH_AS(model->forward(randn({1, 3, 64, 64})),
                         doctest::Contains("vit_tiny_patch16_224: input is 64x64 but the model was "
                                           "built for 32x32"),
                         Error);
    CHECK_THROWS_WITH_AS(model->forward(randn({1, 3, 32, 16})), doctest::Contains("input is 32x16"), Error);
    CHECK_THROWS_WITH_AS(model->forward(randn({1, 1, 32, 32})),
                         doctest::Contains("input has 1 channels, the model expects 3"), Error);
}

TEST_CASE("models/vit: load_state_dict names a missing, unexpected or mis-shaped tensor") {
    auto model = create_model(kSmallVit);
    std::map<std::string, Tensor> good =
        load_safetensors(std::string(RETORT_FIXTURES_DIR) + "/models_vit_vit_small_cfg.safetensors");
    const std::map<std::string, Tensor> before = state_of(*model);

    auto missing = good;
    missing.erase("blocks.1.attn.qkv.weight");
    CHECK_THROWS_WITH_AS(model->load_state_dict(missing),
                         doctest::Contains("missing 1 tensor(s): 'blocks.1.attn.qkv.weight'"), Error);
    auto extra = good;
    extra["head_dist.weight"] = zeros({10, 64});
    CHECK_THROWS_WITH_AS(model->load_state_dict(extra),
                         doctest::Contains("unexpected tensor 'head_dist.weight'"), Error);
    auto misshaped = good;
    misshaped["pos_embed"] = zeros({1, 16, 64});
    CHECK_THROWS_WITH_AS(model->load_state_dict(misshaped),
                         doctest::Contains("'pos_embed' has shape (1, 16, 64) in the file but (1, 17, 64)"),
                         Error);
    // nothing changed by the failed loads
    for (auto& [name, t] : model->state_dict()) CHECK(relative_error(t, before.at(name)) == 0.0);

    // a DeiT checkpoint does not load into a ViT
    auto deit_state = load_safetensors(std::string(RETORT_FIXTURES_DIR) +
                                       "/models_vit_deit_small_cfg.safetensors");
    CHECK_THROWS_AS(model->load_state_dict(deit_state), Error);
}
