// distill/mutual_learning.h: deep mutual learning, `retort distill` with [distill] mode = dml: two
// or more students trained together from scratch, each learning from the labels and from the
// others' predictions; there is no pretrained teacher.
//
// Shapes: B batch, K classes; S students (student 0 is [model], students 1 .. S-1 the peers of
// [dml] peers); z_k the logits (B, K) of student k, y the labels (B).
//
// The loss of student k (Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning", CVPR 2018, eq. 10,
// with a temperature T and a weight alpha that the paper fixes at 1):
//     L_k = CE(z_k, y) + alpha * T^2 / (S - 1) * sum_{j != k} KL( p_j || q_k ),
//     p_j = softmax(z_j / T) used as a constant (detached),  q_k = softmax(z_k / T),
// each KL summed over classes and averaged over the batch (batchmean). T^2 keeps the term's
// gradient at the same scale for any T, as in Hinton's KD (distill/objectives/kd.cpp).
//
// The run (MutualLearning + the training loop of trainer.h):
//   - Student 0 is the trainer's model, built as `retort train` builds [model] from run.seed, so a
//     student trained alone and a dml run start from the same weights. Peer k (k = 1 .. S-1) is
//     built from seed peer_seed(run.seed, k); the default generator is put back afterwards.
//   - The peers travel in the trainer's `objectives` slot (TrainerAddons): their parameters join
//     student 0's in the one optimizer, their state is in last.safetensors as
//     objectives.peer<k>.<state-dict name>, with their best-so-far records (objectives.best_*,
//     objectives.last_test_top1; one entry per peer), so `--resume` continues bit for bit.
//   - Per batch every student runs once, in train mode, on the same augmented images; the summed
//     loss sum_k L_k is backpropagated once and one optimizer step updates every student, which
//     gives each student the gradient of its own L_k (the paper's Algorithm 1 instead alternates
//     the students' updates; mutual_learning.cpp names the reference code followed).
//   - After student 0's evaluation of each split, the peers are evaluated on it too. best.safetensors
//     is student 0 alone (chosen by its validation top-1, loadable with [model]'s spec);
//     peer-<k>.best.safetensors is peer k chosen by its own validation top-1 and
//     peer-<k>.last.safetensors peer k after the latest epoch (weights files, as best.safetensors).
//
// metrics.csv, after the training columns:
//   loss.ce.<k>   train rows: CE(z_k, y) of student k
//   loss.kl.<k>   train rows: T^2 / (S - 1) * sum_{j != k} KL(p_j || q_k), BEFORE alpha
//                 (`loss` is the total, sum_k loss.ce.<k> + alpha * loss.kl.<k>)
//   top1.<k>      val and test rows: peer k's top-1 on that split (student 0's is `top1`)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "distill/distill_config.h"
#include "distill/trainer.h"
#include "models/model.h"

namespace retort {

// The loss of one batch, whole and in parts (scalar tensors).
struct MutualLoss {
    Tensor total;                     // sum_k L_k: backward() on it gives each student its own L_k's
                                      // gradient, since every L_k treats the other students as constants
    std::vector<Tensor> per_student;  // L_k
    std::vector<Tensor> ce;           // CE(z_k, y)
    std::vector<Tensor> mimicry;      // T^2 / (S - 1) * sum_{j != k} KL(p_j || q_k), before alpha
};

// logits: S >= 2 tensors (B, K) of one float dtype; labels (B) int64 in [0, K); T > 0; alpha >= 0;
// label_smoothing in [0, 1) smooths the cross-entropy as torch's. Each mistake is an Error that
// names mutual_learning_loss and the shapes.
MutualLoss mutual_learning_loss(const std::vector<Tensor>& logits, const Tensor& labels, double T,
                                double alpha, double label_smoothing = 0.0);

// The seed peer k's weights are drawn from: the k-th output of SplitMix64 started at run_seed
// (Steele, Lea, Flood 2014), so every peer of every seed starts elsewhere.
std::uint64_t peer_seed(std::uint64_t run_seed, std::int64_t peer);

// What a run ends with for one peer (for the --seeds summary). NaN where a split is absent.
struct PeerRecord {
    std::string spec;
    std::int64_t best_epoch = 0;  // by its own validation top-1 (the last epoch without a val split)
    double best_val_top1 = 0, best_test_top1 = 0, last_test_top1 = 0;
};

class PeerSet;  // the peers as one module, with their records (mutual_learning.cpp)

class MutualLearning {
public:
    // Builds the peers from config.dml and checks each against the data (classes, a trial batch
    // of both transforms): an Error names the peer and its spec. `student` is student 0.
    MutualLearning(const DistillConfig& config, std::shared_ptr<Model> student,
                   const DatasetSplits& data);
    ~MutualLearning();

    // The peers as the trainer's objectives, the loss terms, the peers' evaluation columns and
    // the end-of-epoch bookkeeping (these refer to this object, which must outlive the run).
    TrainerAddons addons();
    LossFn loss_fn();
    LossOutput loss(Model& student, const Batch& batch, const StepContext& ctx);

    std::int64_t num_students() const { return static_cast<std::int64_t>(peers_.size()) + 1; }
    const std::vector<std::shared_ptr<Model>>& peers() const { return peers_; }
    std::vector<PeerRecord> peer_records() const;
    // A few lines for the console: the students, their parameter counts and files.
    std::string describe() const;

private:
    std::vector<double> evaluate_peers(const std::string& split, DataLoader& loader);
    std::string end_epoch(std::int64_t epoch, const std::string& run_dir);

    std::shared_ptr<Model> student_;
    std::string student_spec_;
    std::vector<std::shared_ptr<Model>> peers_;
    std::vector<std::string> peer_specs_;
    std::vector<std::uint64_t> peer_seeds_;
    std::uint64_t run_seed_ = 0;
    std::shared_ptr<PeerSet> set_;
    double T_ = 1, alpha_ = 1, label_smoothing_ = 0;
    // This epoch's top-1 of each peer on val and test (NaN until evaluated).
    std::vector<double> val_top1_, test_top1_;
};

}  // namespace retort
