// distill/objectives/token_grid.cpp: tokens to a feature map (see token_grid.h).
#include "distill/objectives/token_grid.h"

#include <cmath>

#include "engine/error.h"
#include "engine/ops.h"

namespace retort {

namespace {

// The integer square root of n when n is a perfect square (n >= 1), else -1.
std::int64_t exact_sqrt(std::int64_t n) {
    if (n < 1) return -1;
    auto r = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    while (r * r > n) --r;
    while ((r + 1) * (r + 1) <= n) ++r;
    return r * r == n ? r : -1;
}

}  // namespace

std::int64_t infer_prefix_tokens(std::int64_t n, const std::string& what) {
    for (std::int64_t prefix = 0; prefix <= 2; ++prefix)
        if (exact_sqrt(n - prefix) > 0) return prefix;
    fail(what, ": ", n, " tokens are neither a square grid nor a square grid after 1 or 2 prefix "
         "tokens (class, distillation); set prefix_tokens, or pair a tap with a square patch grid");
}

Tensor tokens_to_map(const Tensor& tokens, std::int64_t prefix, const std::string& what) {
    require(tokens.defined() && tokens.dim() == 3, what, ": expected tokens (B, N, C), got ",
            tokens.defined() ? shape_str(tokens.shape()) : std::string("nothing"));
    const std::int64_t B = tokens.size(0), N = tokens.size(1), C = tokens.size(2);
    if (prefix < 0) prefix = infer_prefix_tokens(N, what);
    require(prefix < N, what, ": ", prefix, " prefix tokens leave no patch token of ", N);
    const std::int64_t side = exact_sqrt(N - prefix);
    require(side > 0, what, ": ", N, " tokens less ", prefix, " prefix tokens are ", N - prefix,
            ", not a square grid");
    const Tensor patches = prefix == 0 ? tokens : narrow(tokens, 1, prefix, N - prefix);
    // (B, h*w, C) -> (B, C, h*w) -> (B, C, h, w)
    return transpose(patches, 1, 2).reshape({B, C, side, side});
}

Tensor as_feature_map(const Tensor& feature, std::int64_t prefix, const std::string& what) {
    require(feature.defined() && (feature.dim() == 4 || feature.dim() == 3), what,
            ": expected a map (B, C, H, W) or tokens (B, N, C), got ",
            feature.defined() ? shape_str(feature.shape()) : std::string("nothing"));
    return feature.dim() == 4 ? feature : tokens_to_map(feature, prefix, what);
}

Shape feature_map_shape(const Shape& shape, std::int64_t prefix, const std::string& what) {
    require(shape.size() == 4 || shape.size() == 3, what,
            ": expected a map (B, C, H, W) or tokens (B, N, C), got ", shape_str(shape));
    if (shape.size() == 4) return shape;
    const std::int64_t N = shape[1];
    if (prefix < 0) prefix = infer_prefix_tokens(N, what);
    require(prefix < N, what, ": ", prefix, " prefix tokens leave no patch token of ", N);
    std::int64_t side = 1;
    while ((side + 1) * (side + 1) <= N - prefix) ++side;
    require(side * side == N - prefix, what, ": ", N, " tokens less ", prefix,
            " prefix tokens are ", N - prefix, ", not a square grid");
    return {shape[0], shape[2], side, side};
}

}  // namespace retort
