// distill/objectives/cnn_vit_table.cpp: the rows of the objective table for the objectives between
// a ViT and a CNN (fourier, cakd), and the map shape they both size their connectors from.
#include "distill/objectives/cnn_vit.h"

#include "distill/objectives/token_grid.h"
#include "engine/error.h"

namespace retort {

void add_cnn_vit_objectives(std::vector<ObjectiveEntry>& table) {
    table.push_back(fourier_entry());
    table.push_back(cakd_entry());
}

Shape map_shape_of(const Shape& shape, std::int64_t prefix, const std::string& what) {
    require(shape.size() == 3 || shape.size() == 4, what,
            ": expected a map (B, C, H, W) or tokens (B, N, C), got ", shape_str(shape));
    // One sample of that shape, converted as a batch would be: the checks are token_grid's own.
    Shape one = shape;
    one[0] = 1;
    const Shape map = as_feature_map(Tensor::empty(one), prefix, what).shape();
    return {map[1], map[2], map[3]};
}

}  // namespace retort
