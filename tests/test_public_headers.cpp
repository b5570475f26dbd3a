// tests/test_public_headers.cpp: the public API is what <retort/retort.h> and the five area
// headers reach. A header added to engine/, layers/, models/, data/ or distill/ must be reachable
// from its area's header (directly or through the headers it includes), unless it is one of the
// insides listed below, which each area header's comment names too.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kSource = RETORT_SOURCE_DIR;

// The quoted includes of a file, as paths relative to the source root ("engine/tensor.h").
std::vector<std::string> quoted_includes(const fs::path& file) {
    std::ifstream in(file);
    REQUIRE_MESSAGE(in.good(), "cannot read ", file.string());
    const std::regex include(R"(^\s*#\s*include\s+"([^"]+)\")");
    std::vector<std::string> out;
    std::string line;
    std::smatch m;
    while (std::getline(in, line))
        if (std::regex_search(line, m, include)) out.push_back(m[1]);
    return out;
}

// Every header reachable from `start` through quoted includes that exist in the source tree.
std::set<std::string> reachable(const std::string& start) {
    std::set<std::string> seen{start};
    std::vector<std::string> todo{start};
    while (!todo.empty()) {
        const std::string file = todo.back();
        todo.pop_back();
        for (const std::string& inc : quoted_includes(kSource / file))
            if (fs::exists(kSource / inc) && seen.insert(inc).second) todo.push_back(inc);
    }
    return seen;
}

bool is_inside(const std::string& header) {
    static const std::vector<std::string> folders = {"engine/cpu/", "engine/math/", "engine/cuda/",
                                                     "engine/kernels/", "distill/objectives/"};
    static const std::set<std::string> files = {"engine/cpu_allocator.h", "engine/ops/unary_op.h",
                                                "data/file_bytes.h", "data/jpeg_check.h",
                                                "data/sample_rng.h", "data/loader_bench.h"};
    for (const std::string& f : folders)
        if (header.starts_with(f)) return true;
    return files.count(header) > 0;
}

}  // namespace

TEST_CASE("public headers: every header of an area is reached from its area header or is listed as an inside") {
    const std::set<std::string> from_umbrella = reachable("tools/include/retort/retort.h");
    const std::vector<std::pair<std::string, std::string>> areas = {
        {"engine", "engine/engine.h"}, {"layers", "layers/layers.h"}, {"models", "models/models.h"},
        {"data", "data/data.h"},       {"distill", "distill/distill.h"}};
    int headers = 0;
    for (const auto& [folder, area_header] : areas) {
        CHECK_MESSAGE(from_umbrella.count(area_header) == 1, area_header, " is not in <retort/retort.h>");
        const std::set<std::string> public_api = reachable(area_header);
        for (const auto& entry : fs::recursive_directory_iterator(kSource / folder)) {
            if (entry.path().extension() != ".h") continue;
            const std::string header = fs::relative(entry.path(), kSource).generic_string();
            ++headers;
            if (is_inside(header)) continue;
            CHECK_MESSAGE(public_api.count(header) == 1, header, " is reached neither from ",
                          area_header, " nor listed as an inside of the library");
        }
    }
    CHECK(headers > 80);  // the walk found the tree
}
