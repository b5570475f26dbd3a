// distill/objectives/cakd.cpp: cross-architecture knowledge distillation from a ViT teacher to a
// CNN student, `cakd`: the student's map is projected into the teacher's attention space (the
// partially cross attention projector, PCA) and into its token space (the group-wise linear
// projector, GL), and matched there.
//
//   g x g        the teacher's patch grid (N = g^2 patch tokens); both student maps are
//                adaptive-average-pooled to it (which repeats positions when a map is smaller)
//   q, k, v      = Conv3x3(s_a) each (sC -> tC channels, padding 1, no bias), split into the
//                teacher's heads: (B, heads, N, d), d = tC / heads (channel c -> head c / d)
//   A_s          = softmax(q k^T / sqrt(d))                               (B, heads, N, N)
//   A_t          = the teacher's attention probabilities (tap attn.L) without the prefix
//                  tokens' rows and columns, each row renormalized to sum 1
//   R(x)         = x x^T / sqrt(d) per head: relations between the tokens' values
//   X_t          = the teacher's patch tokens (tap tokens.L, prefix dropped) (B, N, tC)
//   GL(s_t)      = the pooled student map as N positions (B, N, sC); the grid is cut into blocks
//                  of group_size x group_size positions (the last row and column of blocks
//                  smaller), and each block has its own Linear(sC -> tC)
//   loss = attn_weight    * MSE(A_s, A_t)
//        + value_weight   * MSE(R(v), R(heads of X_t))
//        + feature_weight * MSE(GL(s_t), X_t)
// With heads = average (default) A and R are averaged over the heads before the MSE; with
// heads = each they are matched head by head.
//
// Paper: Liu, Cao, Li, Hu, Ding, Li, "Cross-Architecture Knowledge Distillation", ACCV 2022
// (arXiv 2207.05273): eq. (1)-(4) the PCA projector, L_proj1 = ||Attn_T - PCAttn_S||^2 +
// ||V_T V_T^T / sqrt(d) - V_S V_S^T / sqrt(d)||^2; eq. (5)-(6) the GL projector,
// L_proj2 = ||h_T - h'_S||^2; eq. (7)-(10) the multi-view robust training.
// Reference code: the authors' released "key codes" (CAKD, cakd_modified_files/resnet.py:
// Attention and GLProj; dist_train_cakd.py), which differ from the paper in places.
//
// Shapes: B batch; sC, tC the student's and teacher's channels; heads, d = tC / heads; N patch
// tokens on a g x g grid; the attention tap has N + prefix tokens (class, distillation).
//
// Pairs: two, naming one student map and one teacher block L: "layer3:attn.L" and
// "layer3:tokens.L" (in either order; the one whose teacher tensor is (B, heads, N, N) is the
// attention pair). The attention pair's student map feeds the PCA projector, the tokens pair's the
// GL projector (both the same map in the paper). Default: layer3:attn.11, layer3:tokens.11, the
// paper's ResNet layer3 (14 x 14 for 224 pixels, the grid of a /16 ViT) and the last block of the
// 12-block ViTs and DeiTs retort builds; set [cakd] pairs for other depths or stages.
//
// Where this follows which reference, and why:
//  - Projector: the paper's three 3x3 convolutions (the released code uses one Linear to q, k, v,
//    without bias; no bias here either), PyTorch's default initialization.
//  - Attention target: the N x N maps. The paper writes the projected attention with its product
//    by v (PCAttn_S = softmax(q k^T / sqrt(d)) v, eq. 2-3) next to the value relations; the
//    released code matches the maps and the value relations, as here, but as logits
//    q k^T / sqrt(d), which the tap does not hold: here the teacher's probabilities (attn.L) are
//    matched by the student's softmax. The teacher's rows lose the class token's column, so they
//    are renormalized: the student's rows are distributions over the N patch tokens, and so are
//    the targets.
//  - Heads: the paper's Attn_T has a head dim; the released code averages the heads of both
//    networks (16 student heads against 12) before the MSE: heads = average (default), or each.
//  - Values: the teacher's values V_T of block L are not a tap. The value term uses the block's
//    output tokens (tokens.L) in their place, split into the same heads: R(X_t) compares how
//    the teacher's tokens relate, as V_T V_T^T does for its values (a documented deviation).
//  - "Partially cross" (eq. 3: entries of the student's q, k, v replaced at random by the
//    teacher's) needs the teacher's q, k, v, which are not taps; the released code omits it too.
//    The student's own attention is matched.
//  - GL: blocks of 4 x 4 positions with one Linear each, as the released GLProj (16 Linears on
//    14 x 14, 4 on 7 x 7); its other grids use one shared Linear, here they get blocks too
//    (group_size >= g gives the single Linear). No dropout (the paper mentions one, the code has
//    none). The released code's extra terms (MSE of the logits and of a projected class token)
//    are other objectives in retort (kd; pairs on pre_logits).
//  - Weights: the released code's 0.2 (attention), 0.05 (value relations) and 0.05 (GL) are the
//    defaults. The paper writes the plain sum (1, 1, 1); with it the value term, quartic in the
//    projector's weights, drove a short SGD run (lr 0.05) to an infinite loss, where the released
//    weights trained smoothly. Its scale follows the teacher's residual stream (tokens.L, not
//    the values): a from-scratch 6-block ViT on Fashion-MNIST gave a value term near 2e4 at the
//    start, and SGD at lr 0.1 diverged even at the released weights; value_weight = 0 or
//    gradient clipping trains. The released code also ramps its whole distillation weight from 0
//    at epoch 25 to 0.2 at epoch 75; here the outer weight (`objectives = cakd:W`) is constant.
//    Every term is an MSE mean (nn.MSELoss).
//  - Robust training (multi-view generator + adversarial discriminator, eq. 7-9): not available.
//    It needs several transformed views of each input image run through both networks and a
//    discriminator trained by its own optimizer step, and an objective sees one batch of
//    features and returns one loss; robust = on is refused with that reason.
//
// Backward: through the ops it is built from (conv2d, matmul, softmax, linear, index_select,
// adaptive pooling); the teacher's tensors carry no graph.
//
// Connector parameters: query.weight, key.weight, value.weight (tC, sC, 3, 3);
// group_linears.<i>.weight (tC, sC), group_linears.<i>.bias (tC), blocks in row-major order.
#include <cmath>
#include <optional>
#include <vector>

#include "distill/objectives/cnn_vit.h"
#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/token_grid.h"
#include "engine/ops.h"
#include "layers/conv2d.h"
#include "layers/linear.h"

namespace retort {
namespace {

struct CakdOptions {
    double attn_weight, value_weight, feature_weight;
    std::int64_t group_size;
    bool average_heads;
    std::int64_t prefix_tokens;  // -1: inferred from each tensor's token count
};

bool is_attention(const Shape& s) { return s.size() == 4 && s[2] == s[3]; }

std::string shapes_of(const std::vector<ObjectiveSetup::Pair>& pairs) {
    std::string text;
    for (const auto& p : pairs) text += (text.empty() ? "" : " and ") + shape_str(p.teacher_shape);
    return text;
}

std::shared_ptr<Conv2d> conv3x3(std::int64_t in, std::int64_t out) {
    return std::make_shared<Conv2d>(Conv2dSpec{
        .in_channels = in, .out_channels = out, .kernel = 3, .padding = 1, .bias = false});
}

// The positions (row-major on a side x side grid) of each size x size block, blocks row-major.
std::vector<std::vector<std::int64_t>> grid_blocks(std::int64_t side, std::int64_t size) {
    std::vector<std::vector<std::int64_t>> blocks;
    for (std::int64_t r0 = 0; r0 < side; r0 += size)
        for (std::int64_t c0 = 0; c0 < side; c0 += size) {
            std::vector<std::int64_t> block;
            for (std::int64_t r = r0; r < std::min(r0 + size, side); ++r)
                for (std::int64_t c = c0; c < std::min(c0 + size, side); ++c)
                    block.push_back(r * side + c);
            blocks.push_back(block);
        }
    return blocks;
}

class Cakd : public Objective {
public:
    Cakd(const ObjectiveSetup& setup, const CakdOptions& options)
        : Objective("CAKD"), options_(options) {
        require(options_.attn_weight > 0 || options_.value_weight > 0 ||
                    options_.feature_weight > 0,
                "cakd: attn_weight, value_weight and feature_weight are all 0: nothing to distill");
        find_pairs(setup.pairs);
        const ObjectiveSetup::Pair& attn = setup.pairs[attn_pair_];
        const ObjectiveSetup::Pair& tokens = setup.pairs[tokens_pair_];
        attention_shape_ = attn;
        tokens_shape_ = tokens;

        heads_ = attn.teacher_shape[1];
        const std::int64_t n = attn.teacher_shape[2];
        side_ = map_shape_of({1, n, 1}, options_.prefix_tokens,
                             "cakd: pair '" + attn.name + "': the teacher's attention map")[1];
        const Shape t = map_shape_of(tokens.teacher_shape, options_.prefix_tokens,
                                     "cakd: pair '" + tokens.name + "': the teacher's tokens");
        require(t[1] == side_, "cakd: the attention map of pair '", attn.name, "' covers a ", side_,
                "x", side_, " patch grid but the tokens of pair '", tokens.name, "' a ", t[1], "x",
                t[2], " one; take both from the same block (attn.L and tokens.L)");
        channels_ = t[0];
        require(channels_ % heads_ == 0, "cakd: the teacher's ", channels_,
                " token channels do not split into its ", heads_, " attention heads");
        head_dim_ = channels_ / heads_;

        const std::int64_t sa = student_channels(attn), st = student_channels(tokens);
        query_ = register_module("query", conv3x3(sa, channels_));
        key_ = register_module("key", conv3x3(sa, channels_));
        value_ = register_module("value", conv3x3(sa, channels_));

        group_linears_ = register_module("group_linears", std::make_shared<ModuleList>());
        std::vector<std::int64_t> order;
        for (const auto& block : grid_blocks(side_, options_.group_size)) {
            group_linears_->push_back(std::make_shared<Linear>(st, channels_));
            group_index_.push_back(from_vector(block));
            order.insert(order.end(), block.begin(), block.end());
        }
        group_order_ = from_vector(order);
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check_feature_pairs(in, 2, "cakd");
        const FeaturePair& attn = in.features[attn_pair_];
        const FeaturePair& tokens = in.features[tokens_pair_];
        check_shapes(attn, attention_shape_);
        check_shapes(tokens, tokens_shape_);

        Tensor teacher_tokens =
            patch_tokens(tokens.teacher, "pair '" + tokens.name + "': the teacher's tokens");
        Tensor total;
        auto add = [&](double weight, const Tensor& term) {
            Tensor weighted = term * weight;
            total = total.defined() ? total + weighted : weighted;
        };
        if (options_.attn_weight > 0 || options_.value_weight > 0) {
            Tensor s = student_grid(attn.student, "pair '" + attn.name + "': the student feature");
            if (options_.attn_weight > 0)
                add(options_.attn_weight, mse_loss(over_heads(student_attention(s)),
                                                   over_heads(teacher_attention(attn.teacher))));
            if (options_.value_weight > 0)
                add(options_.value_weight,
                    mse_loss(over_heads(relations(map_heads((*value_)(s)))),
                             over_heads(relations(token_heads(teacher_tokens)))));
        }
        if (options_.feature_weight > 0) {
            Tensor s =
                student_grid(tokens.student, "pair '" + tokens.name + "': the student feature");
            add(options_.feature_weight,
                mse_loss(group_linear(s), index_select(teacher_tokens, 1, group_order_.to(teacher_tokens.device()))));
        }
        return total;
    }

private:
    // One pair's teacher is an attention map (B, heads, N, N), the other's tokens (B, N, C).
    void find_pairs(const std::vector<ObjectiveSetup::Pair>& pairs) {
        const bool first = is_attention(pairs[0].teacher_shape);
        const bool second = is_attention(pairs[1].teacher_shape);
        require(first != second && (first ? pairs[1] : pairs[0]).teacher_shape.size() == 3,
                "cakd: needs one pair whose teacher tap is an attention map (B, heads, N, N), e.g. "
                "layer3:attn.11, and one whose teacher tap is tokens (B, N, C) of the same block, "
                "e.g. layer3:tokens.11; got teacher shapes ", shapes_of(pairs));
        attn_pair_ = first ? 0 : 1;
        tokens_pair_ = 1 - attn_pair_;
    }

    std::int64_t student_channels(const ObjectiveSetup::Pair& pair) const {
        return map_shape_of(pair.student_shape, options_.prefix_tokens,
                            "cakd: pair '" + pair.name + "': the student feature")[0];
    }

    static void check_shapes(const FeaturePair& pair, const ObjectiveSetup::Pair& setup) {
        require_setup_shape(pair.student, setup.student_shape, "cakd",
                            "pair '" + pair.name + "': the student feature");
        require_setup_shape(pair.teacher, setup.teacher_shape, "cakd",
                            "pair '" + pair.name + "': the teacher feature");
    }

    // The student's feature as a map on the teacher's patch grid.
    Tensor student_grid(const Tensor& student, const std::string& what) const {
        Tensor m = as_feature_map(student, options_.prefix_tokens, "cakd: " + what);
        if (m.size(2) == side_ && m.size(3) == side_) return m;
        return adaptive_avg_pool2d(m, {side_, side_});
    }

    // Tokens (B, N + prefix, C) -> the patch tokens (B, N, C), in grid order.
    Tensor patch_tokens(const Tensor& tokens, const std::string& what) const {
        Tensor m = as_feature_map(tokens, options_.prefix_tokens, "cakd: " + what);
        return transpose(m.reshape({m.size(0), channels_, side_ * side_}), 1, 2);
    }

    // (B, tC, g, g) -> (B, heads, N, d)
    Tensor map_heads(const Tensor& m) const {
        return transpose(m.reshape({m.size(0), heads_, head_dim_, side_ * side_}), 2, 3);
    }
    // (B, N, tC) -> (B, heads, N, d)
    Tensor token_heads(const Tensor& x) const {
        return permute(x.reshape({x.size(0), side_ * side_, heads_, head_dim_}), {0, 2, 1, 3});
    }

    double scale() const { return 1.0 / std::sqrt(static_cast<double>(head_dim_)); }

    Tensor student_attention(const Tensor& s) {
        Tensor q = map_heads((*query_)(s)) * scale();
        Tensor k = map_heads((*key_)(s));
        return softmax(matmul(q, transpose(k, -2, -1)), -1);
    }

    Tensor relations(const Tensor& x) const { return matmul(x, transpose(x, -2, -1)) * scale(); }

    // The teacher's attention among its patch tokens, rows renormalized.
    Tensor teacher_attention(const Tensor& a) const {
        const std::int64_t n = side_ * side_, prefix = a.size(2) - n;
        Tensor patches = prefix == 0 ? a : narrow(narrow(a, 2, prefix, n), 3, prefix, n);
        return patches / clamp(sum(patches, {-1}, true), 1e-12, std::nullopt);
    }

    Tensor over_heads(const Tensor& x) const { return options_.average_heads ? mean(x, {1}) : x; }

    // (B, sC, g, g) -> (B, N, tC), positions in block order (group_order_).
    Tensor group_linear(const Tensor& s) const {
        Tensor positions = transpose(s.reshape({s.size(0), s.size(1), side_ * side_}), 1, 2);
        std::vector<Tensor> parts;
        for (std::size_t i = 0; i < group_index_.size(); ++i)
            parts.push_back(group_linears_->apply(
                i, index_select(positions, 1, group_index_[i].to(positions.device()))));
        return concat(parts, 1);
    }

    CakdOptions options_;
    std::size_t attn_pair_ = 0, tokens_pair_ = 1;
    ObjectiveSetup::Pair attention_shape_, tokens_shape_;
    std::int64_t heads_ = 0, side_ = 0, channels_ = 0, head_dim_ = 0;
    std::shared_ptr<Conv2d> query_, key_, value_;
    std::shared_ptr<ModuleList> group_linears_;
    std::vector<Tensor> group_index_;  // the grid positions of each block
    Tensor group_order_;               // all of them, block after block
};

}  // namespace

ObjectiveEntry cakd_entry() {
    ObjectiveEntry e;
    e.name = "cakd";
    e.paper = "Liu et al. 2022, Cross-Architecture Knowledge Distillation (ACCV)";
    e.reference = "the authors' released code (CAKD: cakd_modified_files/resnet.py Attention, "
                  "GLProj; dist_train_cakd.py), followed where it matches the paper";
    e.taps = "two pairs from one student map and one teacher block L: map:attn.L (attention "
             "probabilities) and map:tokens.L (tokens)";
    e.defaults = "attn_weight=0.2, value_weight=0.05, feature_weight=0.05, group_size=4, "
                 "heads=average, prefix_tokens=-1, robust=off";
    e.default_taps = "layer3:attn.11, layer3:tokens.11";
    e.min_pairs = e.max_pairs = 2;
    e.declare = [](Config& c) {
        c.declare_double("cakd", "attn_weight", 0.2, 0.0, 1e6,
                         "weight of the MSE between the student's projected attention and the "
                         "teacher's (the released code: 0.2; the paper's sum: 1)");
        c.declare_double("cakd", "value_weight", 0.05, 0.0, 1e6,
                         "weight of the MSE between the relations v v^T / sqrt(d) of the "
                         "projected values and of the teacher block's tokens (the released code: "
                         "0.05; the paper's sum: 1)");
        c.declare_double("cakd", "feature_weight", 0.05, 0.0, 1e6,
                         "weight of the MSE between the group-wise linear projection and the "
                         "teacher's patch tokens (the released code: 0.05; the paper's sum: 1)");
        c.declare_int("cakd", "group_size", 4, 1, 4096,
                      "the GL projector's blocks: group_size x group_size grid positions share one "
                      "Linear (the paper: 4)");
        c.declare_string("cakd", "heads", "average",
                         "average: attention and relations averaged over the heads before the "
                         "MSE (the released code); each: matched head by head",
                         {"average", "each"});
        c.declare_int("cakd", "prefix_tokens", -1, -1, 64,
                      "prefix tokens (class, distillation) of the teacher's taps; -1 infers them "
                      "from the token count (N, N - 1 or N - 2 a square)");
        c.declare_string("cakd", "robust", "off",
                         "the paper's multi-view adversarial training; on is refused: it needs "
                         "transformed views of the input images and a discriminator with its own "
                         "optimizer step, which an objective cannot do",
                         {"on", "off"});
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        require(c.get_string("cakd.robust") == "off",
                "cakd: robust = on (the paper's multi-view robust training) is not available: it "
                "runs several transformed views of each input image through both networks and "
                "trains a discriminator with its own optimizer step, while an objective sees one "
                "batch of features and returns one loss; set robust = off");
        CakdOptions o;
        o.attn_weight = c.get_double("cakd.attn_weight");
        o.value_weight = c.get_double("cakd.value_weight");
        o.feature_weight = c.get_double("cakd.feature_weight");
        o.group_size = c.get_int("cakd.group_size");
        o.average_heads = c.get_string("cakd.heads") == "average";
        o.prefix_tokens = c.get_int("cakd.prefix_tokens");
        return std::make_shared<Cakd>(setup, o);
    };
    return e;
}

}  // namespace retort
