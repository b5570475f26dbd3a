// distill/objectives/tat.cpp: the target-aware transformer, `tat`.
//
// Global attention (maps of at most global_max positions; the ImageNet recipe's 7x7 layer4):
//     q = BN(conv3x3(f_s)),  v = BN(conv3x3(f_s))        student channels -> teacher channels
//     k = f_t                                             the teacher's map, not projected
//     A = softmax over j of (q_i . k_j)                   (HW x HW), one head, no 1/sqrt(d)
//     loss = mean over (B, C, H, W) of ((A v)_i - f_t,i)^2                        (nn.MSELoss)
// The teacher's feature at position i is regressed by a mixture of the student's values at ALL
// positions j, weighted by how well the student's query at i matches the teacher at j: the
// one-to-all matching that lets a student whose semantics sit elsewhere on the grid still match.
//
// Larger maps, the paper's hierarchical distillation (HW x HW attention grows as (HW)^2):
//   patch groups: q, k, v and f_t are cut alike into patches of ph x pw = (H / patches_h) x
//     (W / patches_w) positions (integer division), as many whole patches as fit, as torch's unfold
//     cuts them: patches_h x patches_w when those divide H and W, more otherwise (a 9x6 map with
//     4x4 patches gets 4x6 patches of 2x1), the last rows and columns dropped when they do not
//     fill a patch. The patches, in row-major order, are stacked along the channels into `groups`
//     groups of consecutive patches, and attention runs over the positions of one patch, a
//     position's vector being its features in every patch of the group. L_pg is the MSE of that
//     attention's output against f_t cut and stacked the same way.
//   anchor points: q, k, v and f_t are average-pooled with kernel (H / anchor_h, W / anchor_w)
//     (integer division) and stride = kernel; L_anchor is the global loss above on those maps.
//   loss = beta * L_pg + gamma * L_anchor.
//
// Paper: Lin, Xie, Wang, Yu, Chang, Liang, Wang, "Knowledge Distillation via the Target-aware
// Transformer", CVPR 2022.
// Reference followed: the authors' ImageNet code (github.com/sihaoevery/TaT):
// torchdistill/models/special.py AttnEmbed and Embed (query and value: conv 3x3 without bias +
// BatchNorm2d; key: nn.Identity) and torchdistill/losses/single.py MaskedFM (heads = 1, MSELoss);
// for the hierarchical parts the authors' segmentation code (github.com/sihaoevery/TaT-seg):
// distiller_tat.py (attn_type stack_attn: grid_tensor_seq + sub_loss with `heads` groups;
// distillation_anchorpoint) and its train_voc_resnet18.sh.
//
// Shapes: B batch; f_s (B, sC, sH, sW) or student tokens (B, N, sC); f_t (B, tC, tH, tW) or
// teacher tokens (B, N, tC) (a ViT's tokens are read as their patch grid, prefix tokens dropped:
// token_grid.h); H x W the common grid; ph x pw a patch, (H / ph) x (W / pw) patches.
//
// Where the references differ, and what is followed:
// - Connectors: ImageNet code 3x3 conv + BN for query and value, the key unprojected; the
//   segmentation code 1x1 conv + BN for all three (the teacher embedded too). Followed: ImageNet.
// - Batch statistics: the segmentation code embeds each sample on its own (BatchNorm statistics
//   of one sample) and averages the per-sample losses; here, as in the ImageNet code, the batch
//   goes through the BatchNorms together. The loss, a mean over every element, equals the mean of
//   the per-sample means either way.
// - Global or hierarchical: the ImageNet code is always global (7x7 maps), the segmentation code
//   always hierarchical (~129x129 maps). Here global_max chooses: global where the (HW)^2
//   attention is cheap, the two parts above it.
// - Hierarchy defaults: the VOC ResNet-18 script cuts a 129x129 map into 16x16 patches in 64
//   groups (4 patches each) with 32x32 anchors (kernel 4), beta 1, gamma 0.4. Maps above 64
//   positions in retort are 14x14 to 32x32, so the defaults keep the script's proportions instead
//   of its counts: 4x4 patches in 4 groups of 4, a 4x4 anchor grid, beta 1, gamma 0.4.
// - Different grids: the references pair equal grids (7x7 with 7x7). Here the larger map is
//   adaptive-average-pooled to the smaller before the connectors (RepDistiller's rule,
//   feature_map_common.h), so a ViT teacher's 14x14 tokens meet a CNN's 7x7 layer4.
// Recipe (the ImageNet configs, for the outer weights): CE 0.1 + TaT 0.2 with KD off; or with KD:
// CE 0.5 + KD 0.5 (T = 1) + TaT 0.1.
//
// Backward: through the ops it is built from (each records and saves what it needs); the teacher's
// map is a constant.
//
// Connector parameters: "query.conv2d.weight", "query.l2norm.*", "value.conv2d.weight",
// "value.l2norm.*" (the reference's Embed names), initialized as PyTorch initializes nn.Conv2d and
// nn.BatchNorm2d (the reference does not re-initialize them).
#include <cmath>

#include "distill/objectives/feature_map_common.h"
#include "distill/objectives/spatial.h"
#include "distill/objectives/token_grid.h"
#include "engine/ops.h"
#include "layers/conv2d.h"
#include "layers/norm.h"

namespace retort {
namespace {

struct TatOptions {
    double beta = 1.0, gamma = 0.4;
    std::int64_t global_max = 64;
    std::int64_t patches_h = 4, patches_w = 4, groups = 4;
    std::int64_t anchor_h = 4, anchor_w = 4;
};

// The reference's Embed: conv 3x3 (padding 1, no bias), then BatchNorm2d, which the reference
// names l2norm.
class TatEmbed : public UnaryModule {
public:
    TatEmbed(std::int64_t in_channels, std::int64_t out_channels) : UnaryModule("Embed") {
        Conv2dSpec spec{in_channels, out_channels};
        spec.kernel = 3;
        spec.padding = 1;
        spec.bias = false;
        conv2d = register_module("conv2d", std::make_shared<Conv2d>(spec));
        l2norm = register_module("l2norm", std::make_shared<BatchNorm2d>(out_channels));
    }
    Tensor forward(const Tensor& x) override { return (*l2norm)((*conv2d)(x)); }

    std::shared_ptr<Conv2d> conv2d;
    std::shared_ptr<BatchNorm2d> l2norm;
};

// A setup shape read as a map: channels and grid of (B, C, H, W), or of tokens (B, N, C).
struct Grid {
    std::int64_t channels, h, w;
};

Grid grid_of(const Shape& shape, const std::string& role) {
    require(shape.size() == 4 || shape.size() == 3, "tat: the ", role,
            " must be a map (B, C, H, W) or tokens (B, N, C), got ", shape_str(shape));
    if (shape.size() == 4) return {shape[1], shape[2], shape[3]};
    const std::int64_t prefix = infer_prefix_tokens(shape[1], "tat: the " + role);
    const double patches = static_cast<double>(shape[1] - prefix);
    const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(patches)));
    return {shape[2], side, side};
}

// (B, heads * d, h, w) -> (B, heads, h * w, d): head g holds channels [g d, (g + 1) d).
Tensor split_heads(const Tensor& x, std::int64_t heads) {
    const std::int64_t B = x.size(0), C = x.size(1), positions = x.size(2) * x.size(3);
    return transpose(x.reshape({B, heads, C / heads, positions}), 2, 3);
}

// MSE between softmax(q k^T) v and the target, attention within each head. The MSE is a mean over
// all elements, so it is taken in the split layout: the same elements, reordered alike.
Tensor attention_loss(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& target,
                      std::int64_t heads) {
    Tensor similarity = matmul(split_heads(q, heads), transpose(split_heads(k, heads), 2, 3));
    Tensor out = matmul(softmax(similarity, -1), split_heads(v, heads));
    return mse_loss(out, split_heads(target, heads));
}

// The patch grid of an h x w map cut into patches of (h / patches_h) x (w / patches_w).
struct PatchGrid {
    std::int64_t ph, pw;  // a patch's size
    std::int64_t n, m;    // patches along H and W
};

PatchGrid patch_grid(std::int64_t h, std::int64_t w, std::int64_t patches_h,
                     std::int64_t patches_w) {
    const std::int64_t ph = h / patches_h, pw = w / patches_w;
    return {ph, pw, h / ph, w / pw};
}

// (B, C, H, W) -> (B, n m C, ph, pw): the n x m patches (patch p = row * m + column), stacked
// along the channels patch by patch; what is left beyond whole patches is dropped.
Tensor stack_patches(const Tensor& x, const PatchGrid& g) {
    const std::int64_t B = x.size(0), C = x.size(1), n = g.n, m = g.m, ph = g.ph, pw = g.pw;
    Tensor whole = x;
    if (n * ph != x.size(2)) whole = narrow(whole, 2, 0, n * ph);
    if (m * pw != x.size(3)) whole = narrow(whole, 3, 0, m * pw);
    Tensor patches = whole.reshape({B, C, n, ph, m, pw});
    return permute(patches, {0, 2, 4, 1, 3, 5}).reshape({B, n * m * C, ph, pw});
}

class TargetAwareTransformer : public Objective {
public:
    TargetAwareTransformer(const ObjectiveSetup& setup, const TatOptions& options)
        : Objective("TargetAwareTransformer"), pair_(setup.pairs.at(0)), o_(options) {
        const Grid s = grid_of(pair_.student_shape, "student feature");
        const Grid t = grid_of(pair_.teacher_shape, "teacher feature");
        require((s.h >= t.h && s.w >= t.w) || (s.h <= t.h && s.w <= t.w), "tat: maps of ", s.h,
                "x", s.w, " (student) and ", t.h, "x", t.w,
                " (teacher) cannot be pooled to one size (one is larger in H, the other in W)");
        check_hierarchy_fits(std::min(s.h, t.h), std::min(s.w, t.w));
        query = register_module("query", std::make_shared<TatEmbed>(s.channels, t.channels));
        value = register_module("value", std::make_shared<TatEmbed>(s.channels, t.channels));
    }

    Tensor forward(const ObjectiveInputs& in) override {
        check_feature_pairs(in, 1, "tat");
        const FeaturePair& p = in.features[0];
        require_setup_shape(p.student, pair_.student_shape, "tat", "the student feature");
        require_setup_shape(p.teacher, pair_.teacher_shape, "tat", "the teacher feature");
        const Tensor student = as_feature_map(p.student, -1, "tat: the student feature");
        const Tensor teacher = as_feature_map(p.teacher.detach(), -1, "tat: the teacher feature");
        auto [s, t] = pool_to_common_size(student, teacher, "tat", "the student and teacher maps");
        const Tensor q = (*query)(s), v = (*value)(s);
        if (t.size(2) * t.size(3) <= o_.global_max) return attention_loss(q, t, v, t, 1);
        return o_.beta * patch_group_loss(q, t, v, t) + o_.gamma * anchor_loss(q, t, v, t);
    }

    std::shared_ptr<TatEmbed> query, value;

private:
    // Above global_max positions the map must hold at least one position per patch and anchor,
    // and the groups must take whole patches (the reference's rearrange would split one).
    void check_hierarchy_fits(std::int64_t h, std::int64_t w) const {
        if (h * w <= o_.global_max) return;
        require(h >= o_.patches_h && w >= o_.patches_w, "tat: the ", h, "x", w,
                " map (above global_max = ", o_.global_max, " positions) is too small for ",
                o_.patches_h, "x", o_.patches_w, " patches (the patch groups); lower patches_h / ",
                "patches_w or raise global_max");
        require(h >= o_.anchor_h && w >= o_.anchor_w, "tat: the ", h, "x", w,
                " map (above global_max = ", o_.global_max, " positions) is too small for a ",
                o_.anchor_h, "x", o_.anchor_w, " anchor grid; lower anchor_h / anchor_w or raise ",
                "global_max");
        const PatchGrid g = patch_grid(h, w, o_.patches_h, o_.patches_w);
        require((g.n * g.m) % o_.groups == 0, "tat: groups = ", o_.groups, " must divide the ",
                g.n, "x", g.m, " = ", g.n * g.m, " patches of ", g.ph, "x", g.pw, " that the ", h,
                "x", w, " map is cut into (each group stacks whole patches)");
    }

    Tensor patch_group_loss(const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& f_t) const {
        const PatchGrid g = patch_grid(q.size(2), q.size(3), o_.patches_h, o_.patches_w);
        auto stack = [&](const Tensor& x) { return stack_patches(x, g); };
        return attention_loss(stack(q), stack(k), stack(v), stack(f_t), o_.groups);
    }

    Tensor anchor_loss(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& f_t) const {
        Pool2dOptions pool;
        pool.kernel = {q.size(2) / o_.anchor_h, q.size(3) / o_.anchor_w};
        auto anchors = [&](const Tensor& x) { return avg_pool2d(x, pool); };
        return attention_loss(anchors(q), anchors(k), anchors(v), anchors(f_t), 1);
    }

    ObjectiveSetup::Pair pair_;
    TatOptions o_;
};

}  // namespace

ObjectiveEntry tat_entry() {
    ObjectiveEntry e;
    e.name = "tat";
    e.paper = "Lin et al. 2022, Knowledge Distillation via the Target-aware Transformer";
    e.reference = "sihaoevery/TaT: torchdistill/models/special.py AttnEmbed, "
                  "torchdistill/losses/single.py MaskedFM; sihaoevery/TaT-seg: distiller_tat.py";
    e.taps = "one feature pair, the last stage (the reference: layer4); ViT tokens are read as "
             "their patch grid (a ViT teacher: pairs = feature_map:patch_tokens)";
    e.defaults = "beta=1, gamma=0.4, global_max=64, patches_h=4, patches_w=4, groups=4, "
                 "anchor_h=4, anchor_w=4";
    e.default_taps = "feature_map";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config& c) {
        c.declare_double("tat", "beta", 1.0, 0.0, 1000.0,
                         "weight of the patch-group loss (maps above global_max positions)");
        c.declare_double("tat", "gamma", 0.4, 0.0, 1000.0,
                         "weight of the anchor-point loss (maps above global_max positions)");
        c.declare_int("tat", "global_max", 64, 1, 1 << 30,
                      "maps of at most this many positions (H * W) get one global attention; "
                      "larger maps the patch-group and anchor-point parts");
        c.declare_int("tat", "patches_h", 4, 1, 4096,
                      "patch-group distillation: patches along H (patch height H / patches_h)");
        c.declare_int("tat", "patches_w", 4, 1, 4096,
                      "patch-group distillation: patches along W (patch width W / patches_w)");
        c.declare_int("tat", "groups", 4, 1, 1 << 24,
                      "patch-group distillation: groups the patches are stacked into (must divide "
                      "the number of patches); attention runs within a group");
        c.declare_int("tat", "anchor_h", 4, 1, 4096,
                      "anchor-point distillation: anchors along H (pooling kernel H / anchor_h)");
        c.declare_int("tat", "anchor_w", 4, 1, 4096,
                      "anchor-point distillation: anchors along W (pooling kernel W / anchor_w)");
    };
    e.create = [](const Config& c, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        TatOptions o;
        o.beta = c.get_double("tat.beta");
        o.gamma = c.get_double("tat.gamma");
        o.global_max = c.get_int("tat.global_max");
        o.patches_h = c.get_int("tat.patches_h");
        o.patches_w = c.get_int("tat.patches_w");
        o.groups = c.get_int("tat.groups");
        o.anchor_h = c.get_int("tat.anchor_h");
        o.anchor_w = c.get_int("tat.anchor_w");
        return std::make_shared<TargetAwareTransformer>(setup, o);
    };
    return e;
}

}  // namespace retort
