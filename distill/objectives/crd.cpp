// distill/objectives/crd.cpp: contrastive representation distillation (CRD).
//
// Tian, Krishnan, Isola, "Contrastive Representation Distillation", ICLR 2020. Reference code
// followed: RepDistiller crd/criterion.py (CRDLoss, ContrastLoss, Embed) and crd/memory.py
// (ContrastMemory), which mdistiller's CRD repeats.
//
// Shapes: one feature pair (usually pre_logits), student (B, ...) and teacher (B, ...), flattened
// per sample to Ds and Dt values; F = feat_dim; N = training-set size (one memory row per sample);
// K = nce_k negatives per positive.
//
//   v_s = normalize(W_s x_s + b_s),  v_t = normalize(W_t x_t + b_t)       embeddings (B, F)
//   memories M_s, M_t (N, F): a running average of each sample's student / teacher embedding
//   index (B, K + 1): column 0 is the sample itself (the positive), the rest are negatives
//   out_s[b][k] = exp(<M_t[index[b][k]], v_s[b]> / nce_t) / Z_s   (student anchor, teacher memory)
//   out_t[b][k] = exp(<M_s[index[b][k]], v_t[b]> / nce_t) / Z_t   (teacher anchor, student memory)
//   ContrastLoss(x) = -(1/B) sum_b [ log(x_b0 / (x_b0 + K/N + 1e-7))
//                                    + sum_{k>=1} log((K/N) / (x_bk + K/N + 1e-7)) ]
//   loss = ContrastLoss(out_s) + ContrastLoss(out_t)
//
// Normalization constants Z: as in the reference, each is set ONCE, from the first batch the
// objective sees: Z = mean(exp(scores / nce_t)) * N over that batch's (B, K + 1) scores. They are
// kept in the buffer contrast.z = [Z_s, Z_t] (-1 while unset), so a checkpoint restores them and a
// resumed run does not re-estimate them.
//
// Memory update: in forward(), only when in.training, after the scores are computed (as the
// reference, inside the same call): M[i] <- normalize(momentum * M[i] + (1 - momentum) * v) for
// each sample i of the batch, with the embeddings taken as constants. The scores' backward reads
// the memory as it was before the update: when that backward is still pending, the update is
// written into a fresh copy of the memory and the pending backward keeps the old one.
//
// Negatives: the reference's data loader draws K indices of samples from other classes
// ("exact" mode); the memory module itself, when given none, draws K + 1 uniformly over the N
// samples and puts the positive in column 0. retort follows the memory module: the default
// generator draws them (in any mode, since a value needs them). When ObjectiveInputs::extras has
// "contrast_idx" (B, K + 1) int64, those indices are used as given (column 0 must then be the
// positive), which is how a fixture computed elsewhere is reproduced.
//
// Memory initialization: uniform in [-s, s] with s = 1 / sqrt(F / 3), as the reference. The
// embedding heads are nn.Linear (PyTorch's default initialization) followed by x / ||x||.
// State-dict names: embed_s.linear.{weight,bias}, embed_t.linear.{weight,bias},
// contrast.memory_v1 (student memory M_s), contrast.memory_v2 (teacher memory M_t), contrast.z.
#include <cmath>

#include "distill/objectives/relation.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "layers/init.h"

namespace retort {
namespace {

constexpr double kEps = 1e-7;

// scores (B, K1) with scores[b][k] = <memory[index[b][k]], v[b]>; memory (N, F) gets no gradient,
// index (B, K1) int64, v (B, F). Written as one op so the (B, K1, F) block of gathered memory rows
// is never materialized (B = 64, K1 = 16385, F = 128 would be half a gigabyte).
// Backward saves the memory (shared, not copied) and the index: dv[b] = sum_k g[b][k] memory[idx].
Tensor memory_scores(const Tensor& memory, const Tensor& index, const Tensor& v) {
    require(memory.device().is_cpu() && v.device().is_cpu(),
            "crd: the memory-bank scores have no kernel for ", v.device().str(), " tensors yet");
    const std::int64_t batch = v.size(0), dim = v.size(1), columns = index.size(1);
    Tensor scores = Tensor::empty({batch, columns}, v.dtype());
    visit_floating(v.dtype(), "crd", [&]<class T>(Type<T>) {
        const T* rows = memory.data<T>();
        const std::int64_t* idx = index.data<std::int64_t>();
        const T* vs = v.data<T>();
        T* out = scores.data<T>();
        parallel_for(0, batch * columns, grain_for(dim), [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t i = begin; i < end; ++i) {
                const T* row = rows + idx[i] * dim;
                const T* anchor = vs + (i / columns) * dim;
                T dot = 0;
                for (std::int64_t f = 0; f < dim; ++f) dot += row[f] * anchor[f];
                out[i] = dot;
            }
        });
    });
    record(scores, "crd_memory_scores", {v},
           [saved_memory = memory.detach(), index, batch, dim, columns](const Tensor& grad) {
        Tensor dv = zeros({batch, dim}, grad.dtype());
        visit_floating(grad.dtype(), "crd backward", [&]<class T>(Type<T>) {
            const T* rows = saved_memory.data<T>();
            const std::int64_t* idx = index.data<std::int64_t>();
            const T* g = grad.data<T>();
            T* out = dv.data<T>();
            parallel_for(0, batch, grain_for(columns * dim), [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t b = begin; b < end; ++b) {
                    T* acc = out + b * dim;
                    for (std::int64_t k = 0; k < columns; ++k) {
                        const T gk = g[b * columns + k];
                        const T* row = rows + idx[b * columns + k] * dim;
                        for (std::int64_t f = 0; f < dim; ++f) acc[f] += gk * row[f];
                    }
                }
            });
        });
        return std::vector<Tensor>{dv};
    });
    return scores;
}

// memory[rows[b]] <- normalize(momentum * memory[rows[b]] + (1 - momentum) * v[b]), no graph.
// All new rows are computed from the old memory before any is written, as the reference's
// index_select / index_copy_ pair (a repeated index keeps the last sample's row).
void update_memory(Tensor& memory, const Tensor& rows, const Tensor& v, double momentum) {
    if (memory.impl().storage.use_count() > 1) {
        // A pending backward still reads this memory (memory_scores saved it): write into a copy.
        Tensor fresh = memory.detach().clone();
        memory.impl().storage = fresh.impl().storage;
        memory.impl().offset = fresh.impl().offset;
    }
    const std::int64_t batch = v.size(0), dim = v.size(1);
    visit_floating(memory.dtype(), "crd", [&]<class T>(Type<T>) {
        T* mem = memory.data<T>();
        const T* vs = v.data<T>();
        const std::int64_t* r = rows.data<std::int64_t>();
        std::vector<T> updated(static_cast<std::size_t>(batch * dim));
        for (std::int64_t b = 0; b < batch; ++b) {
            T* out = updated.data() + b * dim;
            T norm = 0;
            for (std::int64_t f = 0; f < dim; ++f) {
                out[f] = static_cast<T>(momentum) * mem[r[b] * dim + f] +
                         static_cast<T>(1 - momentum) * vs[b * dim + f];
                norm += out[f] * out[f];
            }
            norm = std::sqrt(norm);
            for (std::int64_t f = 0; f < dim; ++f) out[f] /= norm;
        }
        for (std::int64_t b = 0; b < batch; ++b)
            std::copy(updated.data() + b * dim, updated.data() + (b + 1) * dim, mem + r[b] * dim);
    });
}

// The reference's ContrastLoss on x (B, K + 1) for a noise distribution uniform over N samples.
Tensor contrast_loss(const Tensor& x, std::int64_t num_samples) {
    const std::int64_t negatives = x.size(1) - 1;
    const double noise = static_cast<double>(negatives) / static_cast<double>(num_samples);
    Tensor positive = narrow(x, 1, 0, 1);
    Tensor negative = narrow(x, 1, 1, negatives);
    Tensor log_d1 = log(positive / (positive + (noise + kEps)));
    Tensor log_d0 = log(noise / (negative + (noise + kEps)));
    return -(sum(log_d1) + sum(log_d0)) / static_cast<double>(x.size(0));
}

// Holds the two memory banks and the normalization constants (child "contrast", as the
// reference's ContrastMemory, so the state-dict names match).
class ContrastMemory : public Module {
public:
    ContrastMemory(std::int64_t feat_dim, std::int64_t num_samples) : Module("ContrastMemory") {
        const double bound = 1.0 / std::sqrt(static_cast<double>(feat_dim) / 3.0);
        memory_v1 = register_buffer("memory_v1", Tensor::empty({num_samples, feat_dim}));
        memory_v2 = register_buffer("memory_v2", Tensor::empty({num_samples, feat_dim}));
        init::uniform(memory_v1, -bound, bound);
        init::uniform(memory_v2, -bound, bound);
        z = register_buffer("z", full({2}, -1.0));
    }
    Tensor memory_v1, memory_v2, z;
};

struct CrdOptions {
    std::int64_t nce_k, feat_dim;
    double nce_t, momentum;
};

class Crd : public Objective {
public:
    Crd(const CrdOptions& options, const ObjectiveSetup& setup)
        : Objective("CRD"), options_(options), setup_pair_(setup.pairs.at(0)),
          num_samples_(setup.num_samples) {
        require(num_samples_ >= 1,
                "crd: needs the training-set size (ObjectiveSetup::num_samples) for its memory "
                "bank, got ", num_samples_);
        embed_s_ = register_module("embed_s", std::make_shared<relation::EmbedHead>(
            relation::per_sample_numel(setup_pair_.student_shape), options.feat_dim, true));
        embed_t_ = register_module("embed_t", std::make_shared<relation::EmbedHead>(
            relation::per_sample_numel(setup_pair_.teacher_shape), options.feat_dim, true));
        contrast_ = register_module("contrast",
                                    std::make_shared<ContrastMemory>(options.feat_dim, num_samples_));
    }

    Tensor forward(const ObjectiveInputs& in) override {
        relation::check_pairs(in, 1, "crd");
        relation::check_pair_shapes(in.features[0], setup_pair_, "crd");
        const std::int64_t batch = in.features[0].student.size(0);
        Tensor positives = sample_indices(in, batch);
        Tensor index = contrast_indices(in, positives, batch);

        Tensor v_s = embed_s_->forward(in.features[0].student);
        Tensor v_t = embed_t_->forward(in.features[0].teacher);
        require(v_s.dtype() == contrast_->memory_v1.dtype(), "crd: features are ",
                dtype_name(v_s.dtype()), " but the memory bank is ",
                dtype_name(contrast_->memory_v1.dtype()));
        Tensor exp_s = exp(memory_scores(contrast_->memory_v2, index, v_s) / options_.nce_t);
        Tensor exp_t = exp(memory_scores(contrast_->memory_v1, index, v_t) / options_.nce_t);
        set_normalizers_once(exp_s, exp_t);
        const std::vector<double> z = contrast_->z.to_vector<double>();
        Tensor loss = contrast_loss(exp_s / z[0], num_samples_) +
                      contrast_loss(exp_t / z[1], num_samples_);
        if (in.training) {
            NoGradGuard no_grad;
            update_memory(contrast_->memory_v1, positives, v_s.detach(), options_.momentum);
            update_memory(contrast_->memory_v2, positives, v_t.detach(), options_.momentum);
        }
        return loss;
    }

private:
    // in.sample_indices as int64 (B), each in [0, N).
    Tensor sample_indices(const ObjectiveInputs& in, std::int64_t batch) const {
        const Tensor& given = in.sample_indices;
        require(given.defined(),
                "crd: needs each sample's index in the training set (ObjectiveInputs::"
                "sample_indices) to read and update its memory bank");
        require(given.dim() == 1 && given.size(0) == batch &&
                    (given.dtype() == DType::i64 || given.dtype() == DType::i32),
                "crd: sample_indices must be int64 (", batch, "), got ", dtype_name(given.dtype()),
                " ", shape_str(given.shape()));
        Tensor indices = given.to(DType::i64);
        check_range(indices, "sample_indices");
        return indices;
    }

    // The (B, K + 1) memory rows each anchor is compared with: extras["contrast_idx"] or drawn.
    Tensor contrast_indices(const ObjectiveInputs& in, const Tensor& positives,
                            std::int64_t batch) const {
        const std::int64_t columns = options_.nce_k + 1;
        auto given = in.extras.find("contrast_idx");
        if (given != in.extras.end()) {
            const Tensor& t = given->second;
            require(t.dim() == 2 && t.size(0) == batch && t.size(1) == columns &&
                        (t.dtype() == DType::i64 || t.dtype() == DType::i32),
                    "crd: contrast_idx must be int64 (", batch, ", ", columns,
                    ") (nce_k + 1 columns), got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
            Tensor indices = t.to(DType::i64);
            check_range(indices, "contrast_idx");
            return indices;
        }
        Tensor indices = randint(0, num_samples_, {batch, columns});
        std::int64_t* idx = indices.data<std::int64_t>();
        const std::int64_t* pos = positives.data<std::int64_t>();
        for (std::int64_t b = 0; b < batch; ++b) idx[b * columns] = pos[b];
        return indices;
    }

    void check_range(const Tensor& indices, const char* what) const {
        for (std::int64_t i : indices.to_vector<std::int64_t>())
            require(i >= 0 && i < num_samples_, "crd: ", what, " holds ", i,
                    ", outside the memory bank's [0, ", num_samples_, ")");
    }

    void set_normalizers_once(const Tensor& exp_s, const Tensor& exp_t) {
        Tensor& z = contrast_->z;
        NoGradGuard no_grad;
        std::vector<double> values = z.to_vector<double>();
        const double n = static_cast<double>(num_samples_);
        if (values[0] < 0) values[0] = mean(exp_s.detach()).item() * n;
        if (values[1] < 0) values[1] = mean(exp_t.detach()).item() * n;
        visit_floating(z.dtype(), "crd", [&]<class T>(Type<T>) {
            z.data<T>()[0] = static_cast<T>(values[0]);
            z.data<T>()[1] = static_cast<T>(values[1]);
        });
    }

    CrdOptions options_;
    ObjectiveSetup::Pair setup_pair_;
    std::int64_t num_samples_;
    std::shared_ptr<relation::EmbedHead> embed_s_, embed_t_;
    std::shared_ptr<ContrastMemory> contrast_;
};

}  // namespace

ObjectiveEntry crd_entry() {
    ObjectiveEntry e;
    e.name = "crd";
    e.default_taps = "pre_logits";
    e.paper = "Tian et al. 2020, Contrastive Representation Distillation (ICLR)";
    e.reference = "RepDistiller crd/criterion.py + crd/memory.py";
    e.taps = "one feature pair, flattened per sample (usually pre_logits); sample indices";
    e.defaults = "nce_k=16384, nce_t=0.07, feat_dim=128, momentum=0.5";
    e.min_pairs = e.max_pairs = 1;
    e.declare = [](Config& config) {
        config.declare_int("crd", "nce_k", 16384, 1, 1 << 24, "negatives drawn per positive");
        config.declare_double("crd", "nce_t", 0.07, 0.0, 100.0,
                              "temperature of the exp(<memory, embedding> / nce_t) scores", true);
        config.declare_int("crd", "feat_dim", 128, 1, 1 << 16,
                           "width of the embedding heads and of each memory row");
        config.declare_double("crd", "momentum", 0.5, 0.0, 1.0,
                              "memory update: row <- normalize(momentum row + (1 - momentum) v)");
    };
    e.create = [](const Config& config, const ObjectiveSetup& setup) -> std::shared_ptr<Objective> {
        CrdOptions options{.nce_k = config.get_int("crd.nce_k"),
                           .feat_dim = config.get_int("crd.feat_dim"),
                           .nce_t = config.get_double("crd.nce_t"),
                           .momentum = config.get_double("crd.momentum")};
        require(options.momentum < 1.0, "crd: momentum must be below 1 (the memory would never "
                "learn), got ", options.momentum);
        return std::make_shared<Crd>(options, setup);
    };
    return e;
}

}  // namespace retort
