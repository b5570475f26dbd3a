// tests/test_precision.cpp: mixed precision (engine/precision.h): the float <-> bfloat16 / float16
// conversions against PyTorch's, the rounding of products' operands, and bf16 / f16 training runs
// on the CPU, whose emulation computes what a GPU's 16-bit GEMMs compute.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "distill/trainer.h"
#include "engine/engine.h"
#include "engine/math/half.h"
#include "tests/cli_run.h"
#include "tests/gradcheck.h"
#include "tests/tiny_run.h"

using namespace retort;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// x, then x.to(torch.bfloat16).float() and x.to(torch.float16).float() in PyTorch 1.13 (Debian's
// python3-torch): edge cases (ties, overflow, subnormals, infinities) and random magnitudes.
const float kTable[][3] = {
    {0.0f, 0.0f, 0.0f},
    {-0.0f, -0.0f, -0.0f},
    {1.0f, 1.0f, 1.0f},
    {-1.0f, -1.0f, -1.0f},
    {65504.0f, 65536.0f, 65504.0f},
    {65519.0f, 65536.0f, 65504.0f},
    {65520.0f, 65536.0f, kInf},
    {70000.0f, 70144.0f, kInf},
    {9.99999993922529e-09f, 1.0011717677116394e-08f, 0.0f},
    {5.960000137861243e-08f, 5.960464477539063e-08f, 5.960464477539063e-08f},
    {2.9800000689306216e-08f, 2.9802322387695312e-08f, 0.0f},
    {2.9802322387695312e-08f, 2.9802322387695312e-08f, 0.0f},
    {6.0999998822808266e-05f, 6.103515625e-05f, 6.097555160522461e-05f},
    {6.103515625e-05f, 6.103515625e-05f, 6.103515625e-05f},
    {2.9999999242136255e-05f, 3.0040740966796875e-05f, 2.9981136322021484e-05f},
    {1.0009765625f, 1.0f, 1.0009765625f},
    {1.00048828125f, 1.0f, 1.0f},
    {1.000732421875f, 1.0f, 1.0009765625f},
    {3.1415927410125732f, 3.140625f, 3.140625f},
    {-2.718280076980591f, -2.71875f, -2.71875f},
    {9.999999680285692e+37f, 9.969209968386869e+37f, kInf},
    {3.3999999521443642e+38f, kInf, kInf},
    {-3.4028234663852886e+38f, -kInf, -kInf},
    {1.00390625f, 1.0f, 1.00390625f},
    {1.001953125f, 1.0f, 1.001953125f},
    {kInf, kInf, kInf},
    {-kInf, -kInf, -kInf},
    {1234.5677490234375f, 1232.0f, 1235.0f},
    {0.10000000149011612f, 0.10009765625f, 0.0999755859375f},
    {0.20000000298023224f, 0.2001953125f, 0.199951171875f},
    {0.30000001192092896f, 0.30078125f, 0.300048828125f},
    {9.99994610111476e-41f, 9.183549615799121e-41f, 0.0f},
    {-3763.4375f, -3760.0f, -3764.0f},
    {3.5342591218068264e-06f, 3.5315752029418945e-06f, 3.516674041748047e-06f},
    {-5.0446200475562364e-05f, -5.054473876953125e-05f, -5.042552947998047e-05f},
    {205.38055419921875f, 205.0f, 205.375f},
    {-2.162311885101076e-09f, -2.168235369026661e-09f, -0.0f},
    {0.0020824356470257044f, 0.0020751953125f, 0.00208282470703125f},
    {5.641389577704103e-10f, 5.638867150992155e-10f, 0.0f},
    {-7.2681684494018555f, -7.28125f, -7.26953125f},
    {-81929.5546875f, -81920.0f, -kInf},
    {2.309334279360087e-09f, 2.3137545213103294e-09f, 0.0f},
    {-0.12545929849147797f, -0.125f, -0.12548828125f},
    {0.00045888684689998627f, 0.0004596710205078125f, 0.0004589557647705078f},
    {-0.0012166885426267982f, -0.00121307373046875f, -0.001216888427734375f},
    {-1.9924539174098754e-06f, -1.996755599975586e-06f, -1.9669532775878906e-06f},
    {-0.0033993194811046124f, -0.0034027099609375f, -0.003398895263671875f},
    {-1.5502508858844521e-06f, -1.5497207641601562e-06f, -1.5497207641601562e-06f},
    {-0.004406833089888096f, -0.00439453125f, -0.004405975341796875f},
    {-8.831739783943249e-10f, -8.840288501232862e-10f, -0.0f},
    {0.15004409849643707f, 0.150390625f, 0.1500244140625f},
    {1.7490880566128908e-07f, 1.7508864402770996e-07f, 1.7881393432617188e-07f},
    {7810.384765625f, 7808.0f, 7812.0f},
    {-7.416911103064194e-05f, -7.43865966796875e-05f, -7.414817810058594e-05f},
    {20.61815071105957f, 20.625f, 20.625f},
    {0.00187309633474797f, 0.0018768310546875f, 0.001873016357421875f},
    {7.4847002029418945f, 7.5f, 7.484375f},
    {-0.2560897171497345f, -0.255859375f, -0.256103515625f},
    {3772.236083984375f, 3776.0f, 3772.0f},
    {0.007227896712720394f, 0.007232666015625f, 0.007228851318359375f},
    {-4.0740392250882e-06f, -4.082918167114258e-06f, -4.0531158447265625e-06f},
    {0.0009751853067427874f, 0.0009765625f, 0.0009751319885253906f},
    {-0.11157049238681793f, -0.111328125f, -0.111572265625f},
    {5.319865703582764f, 5.3125f, 5.3203125f},
    {-0.0009624873637221754f, -0.0009613037109375f, -0.0009622573852539062f},
    {8.004161834716797f, 8.0f, 8.0078125f},
    {3.3174186683027074e-05f, 3.314018249511719e-05f, 3.319978713989258e-05f},
    {-5.7248591284198014e-11f, -5.729816621169448e-11f, -0.0f},
    {-32.4499626159668f, -32.5f, -32.4375f},
    {0.7636631727218628f, 0.76171875f, 0.763671875f},
    {-7.64206760095476e-08f, -7.636845111846924e-08f, -5.960464477539063e-08f},
    {2410.726806640625f, 2416.0f, 2410.0f},
};

// Restores the process-wide precision when a test ends.
struct PrecisionScope {
    explicit PrecisionScope(Precision p) { set_precision(p); }
    ~PrecisionScope() { set_precision(Precision::f32); }
};

}  // namespace

TEST_CASE("precision: bfloat16 and float16 rounding equals PyTorch's, value by value") {
    for (const auto& row : kTable) {
        CAPTURE(row[0]);
        const float bf = math::round_bf16(row[0]), h = math::round_f16(row[0]);
        CHECK((bf == row[1] && std::signbit(bf) == std::signbit(row[1])));
        CHECK((h == row[2] && std::signbit(h) == std::signbit(row[2])));
    }
    CHECK(std::isnan(math::round_bf16(std::nanf(""))));
    CHECK(std::isnan(math::round_f16(std::nanf(""))));
    // every float16 bit pattern survives a round trip through float
    for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
        const auto h = static_cast<std::uint16_t>(bits);
        const float x = math::f16_to_float(h);
        if (std::isnan(x)) continue;
        REQUIRE(math::float_to_f16(x) == h);
    }
}

TEST_CASE("precision: bf16 and f16 products multiply rounded operands, and f64 and f32 runs are untouched") {
    CHECK(parse_precision("bf16") == Precision::bf16);
    CHECK_THROWS_WITH_AS(parse_precision("fp8"), doctest::Contains("unknown precision \"fp8\""), Error);
    Generator gen(3);
    const Tensor a = uniform({5, 7}, -3, 3, DType::f32, &gen), b = uniform({7, 4}, -3, 3, DType::f32, &gen);
    const Tensor exact = matmul(a, b);
    for (Precision p : {Precision::bf16, Precision::f16}) {
        PrecisionScope scope(p);
        auto rounded = [p](const Tensor& t) {
            std::vector<float> v = t.to_vector<float>();
            for (float& x : v) x = p == Precision::bf16 ? math::round_bf16(x) : math::round_f16(x);
            return from_vector(v, t.shape());
        };
        set_precision(Precision::f32);
        const Tensor expected = matmul(rounded(a), rounded(b));
        set_precision(p);
        const Tensor got = matmul(a, b);
        CHECK(retort::testing::max_abs_diff(got, expected) == 0);  // the same f32 GEMM on rounded inputs
        CHECK(retort::testing::max_abs_diff(got, exact) > 0);      // and not the f32 product
        const Tensor d = a.to(DType::f64);
        CHECK(retort::testing::max_abs_diff(matmul(d, b.to(DType::f64)),
                                            matmul(d, b.to(DType::f64))) == 0);
        CHECK(round_for_products(d).same(d));  // float64 stays exact
    }
    CHECK(round_for_products(a).same(a));  // f32: nothing rounded
}

namespace {

struct RunResult {
    TrainProgress progress;
    double test_loss;
};

RunResult tiny_run(const std::string& dir, const std::vector<std::string>& overrides) {
    Config config = retort::testing::tiny_run_config(overrides);
    const TrainConfig tc = read_train_config(config);
    std::shared_ptr<Model> model = build_model(tc);
    Trainer trainer(tc, model, open_data(tc));
    trainer.start(dir, config);
    RunResult r{trainer.run(), trainer.last_test().loss};
    set_precision(Precision::f32);
    return r;
}

}  // namespace

TEST_CASE("precision: bf16 and f16 training runs follow the f32 run, and f16 scales its loss") {
    retort::testing::TempDir dir;
    const RunResult f32 = tiny_run(dir / "f32", {});
    const RunResult bf16 = tiny_run(dir / "bf16", {"run.precision=bf16"});
    const RunResult f16 = tiny_run(dir / "f16", {"run.precision=f16"});
    CHECK(std::isfinite(bf16.test_loss));
    CHECK(std::isfinite(f16.test_loss));
    // 10 steps of a small network: the 16-bit operands move the result a little, not a lot
    CHECK(std::abs(bf16.test_loss - f32.test_loss) < 0.2 * f32.test_loss);
    CHECK(std::abs(f16.test_loss - f32.test_loss) < 0.2 * f32.test_loss);
    CHECK(f32.progress.loss_scale == 65536);  // only f16 runs scale
    CHECK(f16.progress.overflow_skipped == 0);

    // a scale far too large: the scaled float16 gradients overflow, those steps are skipped and
    // the scale halves until they fit; the run goes on and says so
    const RunResult huge = tiny_run(dir / "huge", {"run.precision=f16", "run.loss_scale=1e30"});
    CHECK(huge.progress.overflow_skipped > 0);
    CHECK(huge.progress.loss_scale < 1e30);
    CHECK(huge.progress.step == 10);
    CHECK(std::isfinite(huge.test_loss));
    // the scale is saved with the run, for an identical resume
    const Checkpoint c = read_checkpoint(dir / "huge/last.safetensors");
    CHECK(c.progress.loss_scale == huge.progress.loss_scale);
    CHECK(c.progress.overflow_skipped == huge.progress.overflow_skipped);
}
