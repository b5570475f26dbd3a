// distill/objectives/cnn_vit.h: what the objectives between a ViT and a CNN (fourier, cakd) share:
// their rows of the table, and the size a feature of either kind has as a map.
//
// Shapes: B batch, C channels, H x W a map, N tokens (prefix tokens included).
#pragma once

#include <cstdint>
#include <string>

#include "distill/objective.h"

namespace retort {

// The (C, H, W) that a feature of `shape` becomes as a map: (B, C, H, W) as it is, tokens
// (B, N, C) through tokens_to_map (token_grid.h) with `prefix` prefix tokens (-1: inferred). An
// Error naming `what` for any other rank or a token count that is not a square grid, the same
// errors that converting the tensor itself gives, so a connector sized from the setup's shapes
// fails at setup, not at the first batch.
Shape map_shape_of(const Shape& shape, std::int64_t prefix, const std::string& what);

ObjectiveEntry fourier_entry();
ObjectiveEntry cakd_entry();

}  // namespace retort
