// tools/examples/new_objective.cpp: write a new distillation objective, register it, and use it
// from a config, exactly as the built-in ones are used.
//
// The objective: cosine logit matching, 1 - cos(z_s, z_t) averaged over the batch, a
// scale-free cousin of KD. It has one hyperparameter, `eps`, the floor of the norms.
//
// Then a distillation config names it (`objectives = ce:1, cosine:2`, `[cosine] eps = ...`) and
// `retort distill`'s machinery (Distiller + Trainer) runs it for an epoch on generated data.
#include <cstdio>
#include <filesystem>
#include <optional>

#include <unistd.h>

#include "distill/distill_config.h"
#include "distill/distiller.h"
#include "distill/objective.h"
#include "distill/trainer.h"
#include "distill/checkpoint.h"
#include "engine/engine.h"
#include "models/registry.h"

using namespace retort;

// 1. The objective: a Module whose forward maps one batch to a scalar loss.
class CosineLogits : public Objective {
public:
    explicit CosineLogits(double eps) : Objective("CosineLogits"), eps_(eps) {}

    Tensor forward(const ObjectiveInputs& in) override {
        const Tensor& s = in.student_logits;  // (B, K), carries the student's graph
        const Tensor& t = in.teacher_logits;  // (B, K), no graph
        require(s.defined() && t.defined() && s.shape() == t.shape(),
                "cosine: needs student and teacher logits of one shape");
        const Tensor dot = sum(s * t, {1});
        const Tensor norms = clamp(sqrt(sum(s * s, {1})), eps_, std::nullopt) * clamp(sqrt(sum(t * t, {1})), eps_, std::nullopt);
        return mean(1.0 - dot / norms);
    }

private:
    double eps_;
};

// 2. Its row in the table: what it reads, its keys, how to build it.
ObjectiveEntry cosine_entry() {
    ObjectiveEntry e;
    e.name = "cosine";
    e.paper = "an example: 1 - cos(student logits, teacher logits)";
    e.reference = "tools/examples/new_objective.cpp";
    e.taps = "student and teacher logits";
    e.defaults = "eps=1e-8";
    e.uses_teacher_logits = true;
    e.declare = [](Config& c) {
        c.declare_double("cosine", "eps", 1e-8, 0, 1, "floor of the logits' norms");
    };
    e.create = [](const Config& c, const ObjectiveSetup&) {
        return std::make_shared<CosineLogits>(c.get_double("cosine.eps"));
    };
    return e;
}

int main() {
    try {
        register_objective(cosine_entry());

        // 3. A config that uses it. The teacher's weights: a freshly built resnet14, saved here
        //    (a real run names a trained teacher's run directory).
        const std::filesystem::path dir =
            std::filesystem::temp_directory_path() / ("retort_new_objective_" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        const std::string data = "synthetic:num_classes=4,size=128,test_size=32,channels=1,height=8,width=8";
        manual_seed(3);
        save_weights((dir / "teacher.safetensors").string(), *create_model("resnet14:in_chans=1,num_classes=4"),
                     {{"model", "resnet14:in_chans=1,num_classes=4"}});
        Config config = distill_config_schema();  // now has a [cosine] section
        config.parse(cat("[model]\nspec = resnet8:in_chans=1,num_classes=4\n"
                         "[data]\npath = ", data, "\nval_size = 16\nbatch_size = 16\nworkers = 0\n"
                         "[run]\nepochs = 1\nthreads = 1\n"
                         "[distill]\nteacher = resnet14:in_chans=1,num_classes=4\n"
                         "teacher_weights = ", (dir / "teacher.safetensors").string(), "\n"
                         "objectives = ce:1, cosine:2\n"
                         "[cosine]\neps = 1e-6\n"),
                     "example.cfg");

        // 4. What `retort distill` builds from it, and one epoch of training.
        const DistillConfig dc = read_distill_config(config);
        std::shared_ptr<Model> student = build_model(dc.train);
        DatasetSplits splits = open_data(dc.train);
        std::shared_ptr<Model> teacher = load_teacher(dc, *student);
        Distiller distiller(dc, student, teacher, splits);
        Trainer trainer(dc.train, student, splits, distiller.addons());
        trainer.set_loss(distiller.loss_fn());
        std::printf("%s\n", distiller.describe().c_str());
        trainer.start((dir / "run").string(), config);
        trainer.run();
        std::printf("after one epoch: test top-1 %.2f%%; metrics in %s\n", trainer.last_test().top1,
                    (dir / "run" / "metrics.csv").string().c_str());
        std::filesystem::remove_all(dir);
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "new_objective: %s\n", e.what());
        return 1;
    }
}
