// distill/objectives/dist.cpp: DIST, distillation from a stronger teacher by correlation, `dist`.
//
// With Y_s = softmax(s / tau), Y_t = softmax(t / tau), both (B, K):
//   inter = 1 - mean_b  pearson(Y_s[b, :], Y_t[b, :])   (each sample's ranking of the classes)
//   intra = 1 - mean_k  pearson(Y_s[:, k], Y_t[:, k])   (each class's ranking of the samples)
//   loss  = tau^2 * (beta * inter + gamma * intra)
//   pearson(a, b) = <a - mean a, b - mean b> / (||a - mean a|| * ||b - mean b|| + eps), eps = 1e-8
//
// Paper: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher",
// NeurIPS 2022.
// Reference: DIST_KD (hunto), the classification DIST loss (inter_class_relation,
// intra_class_relation, pearson_correlation, cosine_similarity); defaults beta = gamma = 1, tau = 1.
// Shapes: s, t (B, K) logits.
//
// Followed from the reference: eps is ADDED to the product of the two norms (not a clamp of each
// norm, as torch.cosine_similarity does), and the means are plain means over the rows / columns.
// The intra term reads columns, so the reference transposes; reducing along dim 0 instead gives
// the same numbers without the copy.
// One edge case the reference reaches through PyTorch's norm: with B = 1 every column, centred,
// is the zero vector, whose norm has no derivative. PyTorch's norm backward gives 0 there, and so
// does centred_norm below (the correlation is 0 and the intra term a constant 1).
#include "distill/objectives/logit.h"
#include "engine/ops.h"

namespace retort {

namespace {

constexpr double kPearsonEps = 1e-8;

// ||x|| along dim, with gradient 0 where x is the zero vector (as torch.norm's backward).
Tensor safe_norm(const Tensor& x, std::int64_t dim) {
    Tensor squares = sum(x * x, {dim});
    Tensor is_zero = eq(squares.detach(), zeros_like(squares));
    Tensor root = sqrt(where(is_zero, ones_like(squares), squares));  // never sqrt(0): finite slope
    return where(is_zero, zeros_like(squares), root);
}

// Pearson correlation of a and b along dim, one value per slice of the other dim.
Tensor pearson(const Tensor& a, const Tensor& b, std::int64_t dim) {
    Tensor ac = a - mean(a, {dim}, /*keepdim=*/true);
    Tensor bc = b - mean(b, {dim}, /*keepdim=*/true);
    return sum(ac * bc, {dim}) / (safe_norm(ac, dim) * safe_norm(bc, dim) + kPearsonEps);
}

class DIST : public Objective {
public:
    DIST(double beta, double gamma, double tau)
        : Objective("DIST"), beta_(beta), gamma_(gamma), tau_(tau) {}

    Tensor forward(const ObjectiveInputs& in) override {
        check_logit_pair(in, "dist");
        Tensor ys = softmax(in.student_logits / tau_, 1);
        Tensor yt = softmax(in.teacher_logits.detach() / tau_, 1);
        Tensor inter = 1.0 - mean(pearson(ys, yt, 1));
        Tensor intra = 1.0 - mean(pearson(ys, yt, 0));
        return (beta_ * inter + gamma_ * intra) * (tau_ * tau_);
    }

private:
    double beta_, gamma_, tau_;
};

}  // namespace

void declare_dist(Config& config) {
    config.declare_double("dist", "beta", 1.0, 0.0, 1e4,
                          "weight of the inter-class relation (per-sample correlation over classes)");
    config.declare_double("dist", "gamma", 1.0, 0.0, 1e4,
                          "weight of the intra-class relation (per-class correlation over the batch)");
    config.declare_double("dist", "tau", 1.0, 0.0, 100.0, "temperature of both softmaxes",
                          /*min_exclusive=*/true);
}

std::shared_ptr<Objective> create_dist(const Config& config, const ObjectiveSetup&) {
    return std::make_shared<DIST>(config.get_double("dist.beta"), config.get_double("dist.gamma"),
                                  config.get_double("dist.tau"));
}

}  // namespace retort
