// tests/model_check.h: helpers the model tests share: where fixtures live and how close two
// outputs are (max |actual - expected| / max |expected|, the measure the models are held to).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace retort::testing {

inline std::string fixture_path(const std::string& file) {
    return std::string(RETORT_FIXTURES_DIR) + "/" + file;
}

inline double relative_error(const Tensor& actual, const Tensor& expected) {
    REQUIRE_MESSAGE(actual.shape() == expected.shape(), "shape ", shape_str(actual.shape()),
                    " vs ", shape_str(expected.shape()));
    std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(a[i] - e[i]));
        scale = std::max(scale, std::abs(e[i]));
    }
    return diff / std::max(scale, 1e-30);
}

}  // namespace retort::testing
