// distill/objective.cpp: the table of objectives by name and the checks every lookup shares.
#include "distill/objective.h"

#include "engine/error.h"
#include "engine/random.h"

namespace retort {

Tensor Objective::pre_stage_loss(const ObjectiveInputs&) {
    fail(cat("objective ", type_name(), " has no pre-training stage"));
}

namespace {

// The table: the built-in groups, then whatever register_objective() added.
std::vector<ObjectiveEntry>& mutable_table() {
    static std::vector<ObjectiveEntry> table = [] {
        std::vector<ObjectiveEntry> t;
        add_logit_objectives(t);
        add_feature_map_objectives(t);
        add_relation_objectives(t);
        add_cnn_vit_objectives(t);
        add_spatial_objectives(t);
        add_vit_objectives(t);
        return t;
    }();
    return table;
}

}  // namespace

const std::vector<ObjectiveEntry>& objective_table() { return mutable_table(); }

void register_objective(ObjectiveEntry entry) {
    require(!entry.name.empty() && entry.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") ==
                                       std::string::npos,
            "register_objective: the name must be lowercase letters, digits and '_' (it is a config "
            "section), got '", entry.name, "'");
    for (const ObjectiveEntry& e : mutable_table())
        require(e.name != entry.name, "register_objective: an objective named '", entry.name,
                "' is registered already");
    require(static_cast<bool>(entry.create), "register_objective: '", entry.name, "' has no create function");
    require(entry.min_pairs >= 0 && (entry.max_pairs < 0 || entry.max_pairs >= entry.min_pairs),
            "register_objective: '", entry.name, "' has min_pairs ", entry.min_pairs, " and max_pairs ",
            entry.max_pairs);
    if (!entry.declare) entry.declare = [](Config&) {};
    mutable_table().push_back(std::move(entry));
}

const ObjectiveEntry& find_objective(const std::string& name) {
    std::string valid;
    for (const ObjectiveEntry& entry : objective_table()) {
        if (entry.name == name) return entry;
        valid += (valid.empty() ? "" : ", ") + entry.name;
    }
    fail(cat("unknown objective '", name, "'; valid objectives: ", valid));
}

void declare_objective_keys(Config& config) {
    for (const ObjectiveEntry& entry : objective_table()) entry.declare(config);
}

std::shared_ptr<Objective> create_objective(const std::string& name, const Config& config,
                                            const ObjectiveSetup& setup) {
    const ObjectiveEntry& entry = find_objective(name);
    const auto pairs = static_cast<int>(setup.pairs.size());
    require(pairs >= entry.min_pairs && (entry.max_pairs < 0 || pairs <= entry.max_pairs),
            cat("objective ", name, " needs ",
                entry.max_pairs < 0 ? cat("at least ", entry.min_pairs)
                : entry.min_pairs == entry.max_pairs ? cat(entry.min_pairs)
                                                     : cat(entry.min_pairs, " to ", entry.max_pairs),
                " feature pair(s), got ", pairs));
    // Connectors draw their initial weights from setup.seed; the default generator's own stream
    // (which the training run's shuffling and dropout follow) is put back untouched afterwards.
    Generator& gen = default_generator();
    const Generator saved = gen;
    gen.manual_seed(setup.seed);
    try {
        std::shared_ptr<Objective> objective = entry.create(config, setup);
        gen = saved;
        return objective;
    } catch (...) {
        gen = saved;
        throw;
    }
}

}  // namespace retort
