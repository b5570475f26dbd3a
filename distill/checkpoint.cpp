// distill/checkpoint.cpp: saving and restoring the whole state of a training run in one
// .safetensors file (layout in checkpoint.h). Matches what a PyTorch training script saves with
// torch.save({"model": ..., "optimizer": ..., "rng": ..., "epoch": ...}), flattened into named
// tensors so the file stays a plain safetensors file.
#include "distill/checkpoint.h"

#include <cmath>
#include <algorithm>
#include <filesystem>

#include "engine/io/safetensors.h"
#include "engine/random.h"

namespace retort {

namespace {

const std::string kModelPrefix = "model.";
const std::string kObjectivesPrefix = "objectives.";
const std::string kOptimPrefix = "optim.";

Tensor int64_scalar(std::int64_t value) {
    Tensor t = Tensor::empty({}, DType::i64);
    *t.data<std::int64_t>() = value;
    return t;
}

Tensor float64_scalar(double value) {
    Tensor t = Tensor::empty({}, DType::f64);
    *t.data<double>() = value;
    return t;
}

const Tensor& entry(const std::map<std::string, Tensor>& tensors, const std::string& name,
                    DType dtype, const std::string& path) {
    auto it = tensors.find(name);
    require(it != tensors.end(), "checkpoint ", path, " has no '", name,
            "' (it is incomplete or not a training checkpoint)");
    require(it->second.dtype() == dtype && it->second.numel() == 1, "checkpoint ", path, ": '", name,
            "' must be one ", dtype_name(dtype), " value, got ", dtype_name(it->second.dtype()), " ",
            shape_str(it->second.shape()));
    return it->second;
}

std::int64_t int64_entry(const std::map<std::string, Tensor>& tensors, const std::string& name,
                         const std::string& path) {
    return *entry(tensors, name, DType::i64, path).data<std::int64_t>();
}

double float64_entry(const std::map<std::string, Tensor>& tensors, const std::string& name,
                     const std::string& path) {
    return *entry(tensors, name, DType::f64, path).data<double>();
}

// An entry that checkpoints written before it existed lack: absent reads as 0.
std::int64_t optional_int64_entry(const std::map<std::string, Tensor>& tensors,
                                  const std::string& name, const std::string& path) {
    return tensors.count(name) ? int64_entry(tensors, name, path) : 0;
}

// The sums of an epoch stopped part way, as partial.<name>.
void put_tally(const EpochTally& t, std::map<std::string, Tensor>& tensors) {
    const std::pair<const char*, std::int64_t> counts[] = {
        {"steps", t.steps},           {"trained", t.trained},
        {"images", t.images},         {"window_steps", t.window_steps},
        {"window_images", t.window_images}, {"window_top1", t.window_top1},
        {"window_top5", t.window_top5}, {"window_skipped", t.window_skipped}};
    for (const auto& [name, value] : counts) tensors[std::string("partial.") + name] = int64_scalar(value);
    tensors["partial.loss"] = float64_scalar(t.loss);
    tensors["partial.window_loss"] = float64_scalar(t.window_loss);
    // One sum per loss term; a run without terms saves none (a tensor of no elements would do,
    // but an absent entry says the same more plainly).
    if (!t.window_terms.empty()) {
        Tensor terms = Tensor::empty({static_cast<std::int64_t>(t.window_terms.size())}, DType::f64);
        std::copy(t.window_terms.begin(), t.window_terms.end(), terms.data<double>());
        tensors["partial.window_terms"] = terms;
    }
}

EpochTally read_tally(const std::map<std::string, Tensor>& tensors, const std::string& path) {
    EpochTally t;
    t.steps = int64_entry(tensors, "partial.steps", path);
    t.trained = int64_entry(tensors, "partial.trained", path);
    t.images = int64_entry(tensors, "partial.images", path);
    t.window_steps = int64_entry(tensors, "partial.window_steps", path);
    t.window_images = int64_entry(tensors, "partial.window_images", path);
    t.window_top1 = int64_entry(tensors, "partial.window_top1", path);
    t.window_top5 = int64_entry(tensors, "partial.window_top5", path);
    t.window_skipped = int64_entry(tensors, "partial.window_skipped", path);
    t.loss = float64_entry(tensors, "partial.loss", path);
    t.window_loss = float64_entry(tensors, "partial.window_loss", path);
    auto terms = tensors.find("partial.window_terms");
    if (terms != tensors.end()) {
        require(terms->second.dtype() == DType::f64 && terms->second.dim() == 1, "checkpoint ", path,
                ": 'partial.window_terms' must be a float64 vector, got ",
                dtype_name(terms->second.dtype()), " ", shape_str(terms->second.shape()));
        t.window_terms = terms->second.to_vector<double>();
    }
    const bool consistent = t.steps > 0 && t.trained >= 0 && t.trained <= t.steps && t.images >= 0 &&
                            t.window_steps >= 0 && t.window_steps <= t.trained &&
                            t.window_skipped >= 0 && t.window_images >= 0 && t.window_top1 >= 0 &&
                            t.window_top5 >= t.window_top1 && t.window_top5 <= t.window_images;
    require(consistent, "checkpoint ", path, " has an inconsistent partial epoch (", t.steps,
            " steps taken, ", t.trained, " trained, ", t.window_steps, " since the last row)");
    return t;
}

SafetensorsContents read_file(const std::string& path, const char* what) {
    require(std::filesystem::is_regular_file(path), "no ", what, " at ", path);
    try {
        return read_safetensors(path);
    } catch (const Error& e) {
        fail(what, " ", path, " is unreadable (corrupt or truncated?): ", e.what());
    }
}

// An Error unless `saved` holds exactly the tensors of `expected`, each of the same shape and kind
// of dtype. `what` is "model" or "objectives".
void check_state(const NamedTensors& expected, const std::map<std::string, Tensor>& saved,
                 const std::string& path, const std::string& what) {
    for (const auto& [name, t] : expected) {
        auto it = saved.find(name);
        require(it != saved.end(), "checkpoint ", path, " lacks ", what, " tensor '", name, "'");
        require(it->second.shape() == t.shape(), "checkpoint ", path, ": ", what, " tensor '", name,
                "' is ", shape_str(it->second.shape()), ", the ", what, "'s is ", shape_str(t.shape()));
        require(is_floating(it->second.dtype()) == is_floating(t.dtype()), "checkpoint ", path, ": ",
                what, " tensor '", name, "' is ", dtype_name(it->second.dtype()), ", the ", what,
                "'s is ", dtype_name(t.dtype()));
    }
    require(saved.size() == expected.size(), "checkpoint ", path, " holds ", saved.size(), " ", what,
            " tensors, the ", what, " has ", expected.size());
}

}  // namespace

std::string describe_position(const TrainProgress& p) {
    if (p.partial.steps > 0)
        return cat("after step ", p.partial.steps, " of epoch ", p.epoch + 1, " (step ", p.step,
                   " of the run)");
    if (p.step == 0) return "at the start of the run (step 0)";
    return cat("after epoch ", p.epoch, " (step ", p.step, ")");
}

void save_checkpoint(const std::string& path, const Model& model, const Optimizer& optimizer,
                     const TrainProgress& progress, const std::string& model_spec,
                     const Module* objectives) {
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, t] : model.state_dict()) tensors[kModelPrefix + name] = t;
    if (objectives)
        for (const auto& [name, t] : objectives->state_dict()) tensors[kObjectivesPrefix + name] = t;
    for (const auto& [name, t] : optimizer.state_dict()) tensors[kOptimPrefix + name] = t;
    // The generator's state is unsigned 64-bit; int64 keeps the same bit pattern.
    tensors["rng.seed"] = int64_scalar(static_cast<std::int64_t>(default_generator().seed()));
    tensors["rng.offset"] = int64_scalar(static_cast<std::int64_t>(default_generator().offset()));
    tensors["progress.epoch"] = int64_scalar(progress.epoch);
    tensors["progress.step"] = int64_scalar(progress.step);
    tensors["progress.best_top1"] = float64_scalar(progress.best_top1);
    tensors["progress.best_epoch"] = int64_scalar(progress.best_epoch);
    tensors["progress.seconds"] = float64_scalar(progress.seconds);
    tensors["progress.skipped"] = int64_scalar(progress.skipped);
    tensors["progress.consecutive_skipped"] = int64_scalar(progress.consecutive_skipped);
    tensors["progress.loss_scale"] = float64_scalar(progress.loss_scale);
    tensors["progress.scale_good_steps"] = int64_scalar(progress.scale_good_steps);
    tensors["progress.overflow_skipped"] = int64_scalar(progress.overflow_skipped);
    if (progress.partial.steps > 0) put_tally(progress.partial, tensors);
    save_safetensors(path, tensors,
                     {{"format", "retort-checkpoint"},
                      {"format_version", std::to_string(kCheckpointFormatVersion)},
                      {"model", model_spec}});
}

Checkpoint read_checkpoint(const std::string& path) {
    SafetensorsContents file = read_file(path, "checkpoint");
    const auto format = file.metadata.find("format");
    require(format != file.metadata.end() && format->second == "retort-checkpoint", "checkpoint ",
            path, " is not a retort training checkpoint (its metadata has no format = retort-checkpoint)");
    const auto version = file.metadata.find("format_version");
    require(version != file.metadata.end() &&
                version->second == std::to_string(kCheckpointFormatVersion),
            "checkpoint ", path, " has format version ",
            version == file.metadata.end() ? "(none)" : version->second, "; this retort reads version ",
            kCheckpointFormatVersion);

    Checkpoint c;
    c.model_spec = file.metadata.count("model") ? file.metadata.at("model") : "";
    for (const auto& [name, t] : file.tensors) {
        if (name.starts_with(kModelPrefix)) c.model[name.substr(kModelPrefix.size())] = t;
        if (name.starts_with(kObjectivesPrefix))
            c.objectives[name.substr(kObjectivesPrefix.size())] = t;
        if (name.starts_with(kOptimPrefix)) c.optimizer[name.substr(kOptimPrefix.size())] = t;
    }
    require(!c.model.empty(), "checkpoint ", path, " holds no model.* tensors");
    require(!c.optimizer.empty(), "checkpoint ", path, " holds no optim.* tensors");
    c.rng_seed = static_cast<std::uint64_t>(int64_entry(file.tensors, "rng.seed", path));
    c.rng_offset = static_cast<std::uint64_t>(int64_entry(file.tensors, "rng.offset", path));
    c.progress.epoch = int64_entry(file.tensors, "progress.epoch", path);
    c.progress.step = int64_entry(file.tensors, "progress.step", path);
    c.progress.best_epoch = int64_entry(file.tensors, "progress.best_epoch", path);
    c.progress.best_top1 =
        *entry(file.tensors, "progress.best_top1", DType::f64, path).data<double>();
    c.progress.seconds = *entry(file.tensors, "progress.seconds", DType::f64, path).data<double>();
    c.progress.skipped = optional_int64_entry(file.tensors, "progress.skipped", path);
    c.progress.consecutive_skipped =
        optional_int64_entry(file.tensors, "progress.consecutive_skipped", path);
    if (file.tensors.count("progress.loss_scale"))  // absent in checkpoints of f32 runs of old
        c.progress.loss_scale =
            *entry(file.tensors, "progress.loss_scale", DType::f64, path).data<double>();
    c.progress.scale_good_steps = optional_int64_entry(file.tensors, "progress.scale_good_steps", path);
    c.progress.overflow_skipped = optional_int64_entry(file.tensors, "progress.overflow_skipped", path);
    require(std::isfinite(c.progress.loss_scale) && c.progress.loss_scale > 0 &&
                c.progress.scale_good_steps >= 0 && c.progress.overflow_skipped >= 0,
            "checkpoint ", path, " has an invalid loss scale (", c.progress.loss_scale, ")");
    // Epoch 0 is a run stopped before its first epoch ended (a stop request saves a checkpoint).
    require(c.progress.epoch >= 0 && c.progress.step >= 0 && c.progress.best_epoch >= 0 &&
                c.progress.best_epoch <= c.progress.epoch && c.progress.skipped >= 0 &&
                c.progress.consecutive_skipped >= 0 &&
                c.progress.consecutive_skipped <= c.progress.skipped &&
                c.progress.skipped <= c.progress.step,
            "checkpoint ", path, " has inconsistent progress (epoch ", c.progress.epoch, ", step ",
            c.progress.step, ", best epoch ", c.progress.best_epoch, ", skipped ", c.progress.skipped,
            ")");
    if (file.tensors.count("partial.steps")) {
        c.progress.partial = read_tally(file.tensors, path);
        require(c.progress.partial.steps <= c.progress.step, "checkpoint ", path, " has ",
                c.progress.partial.steps, " steps in its last epoch but ", c.progress.step,
                " in all");
    }
    return c;
}

void restore_checkpoint(const Checkpoint& c, const std::string& path, Model& model,
                        Optimizer& optimizer, const std::string& model_spec, Module* objectives) {
    require(c.model_spec == model_spec, "checkpoint ", path, " was saved for model '", c.model_spec,
            "', but the run's config says '", model_spec, "'");
    require(objectives || c.objectives.empty(), "checkpoint ", path,
            " holds the state of distillation objectives: it belongs to a `retort distill` run");
    // The model and the objectives are checked by hand first, then the optimizer loads (it checks
    // before it changes anything), then the modules: an error at any point leaves all untouched.
    check_state(model.state_dict(), c.model, path, "model");
    if (objectives) check_state(objectives->state_dict(), c.objectives, path, "objectives");
    try {
        optimizer.load_state(c.optimizer);
    } catch (const Error& e) {
        fail("checkpoint ", path, ": the optimizer state does not fit: ", e.what());
    }
    model.load_state_dict(c.model);
    if (objectives) objectives->load_state_dict(c.objectives);
    default_generator().manual_seed(c.rng_seed);
    default_generator().set_offset(c.rng_offset);
}

void save_weights(const std::string& path, const Model& model,
                  const std::map<std::string, std::string>& metadata) {
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, t] : model.state_dict()) tensors[name] = t;
    std::map<std::string, std::string> meta = metadata;
    meta["format"] = "retort-weights";
    save_safetensors(path, tensors, meta);
}

std::map<std::string, Tensor> load_model_weights(const std::string& path) {
    SafetensorsContents file = read_file(path, "weights file");
    auto format = file.metadata.find("format");
    if (format == file.metadata.end() || format->second != "retort-checkpoint") return file.tensors;
    std::map<std::string, Tensor> weights;
    for (const auto& [name, t] : file.tensors)
        if (name.starts_with(kModelPrefix)) weights[name.substr(kModelPrefix.size())] = t;
    return weights;
}

}  // namespace retort
