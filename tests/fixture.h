// tests/fixture.h: reads the plain-text tensor fixtures that tests/fixtures/*.py generate with
// PyTorch (format: see tests/fixtures/fixture_io.py). A fixture is a map name -> tensor, float64
// or int64.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "engine/engine.h"

namespace retort::testing {

class Fixture {
public:
    explicit Fixture(const std::string& file) {
        std::string path = std::string(RETORT_FIXTURES_DIR) + "/" + file;
        std::ifstream in(path);
        REQUIRE_MESSAGE(in.good(), "cannot open fixture ", path);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream head(line);
            std::string word, name, dtype;
            int rank = 0;
            head >> word >> name >> dtype >> rank;
            REQUIRE_MESSAGE(word == "tensor", "bad fixture line in ", path, ": ", line);
            Shape shape(rank);
            for (auto& s : shape) head >> s;
            REQUIRE(std::getline(in, line));
            std::istringstream values(line);
            const std::int64_t n = shape_numel(shape);
            if (dtype == "int64") {
                std::vector<std::int64_t> v(n);
                for (auto& x : v) values >> x;
                tensors_[name] = from_vector(v, shape);
            } else {
                std::vector<double> v(n);
                std::string token;  // strtod also reads the "inf", "-inf" and "nan" Python writes
                for (auto& x : v) {
                    values >> token;
                    x = std::strtod(token.c_str(), nullptr);
                }
                tensors_[name] = from_vector(v, shape);
            }
            REQUIRE_MESSAGE(!values.fail(), "fixture ", path, ": tensor ", name, " is short");
        }
    }

    // The tensor stored under `name` (float64 or int64).
    Tensor operator[](const std::string& name) const {
        auto it = tensors_.find(name);
        REQUIRE_MESSAGE(it != tensors_.end(), "fixture has no tensor named ", name);
        return it->second.clone();  // a fresh leaf each time: tests may set requires_grad
    }
    // The same, converted to float32 (for checking float32 kernels).
    Tensor f32(const std::string& name) const { return (*this)[name].to(DType::f32); }
    bool has(const std::string& name) const { return tensors_.count(name) > 0; }

private:
    std::map<std::string, Tensor> tensors_;
};

}  // namespace retort::testing
