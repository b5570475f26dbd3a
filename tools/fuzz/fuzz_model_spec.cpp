// tools/fuzz/fuzz_model_spec.cpp: the spec strings of models (models/registry.h) and of
// transforms (data/transform_spec.h, data/transforms.h, data/batch_transforms.h) on arbitrary
// text.
//
//   model:      resolve_model_spec (syntax, name, keys: all create_model checks before the
//               model's factory runs), then every key read as each type with ModelConfig's
//               parsers. Building the model is left out: a default ResNet-50 alone takes a good
//               fraction of a second, and the factories' ranges have tests of their own.
//   transforms: a TransformPipeline and a batch transform from the text; a pipeline that builds
//               is applied to a small image when every number in the text is small (so each
//               input stays fast; large sizes are capped by the spec parser, tested elsewhere).
#include <cctype>
#include <limits>

#include "data/batch_transforms.h"
#include "data/sample_rng.h"
#include "data/transforms.h"
#include "engine/error.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "tools/fuzz/fuzz_common.h"

using namespace retort;

namespace {

template <class F>
void refused_or_done(F&& f) {
    try {
        f();
    } catch (const Error&) {
    }
}

void fuzz_model_spec(const std::string& text) {
    refused_or_done([&] {
        const ResolvedModelSpec spec = resolve_model_spec(text);
        const double big = std::numeric_limits<double>::max();
        for (const ModelKey& key : spec.entry.keys) {
            refused_or_done([&] {
                spec.config.get_int(key.name, std::numeric_limits<std::int64_t>::min(),
                                    std::numeric_limits<std::int64_t>::max());
            });
            refused_or_done([&] { spec.config.get_double(key.name, -big, big); });
            refused_or_done([&] { spec.config.get_choice(key.name, {key.default_value}); });
        }
    });
}

// Whether every run of digits in the text is a small number (a cheap image to transform).
bool only_small_numbers(const std::string& text) {
    std::size_t run = 0;
    for (char c : text) {
        run = std::isdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
        if (run > 2) return false;
    }
    return true;
}

void fuzz_transforms(const std::string& text) {
    refused_or_done([&] {
        const TransformPipeline pipeline(text);
        pipeline.describe();
        if (!only_small_numbers(text)) return;
        SampleRng rng = SampleRng::for_sample(1, 0, 0);
        const Tensor image = full({3, 7, 5}, 0.5f);
        const Tensor out = pipeline.apply(image, rng);
        fuzz::expect(out.dim() == 3, "a transform made an image that is not (C, H, W)");
    });
    refused_or_done([&] { make_batch_transform(text); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = fuzz::text_of(data, size);
    fuzz_model_spec(text);
    fuzz_transforms(text);
    return 0;
}
