// distill/objectives/attn.cpp: attention-map distillation between two ViTs, `attn`.
//
// For each pair of attention maps (student block L, teacher block M), every row of a map being a
// query's probability distribution over the keys:
//
//   loss_pair = 1 / (B H N) * sum_{b, h, i} KL( A_t[b, h, i, :] || A_s[b, h, i, :] )
//             = 1 / (B H N) * sum_{b, h, i, j} A_t[b,h,i,j] (log A_t[b,h,i,j] - log A_s[b,h,i,j])
//   loss      = mean of loss_pair over the pairs
//
// Paper: the attention transfer of MiniLM (Wang et al., "MiniLM: Deep Self-Attention
// Distillation for Task-Agnostic Compression of Pre-Trained Transformers", NeurIPS 2020, eq. 1),
// as surveyed for ViTs in Habib et al., "Knowledge Distillation in Vision Transformers: A Critical
// Review", 2023 (MiniViT, Zhang et al. CVPR 2022, distills the same self-attention maps, through
// relations of the queries, keys and values). MiniLM publishes no training code: the formula is
// written from the paper; KL follows torch.nn.functional.kl_div (a zero teacher probability adds
// 0), summed and divided by the number of rows B H N, MiniLM's average over heads and queries
// (and here the batch).
//
// Shapes: attention probabilities A_s (B, Hs, Ns, Ns) and A_t (B, Ht, Nt, Nt), the attn.L taps
// (softmax output, before attention dropout); H the heads compared, N the tokens compared.
//
// Choices where MiniLM assumes equal models:
//  - Heads. MiniLM needs Hs = Ht. Here, when one count divides the other, the larger side's
//    heads are averaged in groups of consecutive heads down to the smaller count (DeiT-S's 6
//    heads -> DeiT-Ti's 3: heads {0, 1}, {2, 3}, {4, 5}); otherwise both sides are averaged over
//    all their heads into one map. An average of probability rows is still a probability row.
//  - Tokens. Equal token counts: the full maps, prefix tokens included. Different counts (a DeiT
//    student with class and distillation tokens against a ViT with a class token): each side's
//    prefix tokens are inferred from its count (token_grid.h: N less 0, 1 or 2 is a square grid),
//    both maps are cut to their patch-to-patch block and each row is renormalized to sum to 1 (the
//    query's attention over the patches alone). The patch grids must then be equal; different
//    grids are an Error (pair blocks whose grids match).
//  - log A_s of a probability that underflowed to 0 is taken as log 1e-12, so the loss stays
//    finite (such an entry gets no gradient, as through clamp).
// The inputs are checked to be probabilities (no negative entry, rows summing to 1 within 1e-3),
// so a pair of ordinary feature maps is refused rather than silently compared.
//
// Pairs: any number of attn.L:attn.M; there is no default (depths differ between models, and the
// family default pairs tokens, not attention maps): set [attn] pairs = attn.5:attn.11 (for
// example; `retort models` lists each model's taps).
// Backward: through the KL's log of the student's maps (and the head average / renormalization
// on the student's side); the teacher's maps are constants.
#include <optional>

#include "distill/objectives/relation.h"
#include "distill/objectives/token_grid.h"
#include "distill/objectives/vit.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace retort {
namespace {

// Why: log of an underflowed probability (0) would make the loss infinite.
constexpr double kProbabilityFloor = 1e-12;
// Why: a float32 row of a few hundred probabilities sums to 1 within ~1e-5; 1e-3 refuses only
// tensors that are not probabilities at all.
constexpr double kRowSumTolerance = 1e-3;

void require_attention_shape(const Shape& shape, const std::string& pair, const char* side) {
    require(shape.size() == 4 && shape[2] == shape[3], "attn: pair '", pair, "': the ", side,
            " tensor ", shape_str(shape),
            " is not an attention map (B, heads, N, N); pair the attn.L taps of two ViTs, e.g. "
            "[attn] pairs = attn.5:attn.11");
}

void require_probabilities(const Tensor& maps, const std::string& pair, const char* side) {
    NoGradGuard no_grad;
    const Tensor a = maps.detach();
    const double smallest = min(a).item();
    const double worst_row = max(abs(sum(a, {3}) - 1.0)).item();
    require(smallest >= 0.0 && worst_row <= kRowSumTolerance, "attn: pair '", pair, "': the ",
            side, " maps are not attention probabilities (rows of non-negative entries summing to "
            "1): smallest entry ", smallest, ", largest row-sum error ", worst_row);
}

// How many leading (prefix) tokens each side's maps lose: none when the token counts agree,
// else each side's inferred prefix, leaving one patch grid on both sides.
struct PrefixTokens {
    std::int64_t student = 0, teacher = 0;
};

PrefixTokens prefixes_to_drop(std::int64_t ns, std::int64_t nt, const std::string& pair) {
    if (ns == nt) return {};
    const std::string what = "attn: pair '" + pair + "'";
    const PrefixTokens p{infer_prefix_tokens(ns, what + " (student maps)"),
                         infer_prefix_tokens(nt, what + " (teacher maps)")};
    require(ns - p.student == nt - p.teacher, what, ": the student's maps cover ", ns, " tokens (",
            ns - p.student, " patches) but the teacher's ", nt, " (", nt - p.teacher,
            " patches); maps are compared over one patch grid: pair blocks whose grids match");
    return p;
}

// (B, H, N, N) -> (B, H, N - prefix, N - prefix): each query's attention over the patches,
// renormalized to sum to 1.
Tensor patch_block(const Tensor& maps, std::int64_t prefix) {
    if (prefix == 0) return maps;
    const std::int64_t patches = maps.size(2) - prefix;
    Tensor block = narrow(narrow(maps, 2, prefix, patches), 3, prefix, patches);
    return block / sum(block, {3}, /*keepdim=*/true);
}

// (B, H, N, N) -> (B, heads, N, N): consecutive groups of H / heads heads averaged.
Tensor average_heads(const Tensor& maps, std::int64_t heads) {
    const std::int64_t b = maps.size(0), h = maps.size(1), n = maps.size(2);
    if (h == heads) return maps;
    return mean(maps.reshape({b, heads, h / heads, n, n}), {2});
}

// The two sides brought to one head count (see the header comment).
std::pair<Tensor, Tensor> match_heads(const Tensor& s, const Tensor& t) {
    const std::int64_t hs = s.size(1), ht = t.size(1);
    if (ht % hs == 0) return {s, average_heads(t, hs)};
    if (hs % ht == 0) return {average_heads(s, ht), t};
    return {average_heads(s, 1), average_heads(t, 1)};
}

// Sum over rows of KL(teacher row || student row), divided by the number of rows.
Tensor mean_row_kl(const Tensor& student, const Tensor& teacher) {
    const auto rows = static_cast<double>(student.numel() / student.size(3));
    Tensor log_s = log(clamp(student, kProbabilityFloor, std::nullopt));
    return kl_div(log_s, teacher, "sum") / rows;
}

class AttentionKL : public Objective {
public:
    explicit AttentionKL(const ObjectiveSetup& setup)
        : Objective("AttentionKL"), pairs_(setup.pairs.size()) {
        for (const ObjectiveSetup::Pair& pair : setup.pairs) {
            require_attention_shape(pair.student_shape, pair.name, "student");
            require_attention_shape(pair.teacher_shape, pair.name, "teacher");
            prefixes_to_drop(pair.student_shape[2], pair.teacher_shape[2], pair.name);
        }
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, pairs_, "attn");
        Tensor total;
        for (const FeaturePair& pair : in.features) {
            Tensor loss = pair_loss(pair);
            total = total.defined() ? total + loss : loss;
        }
        return total / static_cast<double>(pairs_);
    }

private:
    static Tensor pair_loss(const FeaturePair& pair) {
        require_attention_shape(pair.student.shape(), pair.name, "student");
        require_attention_shape(pair.teacher.shape(), pair.name, "teacher");
        require_probabilities(pair.student, pair.name, "student");
        require_probabilities(pair.teacher, pair.name, "teacher");
        const PrefixTokens drop =
            prefixes_to_drop(pair.student.size(2), pair.teacher.size(2), pair.name);
        auto [s, t] = match_heads(patch_block(pair.student, drop.student),
                                  patch_block(pair.teacher.detach(), drop.teacher));
        return mean_row_kl(s, t);
    }

    std::size_t pairs_;
};

}  // namespace

ObjectiveEntry attn_entry() {
    ObjectiveEntry e;
    e.name = "attn";
    e.paper = "MiniLM attention transfer (Wang et al. NeurIPS 2020) for ViTs, as in Habib et al. "
              "2023, Knowledge Distillation in Vision Transformers: A Critical Review";
    e.reference = "written from MiniLM's eq. 1 (no official code); KL as torch kl_div, mean over "
                  "batch, heads and queries";
    e.taps = "one or more pairs of attention maps attn.L:attn.M (no default: set [attn] pairs)";
    e.defaults = "(none)";
    e.default_taps = "";  // the family default pairs tokens.*: refused with a message naming attn.L
    e.min_pairs = 1;
    e.max_pairs = -1;
    e.declare = [](Config&) {};  // no hyperparameters
    e.create = [](const Config&, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        return std::make_shared<AttentionKL>(setup);
    };
    return e;
}

}  // namespace retort
