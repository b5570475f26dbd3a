// distill/born_again.h: born-again networks, `retort distill` with [distill] mode = born_again:
// generations of one architecture, each trained from scratch and taught by the one before, then
// evaluated alone and as ensembles.
//
// Shapes: B batch, K classes; s the logits (B, K) of the generation being trained, t those of its
// teacher (the previous generation), y the labels (B).
//
// Paper: Furlanello, Lipton, Tschannen, Itti, Anandkumar, "Born-Again Neural Networks", ICML 2018.
//   - Generation 0 is [model] trained from the labels alone, exactly as `retort train` trains it
//     (same weights from run.seed, same loss), or the best.safetensors of an existing `retort
//     train` run given as [born_again] first (it must have trained [model] on the same data with
//     the same data.val_size and run.seed, so that every generation holds out the same validation
//     samples; checked before anything is written).
//   - Generation k = 1 .. N ([born_again] generations) is a fresh [model] whose weights are drawn
//     from generation_seed(run.seed, k) (SplitMix64, as the peers of mode = dml), taught by
//     generation k - 1's best.safetensors (frozen, eval mode, BatchNorm folded, no graph):
//         with_labels = false:  L = T^2 KL( softmax(t / T) || softmax(s / T) )
//         with_labels = true:   L = CE(s, y) + T^2 KL( softmax(t / T) || softmax(s / T) )
//     KL batchmean. At the default T = 1 the KD term is the cross-entropy to the teacher's
//     distribution minus its (constant) entropy: the paper's BAN loss; with labels it is the sum
//     of the label and teacher cross-entropies with equal weights, the paper's "BAN+L" variant.
//     optim.label_smoothing smooths the CE term.
//   - run.seed also draws the data split (and synthetic data), the loader's order and its
//     augmentation for every generation, so all generations share one validation split.
//   - After the last generation, each generation's best.safetensors is evaluated on the
//     validation and test splits, and so are two ensembles that average the generations' softmax
//     probabilities: generations 1 .. N (the paper's BAN ensemble, of the born-again students
//     only) and 0 .. N (with the teacher).
//
// The run directory RUN_DIR:
//   config                 the whole configuration (mode = born_again)
//   gen-0, gen-1, ...      one ordinary run directory per generation (config, metrics.csv,
//                          best.safetensors, last.safetensors); no gen-0 when `first` is given.
//                          Generations 1.. add loss.ce and loss.kd columns to metrics.csv (each
//                          before its weight; loss.ce is recorded also when with_labels = false)
//   generations.json, generations.md   per generation: its directory, seed, best epoch, the val
//                          and test top-1 of its best.safetensors, the last epoch's test top-1,
//                          its training seconds (from its last.safetensors: every epoch's
//                          training and evaluation); the ensembles' val and test top-1; the final
//                          evaluation's seconds and the total (the generations' seconds plus it)
//
// Resuming (`retort distill --resume RUN_DIR`): a generation whose last.safetensors has done
// run.epochs is finished and not run again; the first unfinished one continues from its own
// last.safetensors (bit for bit, as any run), one with no checkpoint yet starts over; then the
// rest follow and the evaluation is redone. born_again.generations may be raised on --resume to
// add generations; run.epochs may not change (the finished generations taught the next ones).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "distill/distill_config.h"
#include "distill/trainer.h"
#include "engine/io/config.h"
#include "models/model.h"

namespace retort {

// The seed generation k's initial weights are drawn from: run.seed for generation 0 (as `retort
// train`), peer_seed(run.seed, k) >> 1 for k >= 1 (SplitMix64 as for the peers of
// distill/mutual_learning.h, one bit shorter so that it fits a signed 64-bit integer).
std::uint64_t generation_seed(std::uint64_t run_seed, std::int64_t generation);
// RUN_DIR/gen-<k>
std::string generation_dir(const std::string& run_dir, std::int64_t generation);

// What a generation's directory holds now.
enum class GenerationState {
    absent,      // no directory: not started
    unstarted,   // a directory without last.safetensors: killed as it started, starts over
    unfinished,  // a checkpoint of fewer than `epochs` epochs: continues from it
    finished,    // a checkpoint of `epochs` epochs or more
};
GenerationState generation_state(const std::string& dir, std::int64_t epochs);

// The checks on born_again.first (a directory, with best.safetensors and config, trained on the
// same data.path, data.format, data.val_size and run.seed, its weights loading strictly into
// [model]); each failure is an Error naming the path. Returns the best.safetensors path.
std::string check_first_generation(const DistillConfig& config);

// One generation after the run, read back from its files (NaN where a number is unknown).
struct GenerationRecord {
    std::int64_t generation = 0;
    std::string dir;        // "gen-<k>", or born_again.first as given
    std::uint64_t seed = 0;  // generation_seed (for `first`: its own run.seed, the same)
    std::int64_t best_epoch = 0;
    double best_val_top1 = 0, best_test_top1 = 0;  // best.safetensors evaluated on val and test
    double last_test_top1 = 0;                     // metrics.csv: the last test row
    double seconds = 0;                            // last.safetensors: the run's wall time
};

// An ensemble's members (generation numbers) and its accuracy: softmax probabilities averaged.
struct EnsembleRecord {
    std::vector<std::int64_t> members;
    double val_top1 = 0, test_top1 = 0;
};

struct BornAgainSummary {
    std::vector<GenerationRecord> generations;  // 0 .. N
    EnsembleRecord students;                     // generations 1 .. N (the paper's)
    EnsembleRecord all;                          // generations 0 .. N
    double eval_seconds = 0;
    double total_seconds = 0;
};

// One generation's training, handed to whoever runs it (the CLI prints progress around it).
struct GenerationJob {
    Trainer& trainer;
    const Model& model;
    std::string dir;        // the generation's run directory
    bool resume = false;    // false: a new run in `dir`, with `config` saved there
    const Config& config;   // the generation's configuration (run.dir = dir)
    std::string lines;      // what the generation is: its seed and its teacher, for the console
};
// Starts or resumes job.trainer in job.dir and trains to the end.
using GenerationRunner = std::function<void(const GenerationJob& job)>;
// The runner without a console: start() or resume(), then run().
void run_generation_quietly(const GenerationJob& job);

class BornAgain {
public:
    // Checks `first` (if given), opens the data and checks [model] against it: everything that
    // can fail before a file is written. config.resolved, the whole configuration, is saved as
    // RUN_DIR/config and, with its run.dir, as each generation's config.
    explicit BornAgain(const DistillConfig& config);
    ~BornAgain();

    // Lines about the generations as they are skipped or start (nullptr: nowhere, the default).
    void set_console(std::FILE* out) { console_ = out; }

    // A new run: run_dir must be new or empty; it gets the config, then every generation.
    BornAgainSummary start(const std::string& run_dir, const GenerationRunner& runner);
    // Continues the run in run_dir (see the top of this file). An Error when every generation has
    // finished and generations.json is written (raise born_again.generations to add one).
    BornAgainSummary resume(const std::string& run_dir, const GenerationRunner& runner);

    // A few lines for the console: the generations, the loss, the files.
    std::string describe() const;
    const DatasetSplits& data() const { return data_; }

private:
    BornAgainSummary train_generations(const std::string& run_dir, const GenerationRunner& runner);
    void train_generation(std::int64_t k, const std::string& run_dir, const GenerationRunner& runner);
    std::string teacher_weights(std::int64_t k, const std::string& run_dir) const;
    BornAgainSummary summarize(const std::string& run_dir) const;
    void message(const std::string& line) const;

    DistillConfig config_;
    DatasetSplits data_;
    std::string first_weights_;  // born_again.first's best.safetensors, or ""
    std::FILE* console_ = nullptr;
};

// Writes RUN_DIR/generations.json and RUN_DIR/generations.md (atomically).
void write_generations_summary(const std::string& run_dir, const BornAgainSummary& summary);

}  // namespace retort
