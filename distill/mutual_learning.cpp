// distill/mutual_learning.cpp: deep mutual learning: its loss, the peers, and what a run adds to
// the training loop (see mutual_learning.h for the formula and the run directory).
//
// Shapes: x (B, C, H, W) float32, labels (B) int64, logits z_k (B, K); S students.
//
// Paper: Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning", CVPR 2018. Its Algorithm 1
// alternates: update student 1 from the cohort's predictions, recompute them, update student 2,
// and so on (the authors' TensorFlow code, YingZhangDUT/Deep-Mutual-Learning, runs one session
// step per network). Reference followed here instead: chxy95/Deep-Mutual-Learning (PyTorch,
// trainer.py), which computes every student's outputs once per batch (S forward passes, where
// Algorithm 1 needs S^2) and updates every student from those same outputs, with
//     loss_k = CE(z_k, y) + 1/(S-1) * sum_{j != k} KLDivLoss(batchmean)(log_softmax(z_k), softmax(z_j)).
// That is this file's loss at T = 1, alpha = 1; T and alpha generalize it as Hinton's KD does
// (T^2 scaling), and the peers' distributions are detached explicitly.
//
// One backward pass and one optimizer step for all students: each L_k treats the other students'
// distributions as constants, so d(sum_j L_j)/d(theta_k) = dL_k/d(theta_k) for student k's
// parameters theta_k, and SGD and AdamW update each parameter from its own gradient alone. The
// single step over all parameters is therefore exactly S optimizers each stepping on its own
// L_k, as in the reference. (One exception: optim.clip_grad_norm clips the norm of all the
// students' gradients together, not each student's.)
//
// Backward saves, per student, the log-softmax of z_k / T (for its own KL terms, the peers read
// the same values as constants) and what cross_entropy saves; nothing else.
#include "distill/mutual_learning.h"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>

#include "distill/checkpoint.h"
#include "engine/dist/communicator.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/registry.h"

namespace retort {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_loss_inputs(const std::vector<Tensor>& logits, const Tensor& labels, double T,
                       double alpha, double label_smoothing) {
    require(logits.size() >= 2, "mutual_learning_loss: needs at least two students' logits, got ",
            logits.size());
    for (std::size_t k = 0; k < logits.size(); ++k) {
        const Tensor& z = logits[k];
        require(z.defined() && z.is_floating_point() && z.dim() == 2 && z.size(0) >= 1 && z.size(1) >= 1,
                "mutual_learning_loss: the logits of student ", k, " must be float (B, K), got ",
                z.defined() ? shape_str(z.shape()) + " " + dtype_name(z.dtype()) : "an undefined tensor");
        require(z.shape() == logits[0].shape() && z.dtype() == logits[0].dtype(),
                "mutual_learning_loss: the logits of student ", k, " are ", shape_str(z.shape()), " ",
                dtype_name(z.dtype()), ", student 0's ", shape_str(logits[0].shape()), " ",
                dtype_name(logits[0].dtype()), ": every student needs the same batch and classes");
    }
    const std::int64_t batch = logits[0].size(0), classes = logits[0].size(1);
    require(labels.defined() && labels.dtype() == DType::i64 && labels.dim() == 1 &&
                labels.size(0) == batch,
            "mutual_learning_loss: labels must be int64 ", shape_str(Shape{batch}), " for logits ",
            shape_str(logits[0].shape()), ", got ",
            labels.defined() ? shape_str(labels.shape()) + " " + dtype_name(labels.dtype()) : "none");
    for (std::int64_t y : labels.to_vector<std::int64_t>())
        require(y >= 0 && y < classes, "mutual_learning_loss: label ", y, " is not a class of logits ",
                shape_str(logits[0].shape()));
    require(std::isfinite(T) && T > 0, "mutual_learning_loss: T must be > 0, got ", T);
    require(std::isfinite(alpha) && alpha >= 0, "mutual_learning_loss: alpha must be >= 0, got ", alpha);
    require(label_smoothing >= 0 && label_smoothing < 1,
            "mutual_learning_loss: label_smoothing must be in [0, 1), got ", label_smoothing);
}

std::string percent(double v) { return cat(std::fixed, std::setprecision(2), v, "%"); }

// " val top1 45.06% test top1 46.11% (best)", each part where it applies.
std::string peer_result(double val_top1, double test_top1, bool best) {
    std::string text;
    if (!std::isnan(val_top1)) text += " val top1 " + percent(val_top1);
    if (!std::isnan(test_top1)) text += " test top1 " + percent(test_top1);
    if (best && !std::isnan(val_top1)) text += " (best)";
    return text;
}

// RUN_DIR/peer-<k>.<which>.safetensors
std::string peer_file(const std::string& run_dir, std::int64_t peer, const char* which) {
    return (fs::path(run_dir) / cat("peer-", peer, ".", which, ".safetensors")).string();
}

}  // namespace

// ---- the loss ----

MutualLoss mutual_learning_loss(const std::vector<Tensor>& logits, const Tensor& labels, double T,
                                double alpha, double label_smoothing) {
    check_loss_inputs(logits, labels, T, alpha, label_smoothing);
    const std::size_t students = logits.size();
    std::vector<Tensor> log_q;  // log softmax(z_k / T), with each student's graph
    for (const Tensor& z : logits) log_q.push_back(log_softmax(z / T, 1));

    MutualLoss out;
    const double scale = T * T / static_cast<double>(students - 1);
    for (std::size_t k = 0; k < students; ++k) {
        // KL(p_j || q_k) with p_j a constant: the peers teach student k; they learn from their own L_j.
        Tensor kl_sum;
        for (std::size_t j = 0; j < students; ++j) {
            if (j == k) continue;
            Tensor kl = kl_div(log_q[k], log_q[j].detach(), "batchmean", /*log_target=*/true);
            kl_sum = kl_sum.defined() ? kl_sum + kl : kl;
        }
        out.ce.push_back(cross_entropy(logits[k], labels, "mean", label_smoothing));
        out.mimicry.push_back(kl_sum * scale);
        out.per_student.push_back(out.ce[k] + out.mimicry[k] * alpha);
        out.total = out.total.defined() ? out.total + out.per_student[k] : out.per_student[k];
    }
    return out;
}

std::uint64_t peer_seed(std::uint64_t run_seed, std::int64_t peer) {
    std::uint64_t z = run_seed + static_cast<std::uint64_t>(peer) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// ---- the peers as one module ----

// Child peer<k> is peer k. The buffers keep, per peer (index k - 1), what choosing its best file
// needs across a resume: its best validation top-1 (-1 before any), that epoch (0: none), the
// test top-1 there, and the last epoch's test top-1 (NaN without a test split).
class PeerSet : public Module {
public:
    explicit PeerSet(const std::vector<std::shared_ptr<Model>>& peers) : Module("PeerSet") {
        for (std::size_t k = 0; k < peers.size(); ++k) register_module(cat("peer", k + 1), peers[k]);
        const std::int64_t n = static_cast<std::int64_t>(peers.size());
        best_val_top1 = register_buffer("best_val_top1", full({n}, -1.0, DType::f64));
        best_epoch = register_buffer("best_epoch", zeros({n}, DType::i64));
        best_test_top1 = register_buffer("best_test_top1", full({n}, kNaN, DType::f64));
        last_test_top1 = register_buffer("last_test_top1", full({n}, kNaN, DType::f64));
    }
    Tensor best_val_top1, best_epoch, best_test_top1, last_test_top1;
};

MutualLearning::MutualLearning(const DistillConfig& config, std::shared_ptr<Model> student,
                               const DatasetSplits& data)
    : student_(std::move(student)),
      student_spec_(config.train.model),
      peer_specs_(config.dml.peers),
      run_seed_(config.train.run.seed),
      T_(config.dml.T),
      alpha_(config.dml.alpha),
      label_smoothing_(config.train.optim.label_smoothing) {
    internal_check(student_ != nullptr, "MutualLearning needs student 0");
    require(!peer_specs_.empty(), "dml: needs at least one peer");
    Generator& gen = default_generator();
    const Generator saved = gen;  // student 0's run draws the same numbers with or without peers
    for (std::size_t i = 0; i < peer_specs_.size(); ++i) {
        const std::int64_t k = static_cast<std::int64_t>(i) + 1;
        const std::string& spec = peer_specs_[i];
        peer_seeds_.push_back(peer_seed(run_seed_, k));
        gen.manual_seed(peer_seeds_.back());
        try {
            peers_.push_back(create_model(spec));
            check_model_fits_data(*peers_.back(), spec, data, config.train);
        } catch (const Error& e) {
            gen = saved;
            fail("dml.peers: peer ", k, " (", spec, "): ", e.what());
        }
    }
    gen = saved;
    set_ = std::make_shared<PeerSet>(peers_);
    val_top1_.assign(peers_.size(), kNaN);
    test_top1_.assign(peers_.size(), kNaN);
}

MutualLearning::~MutualLearning() = default;

TrainerAddons MutualLearning::addons() {
    TrainerAddons a;
    a.objectives = set_;
    for (std::int64_t k = 0; k < num_students(); ++k) {
        a.term_names.push_back(cat("ce.", k));
        a.term_names.push_back(cat("kl.", k));
    }
    for (std::int64_t k = 1; k < num_students(); ++k) a.eval_columns.push_back(cat("top1.", k));
    a.evaluate = [this](const std::string& split, DataLoader& loader) {
        return evaluate_peers(split, loader);
    };
    a.end_epoch = [this](std::int64_t epoch, const std::string& run_dir) {
        return end_epoch(epoch, run_dir);
    };
    return a;
}

LossFn MutualLearning::loss_fn() {
    return [this](Model& student, const Batch& batch, const StepContext& ctx) {
        return loss(student, batch, ctx);
    };
}

LossOutput MutualLearning::loss(Model& student, const Batch& batch, const StepContext&) {
    std::vector<Tensor> logits{student.forward(batch.images)};
    for (const std::shared_ptr<Model>& peer : peers_) {
        peer->train();  // the peers' own evaluation left them in eval mode
        logits.push_back(peer->forward(batch.images));
    }
    // The trainer backpropagates the sum and steps once over every student's parameters: each
    // student receives the gradient of its own L_k alone (see the top of this file).
    const MutualLoss l = mutual_learning_loss(logits, batch.labels, T_, alpha_, label_smoothing_);
    LossOutput out{l.total, logits[0], {}};
    for (std::size_t k = 0; k < logits.size(); ++k) {
        out.terms.push_back(l.ce[k].item());
        out.terms.push_back(l.mimicry[k].item());
    }
    return out;
}

// ---- evaluation and files ----

std::vector<double> MutualLearning::evaluate_peers(const std::string& split, DataLoader& loader) {
    std::vector<double> top1;
    for (const std::shared_ptr<Model>& peer : peers_) top1.push_back(evaluate(*peer, loader).top1);
    (split == "val" ? val_top1_ : test_top1_) = top1;
    return top1;
}

std::string MutualLearning::end_epoch(std::int64_t epoch, const std::string& run_dir) {
    double* best_val = set_->best_val_top1.data<double>();
    std::int64_t* best_epoch = set_->best_epoch.data<std::int64_t>();
    double* best_test = set_->best_test_top1.data<double>();
    double* last_test = set_->last_test_top1.data<double>();
    std::string line = "peers:";
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        const std::int64_t k = static_cast<std::int64_t>(i) + 1;
        const double val = val_top1_[i], test = test_top1_[i];
        // As for student 0: a tie keeps the earlier epoch; without a val split best follows last.
        const bool best = std::isnan(val) || val > best_val[i];
        std::map<std::string, std::string> metadata = {{"model", peer_specs_[i]},
                                                       {"epoch", std::to_string(epoch)}};
        const bool writer = dist::world()->is_root();  // with several ranks, rank 0 writes
        if (writer) save_weights(peer_file(run_dir, k, "last"), *peers_[i], metadata);
        last_test[i] = test;
        if (best) {
            if (!std::isnan(val)) best_val[i] = val;
            best_epoch[i] = epoch;
            best_test[i] = test;
            metadata["val_top1"] = std::isnan(val) ? "none" : cat(std::fixed, std::setprecision(4), val);
            if (writer) save_weights(peer_file(run_dir, k, "best"), *peers_[i], metadata);
        }
        line += cat(i > 0 ? ";" : "", " peer ", k, peer_result(val, test, best));
    }
    val_top1_.assign(peers_.size(), kNaN);
    test_top1_.assign(peers_.size(), kNaN);
    return line;
}

std::vector<PeerRecord> MutualLearning::peer_records() const {
    std::vector<PeerRecord> records;
    const std::vector<double> best_val = set_->best_val_top1.to_vector<double>();
    const std::vector<std::int64_t> best_epoch = set_->best_epoch.to_vector<std::int64_t>();
    const std::vector<double> best_test = set_->best_test_top1.to_vector<double>();
    const std::vector<double> last_test = set_->last_test_top1.to_vector<double>();
    for (std::size_t i = 0; i < peers_.size(); ++i)
        records.push_back({peer_specs_[i], best_epoch[i], best_val[i] >= 0 ? best_val[i] : kNaN,
                           best_test[i], last_test[i]});
    return records;
}

std::string MutualLearning::describe() const {
    std::string text = cat("deep mutual learning: ", num_students(),
                           " students trained together, no teacher; T = ", T_, ", alpha = ", alpha_,
                           "\n  student 0: ", student_spec_, " ([model], seed ", run_seed_, "): ",
                           student_->num_parameters(), " parameters -> best.safetensors");
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        const std::int64_t k = static_cast<std::int64_t>(i) + 1;
        text += cat("\n  student ", k, ": ", peer_specs_[i], " (peer ", k, ", seed ", peer_seeds_[i],
                    "): ", peers_[i]->num_parameters(), " parameters -> peer-", k,
                    ".best.safetensors, peer-", k, ".last.safetensors");
    }
    return text;
}

}  // namespace retort
