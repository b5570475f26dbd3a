// distill/distiller.cpp: the teacher, the pairs, the objectives and the per-batch loss of a
// distillation run (see distiller.h).
//
// Shapes: x (B, C, H, W) float32, labels and sample indices (B) int64, logits (B, K); a tap is a
// map (B, C, h, w), a token sequence (B, N, C) or a vector (B, C).
//
// Matches the training step of RepDistiller's train_student.py (train_distill): model_s.train(),
// model_t.eval(), the teacher's forward under torch.no_grad(), loss = gamma * CE + alpha * KD +
// beta * other, here generalized to any weighted list of objectives.
#include "distill/distiller.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "data/loader.h"
#include "data/transforms.h"
#include "distill/checkpoint.h"
#include "distill/objectives/ofd.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/io/safetensors.h"
#include "engine/random.h"
#include "layers/fold.h"
#include "models/registry.h"

namespace retort {

namespace {

// A pair may name a model's logits ("dist_logits:logits" pairs a DeiT student's distillation
// head with any teacher's logits): "logits" is what forward() returns, not a tap.
const std::string kLogitsTap = "logits";

Tensor tap_or_logits(const Taps& taps, const std::string& name, const Tensor& logits) {
    return name == kLogitsTap ? logits : taps.at(name);
}

bool has_tap(const Model& model, const std::string& tap) {
    const std::vector<std::string> names = model.tap_names();
    return std::find(names.begin(), names.end(), tap) != names.end();
}

// How many consecutive taps prefix0, prefix1, ... (first = 0) or prefix1, prefix2, ... (first = 1).
std::int64_t count_indexed_taps(const Model& model, const std::string& prefix, int first) {
    std::int64_t n = 0;
    while (has_tap(model, prefix + std::to_string(n + first))) ++n;
    return n;
}

std::string pair_list(const std::vector<TapPair>& pairs) {
    std::string text;
    for (const TapPair& p : pairs) text += (text.empty() ? "" : ", ") + p.student + ":" + p.teacher;
    return text;
}

// An int64 (B) tensor of the batch's dataset indices.
Tensor index_tensor(const std::vector<std::int64_t>& indices) { return from_vector(indices); }

// The model's spec recorded in a weights file's metadata, or "".
std::string saved_model_spec(const std::string& path) {
    try {
        const auto meta = read_safetensors(path).metadata;
        auto it = meta.find("model");
        return it == meta.end() ? "" : it->second;
    } catch (const Error&) {
        return "";
    }
}

}  // namespace

// ---- the teacher ----

std::shared_ptr<Model> load_teacher(const DistillConfig& config, const Model& student,
                                    std::string* weights_path) {
    // The teacher's random initialization is overwritten by its weights; it must not move the
    // generator the student's run draws from.
    Generator& gen = default_generator();
    const Generator saved = gen;
    std::shared_ptr<Model> teacher;
    try {
        teacher = create_model(config.teacher);
    } catch (const Error& e) {
        gen = saved;
        fail("distill.teacher: ", e.what());
    }
    gen = saved;

    const std::int64_t tk = teacher->info().num_classes, sk = student.info().num_classes;
    require(tk == sk, "the teacher ", config.teacher, " has ", tk, " classes but the student ",
            config.train.model, " has ", sk, "; both must have num_classes = the dataset's classes");

    const std::string path = resolve_teacher_weights(config.teacher_weights);
    const std::map<std::string, Tensor> weights = load_model_weights(path);
    try {
        teacher->load_state_dict(weights);
    } catch (const Error& e) {
        const std::string saved_for = saved_model_spec(path);
        fail("the teacher's weights ", path, " do not fit the teacher ", config.teacher,
             saved_for.empty() ? std::string() : " (the file was saved for model " + saved_for + ")",
             ": ", e.what());
    }
    teacher->eval();
    for (Tensor& p : teacher->parameters()) p.set_requires_grad(false);
    // Inference only: each BatchNorm folded into its convolution (the state dict, which OFD's
    // margins read, is left as it is).
    fold_batch_norms(*teacher);
    if (weights_path) *weights_path = path;
    return teacher;
}

// ---- pairs ----

std::vector<TapPair> default_pairs(const Model& student, const Model& teacher) {
    std::vector<TapPair> pairs;
    const std::int64_t s_stages = count_indexed_taps(student, "layer", 1);
    const std::int64_t t_stages = count_indexed_taps(teacher, "layer", 1);
    if (s_stages > 0 && t_stages > 0) {
        for (std::int64_t k = 1; k <= std::min(s_stages, t_stages); ++k) {
            const std::string tap = "layer" + std::to_string(k);
            pairs.push_back({tap, tap});
        }
        return pairs;
    }
    const std::int64_t s_depth = count_indexed_taps(student, "tokens.", 0);
    const std::int64_t t_depth = count_indexed_taps(teacher, "tokens.", 0);
    if (s_depth > 0 && t_depth > 0) {
        const std::int64_t n = std::min(s_depth, t_depth);
        auto block = [n](std::int64_t k, std::int64_t depth) {
            return (k * depth + n - 1) / n - 1;  // ceil(k depth / n) - 1
        };
        for (std::int64_t k = 1; k <= n; ++k)
            pairs.push_back({"tokens." + std::to_string(block(k, s_depth)),
                             "tokens." + std::to_string(block(k, t_depth))});
        return pairs;
    }
    fail("no default feature pairs for student ", student.info().name, " and teacher ",
         teacher.info().name,
         " (defaults exist for two CNNs with stage taps layer1.. or two ViTs with tokens.L): set "
         "distill.pairs = student_tap:teacher_tap, ... (see `retort models` for each model's taps)");
}

std::string batch_norm_before_tap(const NamedTensors& state, const std::string& tap) {
    if (!tap.starts_with("layer") || !tap.ends_with(".pre")) return "";
    const std::string stage = tap.substr(0, tap.size() - 4);  // "layerN"
    const std::string number = stage.substr(5);
    if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) return "";
    const std::int64_t n = std::stoll(number);
    std::set<std::string> names;
    for (const auto& [name, _] : state) names.insert(name);
    auto has = [&](const std::string& prefix) { return names.count(prefix + ".weight") > 0; };

    // ResNets: the blocks of stage layerN are layerN.0, layerN.1, ...; the tap is the last one's.
    std::int64_t last = -1;
    for (const std::string& name : names) {
        if (!name.starts_with(stage + ".")) continue;
        const std::string rest = name.substr(stage.size() + 1);
        const std::string index = rest.substr(0, rest.find('.'));
        if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos)
            last = std::max<std::int64_t>(last, std::stoll(index));
    }
    if (last >= 0) {
        const std::string block = stage + "." + std::to_string(last);
        for (const char* bn : {".bn3", ".bn2"})
            if (has(block + bn)) return block + bn;
        return "";
    }
    // WRNs: stage N is blockN; its pre-ReLU view is the BatchNorm that opens the next stage.
    const std::string next = "block" + std::to_string(n + 1) + ".layer.0.bn1";
    if (has(next)) return next;
    if (has("block" + std::to_string(n) + ".layer.0.bn1") && has("bn1")) return "bn1";
    return "";
}

// ---- the Distiller ----

Distiller::Distiller(const DistillConfig& config, std::shared_ptr<Model> student,
                     std::shared_ptr<Model> teacher, const DatasetSplits& data)
    : student_(std::move(student)), teacher_(std::move(teacher)) {
    internal_check(student_ && teacher_, "Distiller needs a student and a teacher");
    choose_pairs(config);
    if (teacher_read_ && config.teacher_cache != "off") {
        cache_variants_ = TransformPipeline(config.train.data.train_transforms).variants();
        require(cache_variants_ > 0, "distill.teacher_cache = ", config.teacher_cache,
                " needs training transforms that make a few known images of a sample "
                "(deterministic steps and flip), but data.train_transforms = '",
                config.train.data.train_transforms,
                "' makes too many to cache (a random crop?); drop the random steps or set "
                "distill.teacher_cache = off");
    }
    const Device device = parse_device(config.train.run.device);
    require_available(device);
    check_model_fits_data(*teacher_, config.teacher, data, config.train);
    teacher_->eval();  // the check leaves a model in train mode
    create_objectives(config, data);  // a trial batch on the CPU sizes the connectors
    if (teacher_read_ && config.teacher_cache != "off")
        open_cache(config, data);  // fingerprints the CPU teacher
    // The student and the objectives move with the Trainer; a teacher nothing reads stays put.
    if (teacher_read_) teacher_->to(device);
}

void Distiller::open_cache(const DistillConfig& config, const DatasetSplits& data) {
    TeacherCache::Layout layout;
    layout.names.push_back("logits");
    layout.shapes.push_back({student_->info().num_classes});
    for (const std::string& tap : teacher_taps_) {
        layout.names.push_back(tap);
        layout.shapes.push_back(trial_tap_shapes_.at(tap));
    }
    const std::uint64_t fingerprint = teacher_cache_fingerprint(
        *teacher_, config.teacher, *data.train,
        TransformPipeline(config.train.data.train_transforms).describe(), layout);
    const auto kind = config.teacher_cache == "file" ? TeacherCache::Kind::file : TeacherCache::Kind::memory;
    train_ = data.train;
    train_transforms_ = TransformPipeline(config.train.data.train_transforms);
    cache_ = TeacherCache::open(kind, config.teacher_cache_file,
                                config.teacher_cache_limit_gib * 1024.0 * 1024.0 * 1024.0, fingerprint,
                                layout, data.train->root().size() * cache_variants_, &cache_note_);
}

void Distiller::choose_pairs(const DistillConfig& config) {
    std::vector<TapPair> defaults;
    bool have_defaults = false;
    std::set<std::string> student_taps, teacher_taps;
    bool teacher_logits_read = false;
    for (const ObjectiveTerm& term : config.objectives) {
        const ObjectiveEntry& entry = find_objective(term.name);
        teacher_logits_read = teacher_logits_read || entry.uses_teacher_logits;
        Slot slot{term, {}, "", nullptr};
        if (entry.max_pairs != 0) {
            auto own = config.objective_pairs.find(term.name);
            if (own != config.objective_pairs.end()) {
                slot.pairs = own->second;
                slot.pairs_from = term.name + ".pairs";
            } else if (!config.pairs.empty()) {
                slot.pairs = config.pairs;
                slot.pairs_from = "distill.pairs";
            } else if (!entry.default_taps.empty() && entry.default_taps != "stages.pre") {
                slot.pairs = parse_pair_list(entry.default_taps);  // "layer2", "dist_logits:logits"
                slot.pairs_from = "the default pairs of " + term.name;
            } else {
                if (!have_defaults) defaults = default_pairs(*student_, *teacher_);
                have_defaults = true;
                slot.pairs = defaults;
                if (entry.default_taps == "stages.pre")
                    for (TapPair& pair : slot.pairs) {
                        pair.student += ".pre";
                        pair.teacher += ".pre";
                    }
                slot.pairs_from = "the default pairs";
            }
            const auto count = static_cast<std::int64_t>(slot.pairs.size());
            require(count >= entry.min_pairs && (entry.max_pairs < 0 || count <= entry.max_pairs),
                    "objective ", term.name, " needs ",
                    entry.max_pairs < 0 ? cat("at least ", entry.min_pairs)
                    : entry.min_pairs == entry.max_pairs
                        ? cat(entry.min_pairs)
                        : cat(entry.min_pairs, " to ", entry.max_pairs),
                    " feature pair(s) (", entry.taps, "), but got ", count, " from ",
                    slot.pairs_from, " (", pair_list(slot.pairs), "); set [", term.name,
                    "] pairs = student_tap:teacher_tap, ...");
            for (const TapPair& pair : slot.pairs) {
                try {
                    if (pair.student != kLogitsTap) student_->check_taps({pair.student});
                    if (pair.teacher != kLogitsTap) teacher_->check_taps({pair.teacher});
                } catch (const Error& e) {
                    fail(slot.pairs_from, " (objective ", term.name, "): ", e.what());
                }
                if (pair.student != kLogitsTap) student_taps.insert(pair.student);
                if (pair.teacher != kLogitsTap) teacher_taps.insert(pair.teacher);
                teacher_logits_read = teacher_logits_read || pair.teacher == kLogitsTap;
            }
        }
        slots_.push_back(slot);
    }
    student_taps_.assign(student_taps.begin(), student_taps.end());
    teacher_taps_.assign(teacher_taps.begin(), teacher_taps.end());
    teacher_read_ = teacher_logits_read || !teacher_taps_.empty();
}

void Distiller::create_objectives(const DistillConfig& config, const DatasetSplits& data) {
    // One batch as training sees it (training transforms, batch size), through both models in
    // eval mode without a graph: nothing random is drawn and no BatchNorm statistic moves.
    LoaderOptions o;
    o.batch_size = std::min<std::int64_t>(config.train.data.batch_size, data.train->size());
    o.shuffle = false;
    o.workers = 0;
    o.seed = config.train.run.seed;
    o.transforms = config.train.data.train_transforms;
    DataLoader loader(data.train, o);
    loader.start_epoch(0);
    Batch batch;
    require(loader.next(batch), "the training split gives no batch");
    Taps s_taps(student_taps_), t_taps(teacher_taps_);
    Tensor s_logits, t_logits;
    {
        NoGradGuard no_grad;
        student_->eval();
        s_logits = student_->forward(batch.images, &s_taps);
        student_->train();
        t_logits = teacher_->forward(batch.images, &t_taps);
    }
    for (const std::string& tap : teacher_taps_) {
        Shape shape = t_taps.at(tap).shape();
        shape.erase(shape.begin());  // per sample
        trial_tap_shapes_[tap] = shape;
    }

    set_ = std::make_shared<ObjectiveSet>();
    for (Slot& slot : slots_) {
        ObjectiveSetup setup;
        for (const TapPair& pair : slot.pairs)
            setup.pairs.push_back(
                {pair.name(), tap_or_logits(s_taps, pair.student, s_logits).shape(),
                 tap_or_logits(t_taps, pair.teacher, t_logits).shape()});
        setup.num_classes = student_->info().num_classes;
        setup.num_samples = data.train->size();
        setup.seed = config.train.run.seed;
        try {
            slot.objective = create_objective(slot.term.name, config.resolved, setup);
        } catch (const Error& e) {
            fail("objective ", slot.term.name, " on ", slot.pairs_from, " (", pair_list(slot.pairs),
                 "): ", e.what());
        }
        if (slot.term.name == "ofd") fill_ofd_margins(slot);
        set_->add(slot.term.name, slot.objective);
        pre_stage_epochs_ = std::max(pre_stage_epochs_, slot.objective->pre_stage_epochs());
    }
}

void Distiller::fill_ofd_margins(Slot& slot) {
    auto* ofd = dynamic_cast<OverhaulDistillation*>(slot.objective.get());
    internal_check(ofd != nullptr, "objective ofd is not an OverhaulDistillation");
    const NamedTensors state = teacher_->state_dict();
    std::map<std::string, Tensor> by_name(state.begin(), state.end());
    for (std::size_t i = 0; i < slot.pairs.size(); ++i) {
        const std::string& tap = slot.pairs[i].teacher;
        const std::string bn = batch_norm_before_tap(state, tap);
        require(!bn.empty(), "objective ofd: the teacher tap '", tap, "' (", slot.pairs_from,
                ") is not a pre-ReLU stage output whose BatchNorm can be found in the teacher ",
                teacher_->info().name,
                "; OFD's margins come from that BatchNorm: pair layerN.pre taps of a ResNet or WRN "
                "teacher, e.g. [ofd] pairs = layer1.pre, layer2.pre, layer3.pre");
        ofd->set_margins(i, OverhaulDistillation::margins_from_batch_norm(by_name.at(bn + ".weight"),
                                                                          by_name.at(bn + ".bias")));
    }
}

TrainerAddons Distiller::addons() const {
    TrainerAddons a;
    a.objectives = set_;
    a.pre_stage_epochs = pre_stage_epochs_;
    for (const Slot& slot : slots_) a.term_names.push_back(slot.term.name);
    return a;
}

LossFn Distiller::loss_fn() {
    return [this](Model& student, const Batch& batch, const StepContext& ctx) {
        return loss(student, batch, ctx);
    };
}

LossOutput Distiller::loss(Model& student, const Batch& batch, const StepContext& ctx) {
    Taps s_taps(student_taps_), t_taps(teacher_taps_);
    ObjectiveInputs in;
    in.student_logits = student.forward(batch.images, student_taps_.empty() ? nullptr : &s_taps);
    if (!teacher_read_) {
        // no objective reads the teacher: in.teacher_logits stays undefined
    } else if (cache_) {
        in.teacher_logits = cached_teacher_forward(
            *cache_, *teacher_, batch, *train_, cache_variants_, t_taps,
            [this](std::int64_t index, std::int64_t variant) {
                return train_transforms_.make_variant(train_->get(index).image, variant);
            });
    } else {
        NoGradGuard no_grad;
        in.teacher_logits =
            teacher_->forward(batch.images, teacher_taps_.empty() ? nullptr : &t_taps);
    }
    in.labels = batch.labels;
    in.sample_indices = index_tensor(batch.indices);
    in.training = true;

    const bool pre = ctx.in_pre_stage();
    LossOutput out;
    out.logits = in.student_logits;
    for (const Slot& slot : slots_) {
        in.features.clear();
        for (const TapPair& pair : slot.pairs)
            in.features.push_back({pair.name(), tap_or_logits(s_taps, pair.student, in.student_logits),
                                   tap_or_logits(t_taps, pair.teacher, in.teacher_logits)});
        Objective& objective = *slot.objective;
        Tensor value, term;
        if (pre) {
            if (ctx.epoch >= objective.pre_stage_epochs()) {
                out.terms.push_back(std::numeric_limits<double>::quiet_NaN());
                continue;
            }
            in.epoch = ctx.epoch;
            in.epochs = objective.pre_stage_epochs();
            value = objective.pre_stage_loss(in);
            term = value;
        } else {
            in.epoch = ctx.epoch - ctx.pre_stage_epochs;
            in.epochs = ctx.epochs;
            value = objective.forward(in);
            term = value * slot.term.weight;
        }
        require(value.defined() && value.dim() == 0, "objective ", slot.term.name,
                " returned a loss that is not a scalar");
        out.terms.push_back(value.item());
        out.loss = out.loss.defined() ? out.loss + term : term;
    }
    internal_check(out.loss.defined(), "no objective contributed to the loss");
    return out;
}

std::string Distiller::describe() const {
    std::string text = "objectives:";
    for (const Slot& slot : slots_) {
        text += cat("\n  ", slot.term.name, " x ", slot.term.weight);
        if (!slot.pairs.empty()) text += cat(" on ", pair_list(slot.pairs), " (", slot.pairs_from, ")");
        const std::int64_t pre = slot.objective->pre_stage_epochs();
        if (pre > 0) text += cat("; pre-training stage of ", pre, " epoch", pre == 1 ? "" : "s");
        const auto params = slot.objective->num_parameters();
        if (params > 0) text += cat("; ", params, " connector parameters");
    }
    if (!teacher_read_) text += "\nteacher: not run during training (no objective reads its logits or taps)";
    if (cache_) text += "\n" + cache_note_;
    return text;
}

}  // namespace retort
