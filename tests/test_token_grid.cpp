// tests/test_token_grid.cpp: a ViT's tokens as a feature map: the prefix inferred from the token
// count, the grid order (row-major, as timm flattens its patch embedding), the gradient, and the
// counts that are no grid.
#include <doctest/doctest.h>

#include "distill/objectives/token_grid.h"
#include "engine/engine.h"
#include "tests/gradcheck.h"

using namespace retort;

TEST_CASE("tokens become a map: prefix tokens dropped, patches in row-major grid order") {
    CHECK(infer_prefix_tokens(49, "t") == 0);
    CHECK(infer_prefix_tokens(50, "t") == 1);
    CHECK(infer_prefix_tokens(51, "t") == 2);
    CHECK(infer_prefix_tokens(1, "t") == 0);
    CHECK_THROWS_WITH_AS(infer_prefix_tokens(53, "fourier: teacher feature 'tokens.5'"),
                         doctest::Contains("fourier: teacher feature 'tokens.5': 53 tokens are neither a "
                                           "square grid nor a square grid after 1 or 2 prefix tokens"),
                         Error);

    // B = 2, N = 1 + 3*3, C = 4; token t of image b holds the value 100 b + 10 t + c in channel c.
    Tensor tokens = Tensor::empty({2, 10, 4}, DType::f64);
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t t = 0; t < 10; ++t)
            for (std::int64_t c = 0; c < 4; ++c)
                tokens.data<double>()[(b * 10 + t) * 4 + c] = 100.0 * b + 10.0 * t + c;
    const Tensor map = tokens_to_map(tokens, -1, "t");
    REQUIRE(map.shape() == Shape{2, 4, 3, 3});
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t c = 0; c < 4; ++c)
            for (std::int64_t y = 0; y < 3; ++y)
                for (std::int64_t x = 0; x < 3; ++x)
                    CHECK(map.data<double>()[((b * 4 + c) * 3 + y) * 3 + x] ==
                          100.0 * b + 10.0 * (1 + y * 3 + x) + c);
    // an explicit prefix of 0 on 9 + 0 tokens, and a map passes unchanged
    CHECK(tokens_to_map(narrow(tokens, 1, 1, 9), 0, "t").shape() == Shape{2, 4, 3, 3});
    const Tensor nchw = rand({2, 3, 4, 5});
    CHECK(as_feature_map(nchw, -1, "t").raw_data() == nchw.raw_data());

    CHECK_THROWS_WITH_AS(tokens_to_map(tokens, 2, "tat: teacher"),
                         doctest::Contains("tat: teacher: 10 tokens less 2 prefix tokens are 8, not a square grid"),
                         Error);
    CHECK_THROWS_WITH_AS(tokens_to_map(tokens, 10, "x"), doctest::Contains("leave no patch token"), Error);
    CHECK_THROWS_WITH_AS(as_feature_map(rand({2, 3}), -1, "x"),
                         doctest::Contains("expected a map (B, C, H, W) or tokens (B, N, C), got (2, 3)"),
                         Error);

    CHECK(testing::gradcheck([](const std::vector<Tensor>& in) { return tokens_to_map(in[0], 1, "t"); },
                             {testing::leaf({2, 5, 3}, 7)}));
}
