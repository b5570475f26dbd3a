// tests/test_cli.cpp: the `retort` binary end to end: the demo learns, `infer` writes what the
// library computes, and every kind of bad input is refused with a message, a non-zero exit and
// no output file.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/cuda/runtime.h"
#include "engine/engine.h"
#include "tests/cli_run.h"
#include "models/registry.h"
#include "tests/gradcheck.h"

using namespace retort;
namespace fs = std::filesystem;
using retort::testing::run_retort;
using retort::testing::TempDir;
using retort::testing::CliRun;

namespace {

}  // namespace

TEST_CASE("cli: the demo fits its MLP and the loss falls") {
    CliRun r = run_retort("demo --steps 60 --threads 1");
    CHECK(r.status == 0);
    CHECK(r.output.find("loss 1.") != std::string::npos);
}

TEST_CASE("cli: infer writes the logits and taps the library computes") {
    TempDir dir;
    const std::string spec = "resnet8:num_classes=5";
    Tensor x = randn({2, 3, 32, 32});
    save_safetensors(dir / "x.safetensors", {{"input", x}});
    CliRun r = run_retort("infer --model " + spec + " --seed 3 --input " + (dir / "x.safetensors") +
                       " --output " + (dir / "y.safetensors") + " --taps layer2,pre_logits");
    REQUIRE_MESSAGE(r.status == 0, r.output);
    auto out = load_safetensors(dir / "y.safetensors");
    manual_seed(3);
    std::shared_ptr<Model> model = create_model(spec);
    model->eval();
    Taps taps({"layer2", "pre_logits"});
    Tensor logits = model->forward(x, &taps);
    CHECK(retort::testing::max_abs_diff(out.at("logits"), logits) == 0);
    CHECK(retort::testing::max_abs_diff(out.at("layer2"), taps.at("layer2")) == 0);
    CHECK(out.at("pre_logits").shape() == Shape{2, 64});

    // the same run reading those weights from a file gives the same logits
    std::map<std::string, Tensor> weights;
    for (auto& [name, t] : model->state_dict()) weights[name] = t;
    save_safetensors(dir / "w.safetensors", weights);
    CliRun again = run_retort("infer --model " + spec + " --seed 99 --weights " + (dir / "w.safetensors") +
                           " --input " + (dir / "x.safetensors") + " --output " + (dir / "z.safetensors"));
    REQUIRE_MESSAGE(again.status == 0, again.output);
    CHECK(retort::testing::max_abs_diff(load_safetensors(dir / "z.safetensors").at("logits"), logits) == 0);
}

TEST_CASE("cli: infer refuses bad input with a message, a non-zero exit and no output") {
    TempDir dir;
    save_safetensors(dir / "x.safetensors", {{"input", randn({1, 3, 32, 32})}});
    save_safetensors(dir / "gray.safetensors", {{"input", randn({1, 1, 32, 32})}});
    save_safetensors(dir / "f64.safetensors", {{"input", randn({1, 3, 32, 32}, DType::f64)}});
    save_safetensors(dir / "rank3.safetensors", {{"input", randn({3, 32, 32})}});
    save_safetensors(dir / "empty.safetensors", {{"input", randn({0, 3, 32, 32})}});
    save_safetensors(dir / "other.safetensors", {{"image", randn({1, 3, 32, 32})}});
    save_safetensors(dir / "badw.safetensors", {{"fc.weight", randn({5, 64})}});
    {
        std::ofstream junk(dir / "junk.safetensors");
        junk << "this is not a safetensors file";
    }
    const std::string out = dir / "y.safetensors";
    auto infer = [&](const std::string& model, const std::string& input, const std::string& extra = "") {
        return run_retort("infer --model " + model + " --input " + (dir / input) + " --output " + out + " " + extra);
    };
    const std::vector<std::pair<CliRun, std::string>> cases = {
        {infer("resnet9", "x.safetensors"), "unknown model 'resnet9'; valid models: resnet18"},
        {infer("resnet8:num_classes=5,num_classes=6", "x.safetensors"), "given twice"},
        {infer("resnet8:num_classes=", "x.safetensors"), "has no value"},
        {infer("resnet8:depth=3", "x.safetensors"), "has no key 'depth'; valid keys: num_classes"},
        {infer("resnet8:num_classes=0", "x.safetensors"), "num_classes' must be in [1,"},
        {infer("resnet8", "x.safetensors", "--taps layer9"), "unknown tap 'layer9' for model resnet8; valid taps: stem"},
        {infer("resnet8", "gray.safetensors"), "input has 1 channels, the model expects 3"},
        {infer("resnet8", "f64.safetensors"), "input must be float32"},
        {infer("resnet8", "rank3.safetensors"), "input must be (B, C, H, W)"},
        {infer("resnet8", "empty.safetensors"), "input batch is empty"},
        {infer("resnet8", "other.safetensors"), "has no tensor named 'input'"},
        {infer("resnet8", "junk.safetensors"), "safetensors"},
        {infer("resnet8", "x.safetensors", "--weights " + (dir / "badw.safetensors")), "load_state_dict"},
        {infer("resnet8", "missing.safetensors"), "missing.safetensors"},
        {run_retort("infer --input x"), "--model is required"},
        {run_retort("infer --model resnet8 --bogus 1"), "unknown option --bogus"},
        {run_retort("frobnicate"), "unknown command 'frobnicate'"},
    };
    retort::testing::check_refused(cases, out);
}

TEST_CASE("cli: train --data names the dataset directory (as data.path) and is checked first") {
    TempDir dir;
    const std::string config = std::string(RETORT_FIXTURES_DIR) + "/../../tools/demo-fashion.conf";
    CliRun r = run_retort("train --config " + config + " --data " + (dir / "nowhere") + " --out " +
                          (dir / "run"));
    CHECK(r.status != 0);
    CHECK(r.output.find("dataset directory '" + (dir / "nowhere") + "' does not exist") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "run"));
}

TEST_CASE("cli: bench refuses bad shapes, inputs, flags and workloads with a message") {
    retort::testing::TempDir dir;
    const std::string never = dir / "never";  // bench writes no file: nothing may appear
    const std::vector<std::pair<retort::testing::CliRun, std::string>> cases = {
        {run_retort("bench gemm --shapes 12x --seconds 0.01"), "is not MxNxK"},
        {run_retort("bench gemm --shapes 4x4x4:tx --seconds 0.01"), "two letters of n and t"},
        {run_retort("bench gemm --shapes 0x4x4 --seconds 0.01"), "sizes start at 1"},
        {run_retort("bench gemm --shapes 99999x99999x99999"), "more than 4 GiB"},
        {run_retort("bench model resnet8 --input 3x32"), "is not CxHxW"},
        {run_retort("bench model resnet8 --input 3xAx32"), "is not CxHxW"},
        {run_retort("bench model resnet8 --train=maybe"), "is true or false"},
        {run_retort("bench model"), "usage: retort bench model SPEC"},
        {run_retort("bench kd resnet8"), "usage: retort bench kd TEACHER STUDENT"},
        {run_retort("bench kd resnet8:num_classes=3 resnet8:num_classes=4 --steps 1 --batch 1 --input 3x8x8"),
         "has 3 classes and the student 4"},
        {run_retort("bench frobnicate"), "unknown benchmark 'frobnicate'"},
    };
    retort::testing::check_refused(cases, never);
}

TEST_CASE("cli: --device names a device that must exist, else a clear error and nothing written") {
    TempDir dir;
    const std::string config = std::string(RETORT_FIXTURES_DIR) + "/../../tools/demo-fashion.conf";
    const std::string data = " --data synthetic:num_classes=4,size=64,test_size=16,channels=1,height=8,width=8";
    CliRun bad = run_retort("train --config " + config + data + " --device gpu --out " + (dir / "a"));
    CHECK(bad.status != 0);
    CHECK(bad.output.find("unknown device \"gpu\" (expected cpu, cuda or cuda:N)") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "a"));
    if (retort::cuda::device_count() > 0) return;  // the rest is about a machine without a GPU
    const std::string missing = retort::cuda::built() ? "no CUDA device is visible" : "no CUDA backend";
    CliRun train = run_retort("train --config " + config + data + " --device cuda --out " + (dir / "b"));
    CHECK(train.status != 0);
    CHECK(train.output.find(missing) != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "b"));
    CliRun bench = run_retort("bench model resnet8 --device cuda:1 --steps 1 --batch 1");
    CHECK(bench.status != 0);
    CHECK(bench.output.find(missing) != std::string::npos);
    const std::string kd = std::string(RETORT_FIXTURES_DIR) + "/../../tools/distill-fashion-kd.conf";
    CliRun distill = run_retort("distill --config " + kd + data + " --device cuda --out " + (dir / "c"));
    CHECK(distill.status != 0);
    CHECK(distill.output.find(missing) != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "c"));
    CliRun eval = run_retort("eval --model resnet8 --weights nowhere.safetensors --data x --device cuda");
    CHECK(eval.status != 0);
    CHECK(eval.output.find(missing) != std::string::npos);
}
