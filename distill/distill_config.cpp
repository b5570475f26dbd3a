// distill/distill_config.cpp: the schema of a distillation run's configuration and its typed form
// (the keys and their meaning in distill_config.h).
//
// The list-valued keys (objectives, pairs, peers) are checked as the file is read, by the schema's
// validate hook, so a mistake is reported with the file and line ("run.cfg:14: distill.objectives
// = 'ce:1, kdd:1': unknown objective 'kdd'; valid objectives: ...") before anything is built.
// Which keys a run needs depends on distill.mode, so those rules are checked once the whole
// configuration is known (read_distill_config), where a resumed run's saved config goes too: a
// key is "given" there when it differs from its default, since a saved config writes every key.
#include "distill/distill_config.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "distill/objective.h"
#include "engine/error.h"

namespace retort {

namespace {

std::string trim(const std::string& s) {
    const std::size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// "a, b ,c" -> {"a", "b", "c"}; "" and "  " -> {}.
std::vector<std::string> split_items(const std::string& text) {
    std::vector<std::string> items;
    if (trim(text).empty()) return items;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        items.push_back(trim(text.substr(start, comma - start)));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

// A validate hook for the schema: the parser's Error message as the problem.
template <class Parse>
std::function<std::string(const std::string&)> problem_of(Parse parse) {
    return [parse](const std::string& text) -> std::string {
        try {
            parse(text);
            return "";
        } catch (const Error& e) {
            return cat("= '", text, "': ", e.what());
        }
    };
}

std::string join_keys(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
    return text;
}

// mode = distill: the teacher and its objectives must be given.
void check_distill_mode(const DistillConfig& d, const Config& c) {
    require(!d.teacher.empty(), "distill.teacher is required in mode = distill: give the teacher's "
            "model spec (or set distill.mode = dml to train students together without a teacher)");
    require(!d.teacher_weights.empty(), "distill.teacher_weights is required in mode = distill: give "
            "the teacher's weights file or run directory");
    require(!c.get_string("distill.objectives").empty(),
            "distill.objectives is required in mode = distill: it needs at least one objective, "
            "e.g. ce:0.1, kd:0.9");
    require(c.get_string("dml.peers").empty(), "dml.peers = '", c.get_string("dml.peers"),
            "' is only read in mode = dml; set distill.mode = dml to train the student with peers");
}

// The modes without a separate teacher (dml, self_distill, born_again): nothing that describes
// a teacher or its objectives may be given. `teachers` says where their teaching comes from and
// `loss` what their loss is, for the messages.
void check_no_teacher_mode(const DistillConfig& d, const Config& c, const std::string& teachers,
                           const std::string& loss) {
    const std::string mode = "mode = " + d.mode;
    require(d.teacher.empty(), "distill.teacher = '", d.teacher, "': ", mode,
            " trains without a teacher (", teachers, "); remove distill.teacher, or set "
            "distill.mode = distill");
    require(d.teacher_weights.empty(), "distill.teacher_weights = '", d.teacher_weights, "': ",
            mode, " trains without a teacher (", teachers, ")");
    std::vector<std::string> unused;
    if (!c.get_string("distill.objectives").empty()) unused.push_back("distill.objectives");
    if (!c.get_string("distill.pairs").empty()) unused.push_back("distill.pairs");
    if (c.get_string("distill.teacher_cache") != "off") unused.push_back("distill.teacher_cache");
    if (!c.get_string("distill.teacher_cache_file").empty()) unused.push_back("distill.teacher_cache_file");
    require(unused.empty(), join_keys(unused), ": not used in ", mode, ", whose loss is ", loss,
            "; remove ", unused.size() == 1 ? "it" : "them");
}

// Whether a key holds another value than its default (a saved config writes every key, so
// "given" cannot be told apart from "written back").
bool differs_from_default(const Config& c, const ConfigKey& key) {
    const std::string name = key.section + "." + key.key;
    switch (key.type) {
        case ConfigType::integer: return c.get_int(name) != std::stoll(key.default_value);
        case ConfigType::real: return c.get_double(name) != std::stod(key.default_value);
        case ConfigType::boolean: return c.get_bool(name) != (key.default_value == "true");
        case ConfigType::string: return c.get_string(name) != key.default_value;
    }
    return false;
}

// The keys of a mode's own section ([dml], [self_distill], [born_again]) are read only in that
// mode: one set to another value than its default in another mode is a mistake.
void check_mode_sections(const DistillConfig& d, const Config& c) {
    for (const std::string section : {"dml", "self_distill", "born_again"}) {
        if (section == d.mode) continue;
        for (const ConfigKey& key : c.keys()) {
            if (key.section != section || !differs_from_default(c, key)) continue;
            const std::string name = section + "." + key.key;
            std::string value;
            if (key.type == ConfigType::string) value = c.get_string(name);
            else if (key.type == ConfigType::integer) value = std::to_string(c.get_int(name));
            else if (key.type == ConfigType::real) value = cat(c.get_double(name));
            else value = c.get_bool(name) ? "true" : "false";
            fail(name, " = '", value, "' is only read in mode = ", section, "; set distill.mode = ",
                 section, " or remove it");
        }
    }
}

}  // namespace

std::vector<ObjectiveTerm> parse_objective_list(const std::string& text) {
    std::vector<ObjectiveTerm> terms;
    std::set<std::string> seen;
    for (const std::string& item : split_items(text)) {
        const std::size_t colon = item.find(':');
        require(colon != std::string::npos && colon > 0,
                "expected name:weight items such as ce:0.1, kd:0.9, got '", item, "'");
        ObjectiveTerm term;
        term.name = trim(item.substr(0, colon));
        find_objective(term.name);  // an unknown name lists the valid ones
        const std::string weight = trim(item.substr(colon + 1));
        char* end = nullptr;
        term.weight = std::strtod(weight.c_str(), &end);
        require(!weight.empty() && *end == '\0' && std::isfinite(term.weight) && term.weight >= 0,
                "the weight of ", term.name, " must be a finite number >= 0, got '", weight, "'");
        require(seen.insert(term.name).second, "objective ", term.name, " is given twice");
        terms.push_back(term);
    }
    require(!terms.empty(), "needs at least one objective, e.g. ce:0.1, kd:0.9");
    return terms;
}

std::vector<TapPair> parse_pair_list(const std::string& text) {
    std::vector<TapPair> pairs;
    for (const std::string& item : split_items(text)) {
        const std::size_t colon = item.find(':');
        TapPair pair;
        if (colon == std::string::npos) {
            pair.student = pair.teacher = item;
        } else {
            require(item.find(':', colon + 1) == std::string::npos,
                    "a pair is student_tap:teacher_tap, got '", item, "'");
            pair.student = trim(item.substr(0, colon));
            pair.teacher = trim(item.substr(colon + 1));
        }
        require(!pair.student.empty() && !pair.teacher.empty(),
                "a pair is student_tap:teacher_tap with both taps named, got '", item, "'");
        pairs.push_back(pair);
    }
    return pairs;
}

std::vector<std::string> parse_peer_list(const std::string& text, const std::string& model_spec) {
    if (trim(text).empty()) return {model_spec};
    std::vector<std::string> peers;
    std::size_t start = 0;
    while (true) {
        const std::size_t semicolon = text.find(';', start);
        peers.push_back(trim(text.substr(start, semicolon - start)));
        require(!peers.back().empty(), "peer ", peers.size(),
                " is empty: give one model spec per peer, separated by ';'");
        if (semicolon == std::string::npos) return peers;
        start = semicolon + 1;
    }
}

Config distill_config_schema() {
    Config c = train_config_schema();
    c.declare_string("distill", "mode", "distill",
                     "distill: a frozen teacher and weighted objectives; dml: deep mutual learning, "
                     "the student and its [dml] peers trained together without a teacher; "
                     "self_distill: the network's best checkpoint so far teaches it; born_again: "
                     "generations of the network, each taught by the one before",
                     {"distill", "dml", "self_distill", "born_again"});
    // Required in mode = distill only (read_distill_config says so).
    c.declare_string("distill", "teacher", "",
                     "model spec of the teacher, e.g. resnet56:in_chans=1,num_classes=10 (mode = distill)");
    c.declare_string("distill", "teacher_weights", "",
                     "the teacher's weights: a .safetensors file, or a `retort train` run directory "
                     "(its best.safetensors) (mode = distill)");

    ConfigKey objectives;
    objectives.section = "distill";
    objectives.key = "objectives";
    objectives.default_value = "";
    objectives.help = "name:weight, ... (e.g. ce:0.1, kd:0.9): the loss is the weighted sum of these "
                      "objectives (mode = distill)";
    objectives.validate = [](const std::string& text) {
        return text.empty() ? std::string() : problem_of(parse_objective_list)(text);
    };
    c.declare(std::move(objectives));

    ConfigKey pairs;
    pairs.section = "distill";
    pairs.key = "pairs";
    pairs.default_value = "";
    pairs.help = "student_tap:teacher_tap, ... read by every feature objective without its own "
                 "pairs (\"\": the stage outputs both models have, or ViT tokens at proportional depths)";
    pairs.validate = problem_of(parse_pair_list);
    c.declare(pairs);

    c.declare_string("distill", "teacher_cache", "off",
                     "the teacher's outputs computed once per sample and input variant and reused: "
                     "off (the teacher runs on every batch), memory, or file",
                     {"off", "memory", "file"});
    c.declare_string("distill", "teacher_cache_file", "",
                     "where teacher_cache = file keeps its entries (\"\": teacher-cache.bin in the run "
                     "directory, or next to the seed directories of a --seeds run)");
    c.declare_double("distill", "teacher_cache_limit_gib", 8, 0.001, 1024,
                     "the most memory (teacher_cache = memory) or disk (file) the cache may take, in GiB");

    ConfigKey peers;
    peers.section = "dml";
    peers.key = "peers";
    peers.default_value = "";
    peers.help = "model specs of the other students, separated by ';' (\"\": one peer with [model]'s "
                 "spec); [model] is student 0 (mode = dml)";
    peers.validate = problem_of([](const std::string& text) { return parse_peer_list(text, "[model]"); });
    c.declare(std::move(peers));
    c.declare_double("dml", "T", 1.0, 0.0, 100.0,
                     "temperature of the mutual KL term (the paper's: 1)", /*min_exclusive=*/true);
    c.declare_double("dml", "alpha", 1.0, 0.0, 1e6, "weight of the mutual KL term (the paper's: 1)");

    c.declare_int("self_distill", "start", 2, 1, 100000,
                  "the first epoch (1-based) whose loss distils from the teacher (mode = self_distill)");
    c.declare_double("self_distill", "lambda", 0.5, 0.0, 1.0,
                     "weight of the KD term: loss = (1 - lambda) CE + lambda T^2 KL");
    c.declare_double("self_distill", "T", 4.0, 0.0, 100.0, "temperature of the KD term",
                     /*min_exclusive=*/true);
    c.declare_string("self_distill", "update", "best",
                     "best: the teacher becomes the network whenever its validation top-1 improves; "
                     "every_k: after every `every`-th epoch",
                     {"best", "every_k"});
    c.declare_int("self_distill", "every", 1, 1, 100000,
                  "update = every_k: the teacher is replaced after epochs every, 2 every, ...");

    c.declare_int("born_again", "generations", 3, 1, 1000,
                  "born-again generations after generation 0, each taught by the one before "
                  "(mode = born_again)");
    c.declare_string("born_again", "first", "",
                     "\"\": train generation 0 from the labels; or a finished `retort train` run "
                     "directory of [model] on the same data and seed (its best.safetensors)");
    c.declare_bool("born_again", "with_labels", true,
                   "true: generations 1.. learn from CE + T^2 KL; false: from T^2 KL alone");
    c.declare_double("born_again", "T", 1.0, 0.0, 100.0,
                     "temperature of the KD term (1: the teacher's own distribution, as the paper)",
                     /*min_exclusive=*/true);

    declare_objective_keys(c);
    for (const ObjectiveEntry& entry : objective_table()) {
        if (entry.max_pairs == 0) continue;  // a logit objective reads no feature pairs
        ConfigKey own = pairs;
        own.section = entry.name;
        own.help = "student_tap:teacher_tap, ... for " + entry.name + " alone (\"\": distill.pairs)";
        c.declare(std::move(own));
    }
    return c;
}

DistillConfig read_distill_config(const Config& c) {
    DistillConfig d;
    d.train = read_train_config(c);
    d.resolved = c;
    d.mode = c.get_string("distill.mode");
    d.teacher = c.get_string("distill.teacher");
    d.teacher_weights = c.get_string("distill.teacher_weights");
    d.teacher_cache = c.get_string("distill.teacher_cache");
    d.teacher_cache_file = c.get_string("distill.teacher_cache_file");
    d.teacher_cache_limit_gib = c.get_double("distill.teacher_cache_limit_gib");
    require(d.train.data.batch_transform.empty(), "data.batch_transform = '",
            d.train.data.batch_transform,
            "' is not supported in a distillation run: mixup and cutmix make soft targets, but the "
            "objectives read hard labels");

    if (d.mode == "dml") {
        check_no_teacher_mode(d, c, "the students learn from each other",
                              "each student's cross-entropy plus the mutual KL term ([dml] T, alpha)");
        check_mode_sections(d, c);
        d.dml.peers = parse_peer_list(c.get_string("dml.peers"), d.train.model);
        d.dml.T = c.get_double("dml.T");
        d.dml.alpha = c.get_double("dml.alpha");
        return d;
    }
    if (d.mode == "self_distill") {
        check_no_teacher_mode(d, c, "the network's own best checkpoint teaches it",
                              "(1 - lambda) CE + lambda T^2 KL against that checkpoint ([self_distill])");
        check_mode_sections(d, c);
        SelfDistillConfig& s = d.self_distill;
        s.start = c.get_int("self_distill.start");
        s.lambda = c.get_double("self_distill.lambda");
        s.T = c.get_double("self_distill.T");
        s.update = c.get_string("self_distill.update");
        s.every = c.get_int("self_distill.every");
        require(s.update == "every_k" || s.every == 1, "self_distill.every = ", s.every,
                " is only read with self_distill.update = every_k");
        require(s.start <= d.train.run.epochs, "self_distill.start = ", s.start,
                " is after the last epoch (run.epochs = ", d.train.run.epochs,
                "): the run would never distil");
        return d;
    }
    if (d.mode == "born_again") {
        check_no_teacher_mode(d, c, "each generation is taught by the one before",
                              "CE + T^2 KL against the previous generation ([born_again])");
        check_mode_sections(d, c);
        BornAgainConfig& b = d.born_again;
        b.generations = c.get_int("born_again.generations");
        b.first = c.get_string("born_again.first");
        b.with_labels = c.get_bool("born_again.with_labels");
        b.T = c.get_double("born_again.T");
        return d;
    }

    check_distill_mode(d, c);
    check_mode_sections(d, c);
    d.objectives = parse_objective_list(c.get_string("distill.objectives"));
    d.pairs = parse_pair_list(c.get_string("distill.pairs"));
    for (const ObjectiveTerm& term : d.objectives) {
        const std::string key = term.name + ".pairs";
        if (!c.has(key)) continue;
        std::vector<TapPair> own = parse_pair_list(c.get_string(key));
        if (!own.empty()) d.objective_pairs[term.name] = own;  // "": distill.pairs
    }
    require(d.train.optim.label_smoothing == 0, "optim.label_smoothing = ",
            d.train.optim.label_smoothing,
            " is not used in a distillation run: the cross-entropy is the ce objective; set "
            "[ce] label_smoothing instead");
    return d;
}

std::string resolve_teacher_weights(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        const std::string best = (fs::path(path) / "best.safetensors").string();
        require(fs::is_regular_file(best, ec), "distill.teacher_weights: the run directory ", path,
                " has no best.safetensors (train the teacher with `retort train` first, or name a "
                "weights file)");
        return best;
    }
    require(fs::is_regular_file(path, ec), "distill.teacher_weights: no weights file or run directory at ",
            path);
    return path;
}

const std::vector<std::string>& distill_resume_overridable_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k = resume_overridable_keys();
        k.push_back("distill.teacher_weights");
        return k;
    }();
    return keys;
}

}  // namespace retort
