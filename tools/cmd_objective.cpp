// tools/cmd_objective.cpp: `retort objective`: evaluates one distillation objective on tensors
// from a safetensors file and writes its loss and the gradients of the student's inputs, so a
// loss can be compared with another implementation (a PyTorch script) value for value.
//
//   retort objective --method NAME --inputs IN.safetensors --output OUT.safetensors
//                    [--set key=value ...] [--seed N]
//
// IN holds, by name (anything else is refused, so a misspelt name is never silently ignored):
//   student.logits, teacher.logits    (B, K) float32
//   labels                            (B) int64 (int32 is accepted and widened)
//   student.feat.X, teacher.feat.X    (B, ...) float32, one feature pair per name X; pairs are
//                                     taken in the byte order of X (safetensors headers are
//                                     sorted by name, so the file has no other order to keep):
//                                     name them 0_layer1, 1_layer2, ... to choose the order
//   param.NAME                        the objective's parameters and buffers by state_dict name:
//                                     all of them or none (none: the --seed initialization)
//   indices                           (B) int64, each sample's index in the training set
//   extra.X                           any tensor, handed to the objective as extras["X"]
// --set epoch=E and --set epochs=N place the step in the training schedule (DKD's warm-up);
// --set num_samples=N is the training-set size (default: max(indices) + 1, or 0 without
// indices); every other --set key=value is a hyperparameter of the method (its config section;
// "NAME.key=value" works too).
//
// OUT gets `loss` (float32, shape ()), `grad.<name>` for every student-side float input
// (student.logits, student.feat.X; zeros where the method does not read it) and
// `grad.param.NAME` for every parameter of the objective (its connectors). It is one training
// step's computation (ObjectiveInputs::training is true). Every input is checked before the
// objective runs, and the file appears atomically: on any error nothing is written.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <set>

#include "distill/objective.h"
#include "engine/engine.h"
#include "tools/commands.h"
#include "tools/options.h"

namespace retort::cli {

namespace {

constexpr const char* kStudentFeat = "student.feat.";
constexpr const char* kTeacherFeat = "teacher.feat.";
constexpr const char* kParam = "param.";
constexpr const char* kExtra = "extra.";

// The schedule position and training-set size given with --set (not hyperparameters).
struct RunSettings {
    std::int64_t epoch = 0, epochs = 0;
    std::optional<std::int64_t> num_samples;
};

std::int64_t parse_count(const std::string& assignment, const std::string& value, std::int64_t min) {
    std::int64_t v = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), v);
    require(!value.empty() && error == std::errc() && end == value.data() + value.size() && v >= min,
            "--set ", assignment, ": expected an integer >= ", min, ", got '", value, "'");
    return v;
}

std::string method_keys(const Config& config, const std::string& method) {
    std::string keys;
    for (const ConfigKey& k : config.keys())
        if (k.section == method) keys += (keys.empty() ? "" : ", ") + k.key;
    return keys.empty() ? "(none)" : keys;
}

// Applies the --set assignments: the schedule keys to the result, the rest to [method].
RunSettings apply_sets(Config& config, const std::string& method,
                       const std::vector<std::string>& sets) {
    RunSettings run;
    for (const std::string& assignment : sets) {
        const std::size_t eq = assignment.find('=');
        require(eq != std::string::npos && eq > 0, "--set ", assignment, ": expected key=value");
        std::string key = assignment.substr(0, eq);
        const std::string value = assignment.substr(eq + 1);
        if (key.starts_with(method + ".")) key = key.substr(method.size() + 1);
        if (key == "epoch") {
            run.epoch = parse_count(assignment, value, 0);
        } else if (key == "epochs") {
            run.epochs = parse_count(assignment, value, 0);
        } else if (key == "num_samples") {
            run.num_samples = parse_count(assignment, value, 1);
        } else {
            bool known = false;
            for (const ConfigKey& k : config.keys()) known |= k.section == method && k.key == key;
            require(known, "--set ", assignment, ": objective ", method, " has no key '", key,
                    "'; valid keys: ", method_keys(config, method),
                    " (and epoch, epochs, num_samples)");
            config.set(method + "." + key, value, "--set " + assignment);
        }
    }
    require(run.epochs == 0 || run.epoch < run.epochs, "--set epoch=", run.epoch,
            ": the epoch counts from 0 and must be below epochs (", run.epochs, ")");
    return run;
}

// The input file, sorted by role.
struct InputFile {
    std::string path;
    Tensor student_logits, teacher_logits, labels, indices;
    std::map<std::string, Tensor> student_feats, teacher_feats;  // by pair name X
    std::map<std::string, Tensor> params;                        // by state_dict name
    std::map<std::string, Tensor> extras;
};

Tensor checked_float(const std::string& name, const Tensor& t) {
    require(t.dtype() == DType::f32, name, " must be float32, got ", dtype_name(t.dtype()));
    require(t.dim() >= 1, name, " must have a batch dim, got shape ", shape_str(t.shape()));
    return t;
}

Tensor checked_index(const std::string& name, const Tensor& t) {
    require(t.dtype() == DType::i64 || t.dtype() == DType::i32, name, " must be int64, got ",
            dtype_name(t.dtype()));
    require(t.dim() == 1, name, " must be (B), got shape ", shape_str(t.shape()));
    return t.to(DType::i64);
}

InputFile read_inputs(const std::string& path) {
    InputFile in;
    in.path = path;
    for (auto& [name, t] : load_safetensors(path)) {
        // "prefix" + a non-empty rest
        auto has = [&](const char* prefix) {
            return name.starts_with(prefix) && name.size() > std::char_traits<char>::length(prefix);
        };
        auto suffix = [&](const char* prefix) {
            return name.substr(std::char_traits<char>::length(prefix));
        };
        if (name == "student.logits") {
            in.student_logits = checked_float(name, t);
        } else if (name == "teacher.logits") {
            in.teacher_logits = checked_float(name, t);
        } else if (name == "labels") {
            in.labels = checked_index(name, t);
        } else if (name == "indices") {
            in.indices = checked_index(name, t);
        } else if (has(kStudentFeat)) {
            in.student_feats[suffix(kStudentFeat)] = checked_float(name, t);
        } else if (has(kTeacherFeat)) {
            in.teacher_feats[suffix(kTeacherFeat)] = checked_float(name, t);
        } else if (has(kParam)) {
            in.params[suffix(kParam)] = t;
        } else if (has(kExtra)) {
            in.extras[suffix(kExtra)] = t;
        } else {
            fail(path, ": unknown tensor '", name, "'; expected student.logits, teacher.logits, "
                 "labels, indices, student.feat.X, teacher.feat.X, param.NAME or extra.X");
        }
    }
    for (const auto& [x, _] : in.student_feats)
        require(in.teacher_feats.count(x), path, ": student.feat.", x, " has no teacher.feat.", x);
    for (const auto& [x, _] : in.teacher_feats)
        require(in.student_feats.count(x), path, ": teacher.feat.", x, " has no student.feat.", x);
    for (const Tensor* logits : {&in.student_logits, &in.teacher_logits})
        if (logits->defined())
            require(logits->dim() == 2, path, ": ", logits == &in.student_logits ? "student" : "teacher",
                    ".logits must be (B, K), got shape ", shape_str(logits->shape()));
    return in;
}

// Every batch-sized tensor must have the same B.
void check_batch(const InputFile& in) {
    std::vector<std::pair<std::string, Tensor>> batched = {{"student.logits", in.student_logits},
                                                           {"teacher.logits", in.teacher_logits},
                                                           {"labels", in.labels},
                                                           {"indices", in.indices}};
    for (const auto& [x, t] : in.student_feats) batched.emplace_back(kStudentFeat + x, t);
    for (const auto& [x, t] : in.teacher_feats) batched.emplace_back(kTeacherFeat + x, t);
    std::string first;
    std::int64_t batch = -1;
    for (const auto& [name, t] : batched) {
        if (!t.defined()) continue;
        if (batch < 0) {
            first = name;
            batch = t.size(0);
        }
        require(t.size(0) == batch, in.path, ": mismatched batch sizes: ", first, " has B = ", batch,
                ", ", name, " has B = ", t.size(0), " (shape ", shape_str(t.shape()), ")");
    }
}

void check_needs(const InputFile& in, const ObjectiveEntry& entry) {
    auto need = [&](const Tensor& t, const char* name) {
        require(t.defined(), in.path, ": no tensor '", name, "', which objective ", entry.name,
                " needs");
    };
    if (entry.uses_teacher_logits) {
        need(in.student_logits, "student.logits");
        need(in.teacher_logits, "teacher.logits");
    }
    if (entry.uses_labels) {
        need(in.student_logits, "student.logits");
        need(in.labels, "labels");
    }
}

ObjectiveSetup make_setup(const InputFile& in, const RunSettings& run, std::uint64_t seed) {
    ObjectiveSetup setup;
    for (const auto& [x, s] : in.student_feats)
        setup.pairs.push_back({x, s.shape(), in.teacher_feats.at(x).shape()});
    if (in.student_logits.defined()) setup.num_classes = in.student_logits.size(1);
    else if (in.teacher_logits.defined()) setup.num_classes = in.teacher_logits.size(1);
    if (in.indices.defined() && in.indices.numel() > 0) {
        const std::vector<std::int64_t> idx = in.indices.to_vector<std::int64_t>();
        const auto [lo, hi] = std::minmax_element(idx.begin(), idx.end());
        require(*lo >= 0, in.path, ": indices must be >= 0, got ", *lo);
        require(!run.num_samples || *hi < *run.num_samples, in.path, ": index ", *hi,
                " is outside the training set of num_samples = ", run.num_samples.value_or(0));
        setup.num_samples = *hi + 1;
    }
    if (run.num_samples) setup.num_samples = *run.num_samples;
    setup.seed = seed;
    return setup;
}

// "a, b, c" for a few names, "a, b, ... and 7 more" for many.
std::string name_list(const std::vector<std::string>& names, std::size_t shown = 10) {
    std::string list;
    for (std::size_t i = 0; i < names.size() && i < shown; ++i) list += (i ? ", " : "") + names[i];
    if (names.size() > shown) list += cat(", ... and ", names.size() - shown, " more");
    return list;
}

// param.* tensors: all of the objective's state or none of it.
void load_params(Objective& objective, const InputFile& in, const std::string& method) {
    if (in.params.empty()) return;
    std::set<std::string> own;
    std::vector<std::string> valid, missing;
    for (const auto& [name, _] : objective.state_dict()) {
        own.insert(name);
        valid.push_back(std::string(kParam) + name);
        if (!in.params.count(name)) missing.push_back(std::string(kParam) + name);
    }
    for (const auto& [name, _] : in.params)
        require(own.count(name) || name.ends_with("num_batches_tracked"), in.path,
                ": unknown tensor 'param.", name, "': objective ", method,
                own.empty() ? " has no parameters or buffers" : " has " + name_list(valid));
    require(missing.empty(), in.path, ": the param.* tensors must cover all of objective ", method,
            "'s parameters and buffers (or be left out for the --seed initialization); missing ",
            name_list(missing));
    objective.load_state_dict(in.params);
}

// A leaf copy that collects the gradient.
Tensor student_leaf(const Tensor& t) {
    if (!t.defined()) return t;
    Tensor leaf = t.detach();
    leaf.set_requires_grad(true);
    return leaf;
}

Tensor grad_or_zeros(const Tensor& t) {
    return t.grad().defined() ? t.grad().detach() : zeros_like(t.detach());
}

}  // namespace

int run_objective(const std::vector<std::string>& raw_args) {
    std::vector<std::string> args = raw_args;
    const std::vector<std::string> sets = take_overrides(args, "key=value");
    Options opts("objective", args,
                 {{"method", "", "objective name (see the table of objectives)"},
                  {"inputs", "", "safetensors file: student.logits, teacher.logits, labels, "
                                 "student.feat.X / teacher.feat.X, param.*, indices, extra.X"},
                  {"output", "", "safetensors file to write loss and grad.* to"},
                  {"seed", "0", "seed of the connectors' initialization (without param.*) and of "
                                "any sampling the objective does"}});
    if (opts.help_requested()) {
        std::printf("  --set        key=value: a hyperparameter of the method, or epoch / epochs / "
                    "num_samples (repeatable)\n\nobjectives:\n");
        for (const ObjectiveEntry& e : objective_table())
            std::printf("  %-12s %s (%s)\n", e.name.c_str(), e.defaults.c_str(), e.taps.c_str());
        return 0;
    }
    for (const char* required : {"method", "inputs", "output"})
        require(!opts.get(required).empty(), "objective: --", required, " is required");
    const std::string method = opts.get("method");
    const auto seed = static_cast<std::uint64_t>(opts.get_int("seed", 0, INT64_MAX));
    const ObjectiveEntry& entry = find_objective(method);

    Config config;
    declare_objective_keys(config);
    const RunSettings run = apply_sets(config, method, sets);

    const InputFile file = read_inputs(opts.get("inputs"));
    check_batch(file);
    check_needs(file, entry);
    const ObjectiveSetup setup = make_setup(file, run, seed);
    std::shared_ptr<Objective> objective = create_objective(method, config, setup);
    load_params(*objective, file, method);

    ObjectiveInputs in;
    in.student_logits = student_leaf(file.student_logits);
    in.teacher_logits = file.teacher_logits;
    in.labels = file.labels;
    in.sample_indices = file.indices;
    for (const auto& pair : setup.pairs)
        in.features.push_back({pair.name, student_leaf(file.student_feats.at(pair.name)),
                               file.teacher_feats.at(pair.name)});
    in.epoch = run.epoch;
    in.epochs = run.epochs;
    in.training = true;
    in.extras = file.extras;

    manual_seed(seed);
    Tensor loss = objective->forward(in);
    require(loss.defined() && loss.dim() == 0, "objective ", method,
            " returned a loss of shape ", loss.defined() ? shape_str(loss.shape()) : "(undefined)",
            ", not a scalar");
    if (loss.requires_grad()) loss.backward();

    std::map<std::string, Tensor> out;
    out["loss"] = loss.detach().to(DType::f32);
    if (in.student_logits.defined()) out["grad.student.logits"] = grad_or_zeros(in.student_logits);
    for (const FeaturePair& pair : in.features)
        out["grad." + std::string(kStudentFeat) + pair.name] = grad_or_zeros(pair.student);
    for (const auto& [name, p] : objective->named_parameters())
        out["grad." + std::string(kParam) + name] = grad_or_zeros(p);
    save_safetensors(opts.get("output"), out, {{"method", method}});

    std::printf("objective %s: loss %.9g; wrote %s:", method.c_str(), loss.item(),
                opts.get("output").c_str());
    for (const auto& [name, _] : out) std::printf(" %s", name.c_str());
    std::printf("\n");
    return 0;
}

}  // namespace retort::cli
