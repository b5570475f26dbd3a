// tools/fuzz/fuzz_config.cpp: the run configuration reader (engine/io/config.h) on arbitrary
// text, with the largest schema retort has (retort distill's: training, [distill], every
// objective's section), then the typed, cross-checked reading a run does (read_distill_config,
// which includes read_train_config). The same text is also tried as one --set override.
//
// Beyond "a result or a retort::Error": Config::str() of what parsed must parse again to the same
// text (config.h promises that a run's saved configuration reads back unchanged).
#include "distill/distill_config.h"
#include "engine/error.h"
#include "engine/io/config.h"
#include "tools/fuzz/fuzz_common.h"

using namespace retort;

namespace {

const Config& schema() {
    static const Config c = distill_config_schema();
    return c;
}

void check_round_trip(const Config& parsed) {
    const std::string saved = parsed.str();
    Config again = schema();
    try {
        again.parse(saved, "saved config");
    } catch (const Error& e) {
        fuzz::finding(std::string("the saved config does not parse: ") + e.what());
    }
    fuzz::expect(again.str() == saved, "the saved config reads back differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = fuzz::text_of(data, size);
    Config config = schema();
    bool parsed = true;
    try {
        config.parse(text, "fuzz.cfg");
    } catch (const Error&) {
        parsed = false;
    }
    if (parsed) {
        check_round_trip(config);
        try {
            read_distill_config(config);
        } catch (const Error&) {
        }
    }
    Config overridden = schema();
    try {
        overridden.apply_override(text);
    } catch (const Error&) {
    }
    return 0;
}
