// tools/cmd_distill.cpp: `retort distill`: trains a student with a frozen teacher and a weighted
// list of distillation objectives, through the same loop, run directory and console output as
// `retort train` (tools/training_run.h).
//
//   retort distill --config FILE [--data DIR] [--set section.key=value ...] [--out RUN_DIR]
//                  [--seeds S1,S2,... [--seed-groups G]] [--ranks N | --gpus N]
//   retort distill --resume RUN_DIR [--set run.epochs=N ...]
//
// The config is a training config ([model] is the student) plus [distill] (teacher, its
// weights, objectives, pairs) and the objectives' sections (distill/distill_config.h). Everything
// is checked before the first step and before any file is written: the config, both model specs,
// the teacher's weights against its spec, the classes of teacher, student and data, the feature
// pairs' taps, and the objectives built on a trial batch.
//
// The run directory is a training run's: config, metrics.csv (with the objectives' columns),
// best.safetensors (the student alone: `retort eval` and `retort infer` read it as any trained
// model) and last.safetensors (student, objectives' connectors and state, optimizer, progress),
// from which --resume continues bit for bit. `retort plot` draws its curves.
//
// With [distill] mode = dml there is no teacher: the student ([model], student 0) and its peers
// ([dml] peers) train together by deep mutual learning (distill/mutual_learning.h). The run
// directory then also holds peer-K.best.safetensors and peer-K.last.safetensors for each peer K,
// last.safetensors holds every student, and metrics.csv each student's loss terms and each
// peer's val / test top-1.
//
// With mode = self_distill the network's own best checkpoint so far teaches it
// (distill/self_distillation.h): an ordinary run directory whose last.safetensors also holds the
// teacher snapshot. With mode = born_again, generations of [model] each teach the next
// (distill/born_again.h): RUN_DIR/gen-0, gen-1, ... are ordinary run directories, and
// RUN_DIR/generations.{json,md} evaluate each generation and their ensembles.
// `retort distill --resume RUN_DIR` of a born-again run skips the finished generations, continues
// the unfinished one from its own last.safetensors and trains the rest (--set may also raise
// born_again.generations, but not change run.epochs).
//
// --seeds runs the config once per seed (run.seed = S) into RUN_DIR/seed-S/, one after the
// other, and then writes RUN_DIR/summary.json and RUN_DIR/summary.md: for each seed the epoch
// with the best validation top-1 and the test top-1 there, and the last epoch's test top-1; over
// the seeds their mean and sample standard deviation (the seed also draws the validation split,
// so that differs between seeds too). These are the student's (in a born-again run: the last
// generation's; each seed's generations.json has every generation and the ensembles); a dml run
// adds the same numbers for each peer K (chosen by the peer's own validation top-1), per seed
// and over the seeds. A seed's run is continued with `retort distill --resume RUN_DIR/seed-S`
// (the summary is then not rewritten).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>

#include "distill/born_again.h"
#include "distill/distill_config.h"
#include "distill/distiller.h"
#include "distill/metrics_csv.h"
#include "distill/mutual_learning.h"
#include "distill/self_distillation.h"
#include "engine/dist/communicator.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "tools/commands.h"
#include "tools/options.h"
#include "tools/ranks.h"
#include "tools/training_run.h"

namespace retort::cli {

namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What a finished run reports for the seed summary.
struct Outcome {
    std::uint64_t seed = 0;
    std::string dir;
    std::int64_t best_epoch = 0;
    double best_val_top1 = kNaN, best_test_top1 = kNaN, last_test_top1 = kNaN;
    std::vector<PeerRecord> peers;  // a dml run's peers 1, 2, ...
};

// The test top-1 that metrics.csv records for `epoch`, or NaN.
double test_top1_at(const std::string& run_dir, std::int64_t epoch) {
    const MetricsTable table = read_metrics_table((fs::path(run_dir) / "metrics.csv").string());
    if (!table.has("epoch") || !table.has("top1")) return kNaN;
    double found = kNaN;
    for (std::size_t row = 0; row < table.rows(); ++row)
        if (table.split[row] == "test" && table.numbers.at("epoch")[row] == static_cast<double>(epoch))
            found = table.numbers.at("top1")[row];
    return found;
}

// Student 0's numbers from a finished trainer.
Outcome outcome_of(const Trainer& trainer, const DistillConfig& dc, const std::string& run_dir) {
    Outcome o;
    o.seed = dc.train.run.seed;
    o.dir = run_dir;
    o.best_epoch = trainer.progress().best_epoch;
    if (trainer.progress().best_top1 >= 0) o.best_val_top1 = trainer.progress().best_top1;
    if (trainer.last_test().count > 0) o.last_test_top1 = trainer.last_test().top1;
    o.best_test_top1 = test_top1_at(run_dir, o.best_epoch);
    return o;
}

// mode = dml: the student and its peers, trained together through the same loop.
Outcome mutual_learning(const RunRequest& request, const DistillConfig& dc) {
    std::shared_ptr<Model> student = build_model(dc.train);
    DatasetSplits data = open_data(dc.train);
    MutualLearning dml(dc, student, data);
    Trainer trainer(dc.train, student, data, dml.addons());
    trainer.set_loss(dml.loss_fn());
    run_trainer(trainer, *student, data, dc.train, request, dml.describe());
    Outcome o = outcome_of(trainer, dc, request.run_dir);
    o.peers = dml.peer_records();
    return o;
}

// mode = self_distill: the network and the snapshot of its best checkpoint, through the same loop.
Outcome self_distill(const RunRequest& request, const DistillConfig& dc) {
    std::shared_ptr<Model> network = build_model(dc.train);
    DatasetSplits data = open_data(dc.train);
    SelfDistillation sd(dc, network, data);
    Trainer trainer(dc.train, network, data, sd.addons());
    sd.attach(trainer);
    trainer.set_loss(sd.loss_fn());
    run_trainer(trainer, *network, data, dc.train, request, sd.describe());
    return outcome_of(trainer, dc, request.run_dir);
}

std::string percent(double v) {
    if (!std::isfinite(v)) return "n/a";
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", v);
    return text;
}

// mode = born_again: the generations one after the other (each with the console of a training
// run), then their evaluation. The outcome is the last generation's.
Outcome born_again(const RunRequest& request, const DistillConfig& dc) {
    BornAgain run(dc);
    run.set_console(stdout);
    std::printf("%s\n", run.describe().c_str());
    const GenerationRunner runner = [&](const GenerationJob& job) {
        std::printf("== %s\n", job.lines.c_str());
        std::fflush(stdout);
        // A stopped generation continues with the whole run: --resume takes its root.
        run_trainer(job.trainer, job.model, run.data(), dc.train,
                    RunRequest{job.config, job.dir, job.resume, "distill", request.run_dir});
    };
    const BornAgainSummary summary =
        request.resuming ? run.resume(request.run_dir, runner) : run.start(request.run_dir, runner);
    for (const GenerationRecord& g : summary.generations)
        std::printf("generation %lld (%s): best epoch %lld, val top1 %s, test top1 %s; last epoch's "
                    "test top1 %s\n",
                    static_cast<long long>(g.generation), g.dir.c_str(),
                    static_cast<long long>(g.best_epoch), percent(g.best_val_top1).c_str(),
                    percent(g.best_test_top1).c_str(), percent(g.last_test_top1).c_str());
    std::printf("ensemble of generations 1..%lld: val top1 %s, test top1 %s; of 0..%lld: val top1 "
                "%s, test top1 %s\n",
                static_cast<long long>(dc.born_again.generations), percent(summary.students.val_top1).c_str(),
                percent(summary.students.test_top1).c_str(),
                static_cast<long long>(dc.born_again.generations), percent(summary.all.val_top1).c_str(),
                percent(summary.all.test_top1).c_str());
    std::printf("born-again: %.1f s in all; wrote %s/generations.{json,md}\n", summary.total_seconds,
                request.run_dir.c_str());
    std::fflush(stdout);
    const GenerationRecord& last = summary.generations.back();
    Outcome o;
    o.seed = dc.train.run.seed;
    o.dir = request.run_dir;
    o.best_epoch = last.best_epoch;
    o.best_val_top1 = last.best_val_top1;
    o.best_test_top1 = last.best_test_top1;
    o.last_test_top1 = last.last_test_top1;
    return o;
}

// Builds the teacher, the student, the objectives and the trainer of one run and runs it.
Outcome distill(const RunRequest& request) {
    DistillConfig dc = read_distill_config(request.config);
    if (dc.mode == "dml") return mutual_learning(request, dc);
    if (dc.mode == "self_distill") return self_distill(request, dc);
    if (dc.mode == "born_again") return born_again(request, dc);
    if (dc.teacher_cache == "file" && dc.teacher_cache_file.empty())
        dc.teacher_cache_file = (fs::path(request.run_dir) / "teacher-cache.bin").string();
    // Ranks fill their caches with the samples of their own pieces of the batches: one file each.
    if (dc.teacher_cache == "file" && dist::launched_with_ranks())
        dc.teacher_cache_file += cat(".rank", dist::process_rank());
    std::shared_ptr<Model> student = build_model(dc.train);
    DatasetSplits data = open_data(dc.train);
    std::string weights;
    std::shared_ptr<Model> teacher = load_teacher(dc, *student, &weights);
    Distiller distiller(dc, student, teacher, data);
    Trainer trainer(dc.train, student, data, distiller.addons());
    trainer.set_loss(distiller.loss_fn());
    const std::string lines =
        cat("teacher ", dc.teacher, ": ", teacher->num_parameters(), " parameters, frozen, from ",
            weights, "\n", distiller.describe());
    run_trainer(trainer, *student, data, dc.train, request, lines);
    return outcome_of(trainer, dc, request.run_dir);
}

std::vector<std::uint64_t> parse_seeds(const std::string& text) {
    std::vector<std::uint64_t> seeds;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma - start);
        const std::size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
        item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
        std::uint64_t seed = 0;
        auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), seed);
        require(!item.empty() && error == std::errc() && end == item.data() + item.size() &&
                    seed <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                "--seeds must be whole numbers >= 0 separated by commas, got '", text, "'");
        require(std::find(seeds.begin(), seeds.end(), seed) == seeds.end(), "--seeds: seed ", seed,
                " is given twice");
        seeds.push_back(seed);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    require(seeds.size() >= 2, "--seeds needs at least two seeds for a mean and a standard "
            "deviation (one run: --set run.seed=S)");
    return seeds;
}

struct MeanStd {
    double mean = kNaN, std = kNaN;  // sample standard deviation (n - 1)
    std::size_t count = 0;           // finite values averaged
};

MeanStd mean_std(const std::vector<double>& values) {
    MeanStd r;
    double sum = 0;
    for (double v : values)
        if (std::isfinite(v)) {
            sum += v;
            ++r.count;
        }
    if (r.count == 0) return r;
    r.mean = sum / static_cast<double>(r.count);
    if (r.count < 2) return r;
    double squares = 0;
    for (double v : values)
        if (std::isfinite(v)) squares += (v - r.mean) * (v - r.mean);
    r.std = std::sqrt(squares / static_cast<double>(r.count - 1));
    return r;
}

json::Value json_number(double v) { return std::isfinite(v) ? json::Value(v) : json::Value(); }

std::string plus_minus(const MeanStd& m) { return percent(m.mean) + " ± " + percent(m.std); }

json::Object stats_json(const MeanStd& m) {
    return json::Object{{"mean", json_number(m.mean)},
                        {"std", json_number(m.std)},
                        {"n", static_cast<std::int64_t>(m.count)}};
}

// Over the seeds: the test top-1 at the best epoch and at the last, of student 0 (peer = 0) or
// of a dml run's peer.
struct SeedStats {
    MeanStd best, last;
};

SeedStats seed_stats(const std::vector<Outcome>& runs, std::size_t peer) {
    std::vector<double> best, last;
    for (const Outcome& o : runs) {
        best.push_back(peer == 0 ? o.best_test_top1 : o.peers.at(peer - 1).best_test_top1);
        last.push_back(peer == 0 ? o.last_test_top1 : o.peers.at(peer - 1).last_test_top1);
    }
    return {mean_std(best), mean_std(last)};
}

json::Array peers_json(const std::vector<PeerRecord>& peers) {
    json::Array rows;
    for (std::size_t i = 0; i < peers.size(); ++i)
        rows.push_back(json::Object{{"peer", static_cast<std::int64_t>(i + 1)},
                                    {"best_epoch", peers[i].best_epoch},
                                    {"best_val_top1", json_number(peers[i].best_val_top1)},
                                    {"best_test_top1", json_number(peers[i].best_test_top1)},
                                    {"last_test_top1", json_number(peers[i].last_test_top1)}});
    return rows;
}

void write_summary(const std::string& dir, const std::vector<Outcome>& runs) {
    const SeedStats student = seed_stats(runs, 0);
    const MeanStd &b = student.best, &l = student.last;
    const std::size_t peers = runs.front().peers.size();  // the same config for every seed

    json::Array rows;
    for (const Outcome& o : runs) {
        json::Object row{{"seed", static_cast<std::int64_t>(o.seed)},
                         {"dir", fs::path(o.dir).filename().string()},
                         {"best_epoch", o.best_epoch},
                         {"best_val_top1", json_number(o.best_val_top1)},
                         {"best_test_top1", json_number(o.best_test_top1)},
                         {"last_test_top1", json_number(o.last_test_top1)}};
        if (peers > 0) row.push_back({"peers", peers_json(o.peers)});
        rows.push_back(std::move(row));
    }
    json::Object summary{{"runs", rows}, {"best_test_top1", stats_json(b)}, {"last_test_top1", stats_json(l)}};
    json::Array peer_stats;
    std::string peer_lines;
    for (std::size_t k = 1; k <= peers; ++k) {
        const SeedStats s = seed_stats(runs, k);
        const std::string& spec = runs.front().peers[k - 1].spec;
        peer_stats.push_back(json::Object{{"peer", static_cast<std::int64_t>(k)},
                                          {"model", spec},
                                          {"best_test_top1", stats_json(s.best)},
                                          {"last_test_top1", stats_json(s.last)}});
        peer_lines += cat("- peer ", k, " (", spec, "): ", plus_minus(s.best),
                          " at its best validation epoch, ", plus_minus(s.last), " at the last\n");
    }
    if (peers > 0) summary.push_back({"peers", peer_stats});
    write_file_atomically((fs::path(dir) / "summary.json").string(), json::dump(summary) + "\n");

    std::string md = cat("# ", dir, "\n\nTest top-1 (%) over ", runs.size(),
                         " seeds, mean ± sample standard deviation:\n\n",
                         "- at the epoch with the best validation top-1: ", plus_minus(b), "\n",
                         "- at the last epoch: ", plus_minus(l), "\n",
                         peers > 0 ? "\nThe peers of deep mutual learning, each by its own validation top-1:\n\n" : "",
                         peer_lines, "\n",
                         "| seed | best epoch | val top-1 | test top-1 (best) | test top-1 (last) |\n",
                         "|---|---|---|---|---|\n");
    for (const Outcome& o : runs)
        md += cat("| ", o.seed, " | ", o.best_epoch, " | ", percent(o.best_val_top1), " | ",
                  percent(o.best_test_top1), " | ", percent(o.last_test_top1), " |\n");
    write_file_atomically((fs::path(dir) / "summary.md").string(), md);
    std::printf("seeds: test top1 %s at the best epoch, %s at the last; wrote %s/summary.{json,md}\n",
                plus_minus(b).c_str(), plus_minus(l).c_str(), dir.c_str());
    for (std::size_t k = 1; k <= peers; ++k) {
        const SeedStats s = seed_stats(runs, k);
        std::printf("seeds: peer %zu: test top1 %s at its best epoch, %s at the last\n", k,
                    plus_minus(s.best).c_str(), plus_minus(s.last).c_str());
    }
}

// An outcome as numbers, to travel between ranks: best epoch, the three top-1s, then the same
// four for each peer.
std::vector<double> outcome_numbers(const Outcome& o) {
    std::vector<double> v{static_cast<double>(o.best_epoch), o.best_val_top1, o.best_test_top1,
                          o.last_test_top1};
    for (const PeerRecord& p : o.peers)
        v.insert(v.end(), {static_cast<double>(p.best_epoch), p.best_val_top1, p.best_test_top1,
                           p.last_test_top1});
    return v;
}

Outcome outcome_from(const double* v, const Outcome& like, std::uint64_t seed, const std::string& dir) {
    Outcome o;
    o.seed = seed;
    o.dir = dir;
    o.best_epoch = std::llround(v[0]);
    o.best_val_top1 = v[1];
    o.best_test_top1 = v[2];
    o.last_test_top1 = v[3];
    o.peers = like.peers;  // the same peer specs for every seed
    for (std::size_t k = 0; k < o.peers.size(); ++k) {
        const double* p = v + 4 + 4 * k;
        o.peers[k].best_epoch = std::llround(p[0]);
        o.peers[k].best_val_top1 = p[1];
        o.peers[k].best_test_top1 = p[2];
        o.peers[k].last_test_top1 = p[3];
    }
    return o;
}

Outcome distill(const RunRequest& request);

// One seed's run into RUN_DIR/seed-S.
Outcome distill_seed(const RunRequest& base, std::uint64_t seed) {
    RunRequest request = base;
    request.run_dir = (fs::path(base.run_dir) / cat("seed-", seed)).string();
    request.config.set("run.seed", std::to_string(seed), "--seeds");
    request.config.set("run.dir", request.run_dir, "--seeds");
    // The seeds share one file cache of the teacher's outputs: they train on the same data.
    if (request.config.get_string("distill.teacher_cache") == "file" &&
        request.config.get_string("distill.teacher_cache_file").empty())
        request.config.set("distill.teacher_cache_file",
                           (fs::path(base.run_dir) / "teacher-cache.bin").string(), "--seeds");
    std::printf("== seed %llu: %s\n", static_cast<unsigned long long>(seed), request.run_dir.c_str());
    return distill(request);
}

// --seed-groups G with N ranks: G groups of N / G ranks, group g training seeds g, g + G, ...
// (data parallel within the group); then every outcome goes to rank 0, which writes the summary.
int distill_seed_groups(const RunRequest& base, const std::vector<std::uint64_t>& seeds, int groups) {
    const std::shared_ptr<dist::Communicator> world = dist::world();
    const int ranks = world->size();
    require(groups <= ranks && ranks % groups == 0, "--seed-groups ", groups, ": the ", ranks,
            " ranks must split into ", groups, " groups of equal size");
    require(static_cast<std::size_t>(groups) <= seeds.size(), "--seed-groups ", groups, ": more groups than the ",
            seeds.size(), " seeds");
    const int group = world->rank() / (ranks / groups);
    std::shared_ptr<dist::Communicator> mine = world->split(group);
    mine->timeout_seconds = world->timeout_seconds;
    dist::set_world(mine);
    std::vector<Outcome> ran;
    for (std::size_t i = static_cast<std::size_t>(group); i < seeds.size(); i += static_cast<std::size_t>(groups))
        ran.push_back(distill_seed(base, seeds[i]));
    dist::set_world(world);
    // Each seed's numbers from its group's first rank, zeros from every other rank: the sum is
    // the table. The groups finish at different times; each guards its own ranks with the dist
    // timeout, so this one waits as long as the slowest group trains.
    const std::size_t width = outcome_numbers(ran.front()).size();
    std::vector<double> table(seeds.size() * width, 0.0);
    if (mine->is_root())
        for (std::size_t k = 0; k < ran.size(); ++k) {
            const std::vector<double> v = outcome_numbers(ran[k]);
            std::copy(v.begin(), v.end(), table.begin() + static_cast<long>((group + k * groups) * width));
        }
    const double timeout = world->timeout_seconds;
    world->timeout_seconds = 30 * 86400.0;
    table = world->sum(std::move(table), "collecting the seeds' results");
    world->timeout_seconds = timeout;
    if (!world->is_root()) return 0;
    std::vector<Outcome> runs;
    for (std::size_t i = 0; i < seeds.size(); ++i)
        runs.push_back(outcome_from(table.data() + i * width, ran.front(), seeds[i],
                                    (fs::path(base.run_dir) / cat("seed-", seeds[i])).string()));
    write_summary(base.run_dir, runs);
    return 0;
}

// One run per seed into RUN_DIR/seed-S, then the summary.
int distill_seeds(const RunRequest& base, const std::vector<std::uint64_t>& seeds) {
    if (seed_groups() > 1) return distill_seed_groups(base, seeds, seed_groups());
    std::vector<Outcome> runs;
    for (std::uint64_t seed : seeds) runs.push_back(distill_seed(base, seed));
    if (dist::world()->is_root()) write_summary(base.run_dir, runs);
    return 0;
}

// `retort distill --resume DIR` of a born-again run: DIR holds the generations' run directories
// but no checkpoint of its own, so its config is read here rather than by prepare_run. Returns
// false (leaving the request alone) when DIR is not a born-again run; an Error when it is one of
// a born-again run's generations, which continue with the whole run.
bool prepare_born_again_resume(const RunCommand& command, const Options& options,
                               const std::vector<std::string>& overrides, RunRequest& request) {
    const std::string dir = options.get("resume");
    const fs::path saved = fs::path(dir) / "config";
    if (dir.empty() || !fs::is_regular_file(saved)) return false;
    Config config = command.schema;
    try {
        config.load_file(saved.string());
    } catch (const Error&) {
        return false;  // prepare_run reports it
    }
    if (config.get_string("distill.mode") != "born_again") return false;
    if (fs::exists(fs::path(dir) / "last.safetensors")) {
        fs::path generation = fs::path(dir).lexically_normal();
        if (generation.filename().empty()) generation = generation.parent_path();  // "gen-1/"
        const std::string root = generation.parent_path().string();
        fail("distill: ", dir, " is one generation of the born-again run in ",
             root.empty() ? "." : root, ": continue the whole run with `retort distill --resume ",
             root.empty() ? "." : root, "`");
    }
    require(options.get("out").empty(), "distill: --out cannot be used with --resume (the run stays in ",
            dir, ")");
    std::vector<std::string> resume_overrides = overrides;
    if (!options.get("data").empty()) resume_overrides.push_back("data.path=" + options.get("data"));
    std::vector<std::string> allowed{"born_again.generations"};
    for (const std::string& key : resume_overridable_keys())
        if (key != "run.epochs") allowed.push_back(key);
    for (const std::string& assignment : resume_overrides)
        require(!assignment.starts_with("run.epochs="), "--set ", assignment,
                ": run.epochs cannot change when a born-again run resumes: its finished generations "
                "taught the next ones after run.epochs epochs; add generations with --set "
                "born_again.generations=N, or start a new run");
    apply_resume_overrides(config, resume_overrides, allowed);
    config.set("run.dir", dir, "--resume");
    command.check(config);
    request = RunRequest{config, dir, true, "distill", ""};
    return true;
}

}  // namespace

int run_distill(const std::vector<std::string>& raw_args) {
    std::vector<std::string> args = raw_args;
    const std::vector<std::string> overrides = take_overrides(args);
    Options opts("distill", args,
                 run_options({{"seeds", "", "comma-separated seeds: one run per seed into "
                                            "RUN_DIR/seed-S, then RUN_DIR/summary.{json,md}"},
                              {"seed-groups", "", "G: with several ranks and --seeds, G groups of ranks "
                                                  "train their shares of the seeds at the same time"}}));
    const RunCommand command{"distill", distill_config_schema(), distill_resume_overridable_keys(),
                             [](const Config& c) { return read_distill_config(c).train; }};
    if (opts.help_requested()) {
        print_run_help(command.schema);
        return 0;
    }
    const std::string seeds_text = opts.get("seeds");
    require(seeds_text.empty() || opts.get("resume").empty(),
            "distill: --seeds starts new runs; continue one seed's run with --resume RUN_DIR/seed-S");
    const std::vector<std::uint64_t> seeds =
        seeds_text.empty() ? std::vector<std::uint64_t>{} : parse_seeds(seeds_text);
    RunRequest request;
    if (!prepare_born_again_resume(command, opts, overrides, request))
        request = prepare_run(command, opts, overrides);
    require(seed_groups() == 1 || !seeds.empty(), "distill: --seed-groups splits the ranks among the "
            "seeds of --seeds; give --seeds too");
    if (!seeds.empty()) {
        require(request.config.get_string("distill.mode") != "born_again" ||
                    request.config.get_string("born_again.first").empty(),
                "distill: --seeds trains generation 0 once per seed, but born_again.first = '",
                request.config.get_string("born_again.first"),
                "' names one run of one seed; leave born_again.first empty with --seeds");
        return distill_seeds(request, seeds);
    }
    distill(request);
    return 0;
}

}  // namespace retort::cli
