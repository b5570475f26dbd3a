// distill/objectives/manifold.cpp: fine-grained manifold distillation, `manifold`.
//
// Each token is l2-normalized over its channels, F (B, N, C); relations are cosine similarities:
//
//   intra-image    M_patch(F)  = F_b F_b^T for each image b                          (B, N, N)
//   inter-image    M_sample(F) = G_n G_n^T for each token position n, G = F as (N, B, C)  (N, B, B)
//   random         M_rand(F)   = R R^T, R = K' rows of F viewed as (B N, C), sampled  (K', K')
//
//   loss_pair = w_sample * mean((M_sample(F_t) - M_sample(F_s))^2)
//             + w_patch  * mean((M_patch(F_t)  - M_patch(F_s))^2)
//             + w_rand   * mean((M_rand(F_t)   - M_rand(F_s))^2)      (same rows R on both sides)
//   loss      = mean of loss_pair over the pairs
//
// Paper: Hao, Guo, Jia, Han, Tang, Zhang, Hu, Wang, "Learning Efficient Vision Transformers via
// Fine-Grained Manifold Distillation", NeurIPS 2022. Reference code followed:
// huawei-noah/Efficient-Computing, Distillation/ManifoldKD/losses.py (mf_loss, layer_mf_loss).
// Defaults are those of its README's command (DeiT-Ti student, CaiT-S24 teacher, ImageNet; the
// paper gives no CIFAR-100 setting): w_sample 0.1, w_patch 4, w_rand 0.2, K 192. The reference's
// outer factor `distillation-beta` (1) is this objective's weight in `objectives =`, and its
// DeiT term is deit_soft / deit_hard.
//
// Shapes: one or more pairs of tokens (B, N, C), the tokens.L taps; C may differ between student
// and teacher (relations are N x N, B x B and K' x K'). A side may also be a feature map
// (B, C, H, W), read as H W tokens in row-major order (as timm flattens patches), so a CNN block
// with the other side's patch grid can be paired (the reference pairs ViTs only).
// K' = min(K, B N): torch.randperm(B N)[:K] yields fewer rows when B N < K.
//
// Followed from the reference, and where it is silent:
//  - "Frobenius norm" terms are means of squared differences, as the code (the paper writes
//    squared Frobenius norms; the code divides each by the matrix's entry count).
//  - Token counts: the reference drops the student's first Ns - Nt tokens (its DeiT student has
//    class and distillation tokens, its CaiT teacher's blocks none). Here the side with more
//    tokens drops its leading excess, which must be at most 2 (prefix tokens: class,
//    distillation); a larger difference is an Error. Equal counts keep every token, prefix
//    tokens included, as the reference. Its optional patch merging (max_patch_num, off by
//    default) is not provided.
//  - Sampling: the reference draws torch.randperm(B N)[:K] once per pair per step. Here each pair
//    draws randperm(B N) from the default generator (seeded per step by the trainer), in pair
//    order, and keeps the first K'. ObjectiveInputs::extras["manifold.sample"], int64 (P, K'),
//    replaces the draws (row p for pair p), so a fixture computed elsewhere is reproduced exactly.
// Backward: through the normalization, the relation products and the row selection of the
// student's tokens; the teacher's relations are constants.
#include <algorithm>
#include <cstdlib>

#include "distill/objectives/relation.h"
#include "distill/objectives/vit.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace retort {
namespace {

// Why 2: a ViT carries a class token, a DeiT also a distillation token; beyond that the two
// sides are not one set of patches.
constexpr std::int64_t kMaxPrefixTokens = 2;
const char* const kSampleKey = "manifold.sample";

struct ManifoldOptions {
    double w_sample, w_patch, w_rand;
    std::int64_t k;
};

void require_tokens(const Shape& shape, const std::string& pair, const char* side) {
    require(shape.size() == 3 || shape.size() == 4, "manifold: pair '", pair, "': the ", side,
            " tensor ", shape_str(shape),
            " is neither tokens (B, N, C) nor a map (B, C, H, W); pair tokens.L taps");
}

std::int64_t token_count(const Shape& shape) {
    return shape.size() == 3 ? shape[1] : shape[2] * shape[3];
}

// How many leading tokens each side drops so that both keep the same count.
struct Excess {
    std::int64_t student = 0, teacher = 0;
};

Excess excess_tokens(std::int64_t ns, std::int64_t nt, const std::string& pair) {
    const std::int64_t diff = ns - nt;
    require(std::abs(diff) <= kMaxPrefixTokens, "manifold: pair '", pair, "': the student has ", ns,
            " tokens and the teacher ", nt, "; relations need one set of tokens (up to ",
            kMaxPrefixTokens, " leading prefix tokens are dropped from the side that has more)");
    return diff > 0 ? Excess{diff, 0} : Excess{0, -diff};
}

// (B, N, C) as is, (B, C, H, W) -> (B, H W, C); then without the first `drop` tokens.
Tensor tokens_of(const Tensor& x, std::int64_t drop) {
    Tensor tokens = x.dim() == 3 ? x : transpose(x.reshape({x.size(0), x.size(1), -1}), 1, 2);
    const std::int64_t n = tokens.size(1);
    return drop == 0 ? tokens : narrow(tokens, 1, drop, n - drop);
}

struct Relations {
    Tensor patch, sample, random;
};

// The three relation matrices of tokens (B, N, C), the random one over rows `sampled` of (B N).
Relations relations(const Tensor& tokens, const Tensor& sampled) {
    const std::int64_t b = tokens.size(0), n = tokens.size(1), c = tokens.size(2);
    Tensor f = normalize(tokens, 2.0, 2);
    Tensor by_position = permute(f, {1, 0, 2});  // (N, B, C)
    Tensor rows = index_select(f.reshape({b * n, c}), 0, sampled.to(f.device()));
    return {matmul(f, transpose(f, 1, 2)), matmul(by_position, transpose(by_position, 1, 2)),
            matmul(rows, transpose(rows, 0, 1))};
}

class Manifold : public Objective {
public:
    Manifold(const ManifoldOptions& options, const ObjectiveSetup& setup)
        : Objective("ManifoldDistillation"), options_(options), pairs_(setup.pairs.size()) {
        for (const ObjectiveSetup::Pair& pair : setup.pairs) {
            require_tokens(pair.student_shape, pair.name, "student");
            require_tokens(pair.teacher_shape, pair.name, "teacher");
            excess_tokens(token_count(pair.student_shape), token_count(pair.teacher_shape),
                          pair.name);
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, pairs_, "manifold");
        Tensor total;
        for (std::size_t p = 0; p < pairs_; ++p) {
            Tensor loss = pair_loss(in, p);
            total = total.defined() ? total + loss : loss;
        }
        return total / static_cast<double>(pairs_);
    }

private:
    Tensor pair_loss(const ObjectiveInputs& in, std::size_t p) const {
        const FeaturePair& pair = in.features[p];
        require_tokens(pair.student.shape(), pair.name, "student");
        require_tokens(pair.teacher.shape(), pair.name, "teacher");
        const Excess drop = excess_tokens(token_count(pair.student.shape()),
                                          token_count(pair.teacher.shape()), pair.name);
        Tensor s = tokens_of(pair.student, drop.student);
        Tensor t = tokens_of(pair.teacher.detach(), drop.teacher);
        Tensor sampled = sample_rows(in, p, s.size(0) * s.size(1));
        const Relations rs = relations(s, sampled);
        Relations rt;
        {
            NoGradGuard no_grad;
            rt = relations(t, sampled);
        }
        return options_.w_sample * mse_loss(rs.sample, rt.sample) +
               options_.w_patch * mse_loss(rs.patch, rt.patch) +
               options_.w_rand * mse_loss(rs.random, rt.random);
    }

    // The K' rows (of B N tokens) pair p's random relation reads: given, or drawn.
    Tensor sample_rows(const ObjectiveInputs& in, std::size_t p, std::int64_t rows) const {
        const std::int64_t count = std::min(options_.k, rows);
        auto given = in.extras.find(kSampleKey);
        if (given == in.extras.end()) return narrow(randperm(rows), 0, 0, count);
        const Tensor& t = given->second;
        const auto pairs = static_cast<std::int64_t>(pairs_);
        require(t.dim() == 2 && t.size(0) == pairs && t.size(1) == count &&
                    (t.dtype() == DType::i64 || t.dtype() == DType::i32),
                "manifold: extras[\"", kSampleKey, "\"] must be int64 (", pairs, ", ", count,
                "): per pair, min(K, B N) = min(", options_.k, ", ", rows,
                ") token indices; got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
        Tensor row = narrow(t.to(DType::i64), 0, static_cast<std::int64_t>(p), 1).reshape({count});
        for (std::int64_t index : row.to_vector<std::int64_t>())
            require(index >= 0 && index < rows, "manifold: extras[\"", kSampleKey, "\"] holds ",
                    index, " for pair '", in.features[p].name, "', outside its [0, ", rows,
                    ") tokens (B N)");
        return row;
    }

    ManifoldOptions options_;
    std::size_t pairs_;
};

}  // namespace

ObjectiveEntry manifold_entry() {
    ObjectiveEntry e;
    e.name = "manifold";
    e.paper = "Hao et al. NeurIPS 2022, Learning Efficient Vision Transformers via Fine-Grained "
              "Manifold Distillation";
    e.reference = "huawei-noah/Efficient-Computing Distillation/ManifoldKD/losses.py (mf_loss)";
    e.taps = "one or more token pairs tokens.L:tokens.M (B, N, C) (a side may be a map with the "
             "other's patch grid)";
    e.defaults = "w_sample=0.1, w_patch=4, w_rand=0.2, K=192";
    e.default_taps = "";  // two ViTs: tokens at proportional depths
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config& config) {
        config.declare_double("manifold", "w_sample", 0.1, 0.0, 1e4,
                              "weight of the inter-image term: relations between images at each "
                              "token position (B x B)");
        config.declare_double("manifold", "w_patch", 4.0, 0.0, 1e4,
                              "weight of the intra-image term: relations between the tokens of "
                              "each image (N x N)");
        config.declare_double("manifold", "w_rand", 0.2, 0.0, 1e4,
                              "weight of the random term: relations between K tokens sampled from "
                              "the whole batch (K x K)");
        config.declare_int("manifold", "K", 192, 1, 1 << 20,
                           "tokens sampled per pair and step for the random term (all B N when "
                           "fewer)");
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        const ManifoldOptions options{.w_sample = config.get_double("manifold.w_sample"),
                                      .w_patch = config.get_double("manifold.w_patch"),
                                      .w_rand = config.get_double("manifold.w_rand"),
                                      .k = config.get_int("manifold.K")};
        return std::make_shared<Manifold>(options, setup);
    };
    return e;
}

}  // namespace retort
