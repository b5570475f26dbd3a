// tools/examples/distill_loop.cpp: distill a student from a teacher with two objectives through
// the library, in a plain loop: what `retort distill` does per batch, with nothing hidden.
//
//   1. a teacher (resnet14) learns the task from the labels;
//   2. a student (resnet8) learns from the labels, the teacher's logits (kd, Hinton's KD at
//      T = 4) and the teacher's stage outputs (at, attention transfer), the objectives created
//      by name from the table of distill/objective.h;
//   3. the loss of each part is printed as it falls.
// The data are generated (data/synthetic.h): 8x8 one-channel images of 4 classes.
#include <cstdio>
#include <vector>

#include "data/loader.h"
#include "data/synthetic.h"
#include "distill/objective.h"
#include "engine/engine.h"
#include "models/registry.h"

using namespace retort;

int main() {
    try {
        SyntheticOptions synthetic;
        synthetic.num_classes = 4;
        synthetic.size = 256;
        synthetic.channels = 1;
        synthetic.height = synthetic.width = 8;
        auto data = std::make_shared<SyntheticDataset>(synthetic, /*seed=*/1, "train");
        LoaderOptions loader_options;
        loader_options.batch_size = 32;
        loader_options.workers = 0;
        DataLoader loader(data, loader_options);

        manual_seed(0);
        std::shared_ptr<Model> teacher = create_model("resnet14:in_chans=1,num_classes=4");
        std::shared_ptr<Model> student = create_model("resnet8:in_chans=1,num_classes=4");

        // 1. The teacher: a plain training loop on the labels.
        SgdOptions sgd;
        sgd.lr = 0.05;
        sgd.momentum = 0.9;
        {
            SGD optimizer(teacher->parameters(), sgd);
            teacher->train();
            for (int epoch = 0; epoch < 5; ++epoch) {
                loader.start_epoch(epoch);
                Batch batch;
                while (loader.next(batch)) {
                    const Tensor loss = cross_entropy(teacher->forward(batch.images), batch.labels);
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                }
            }
            teacher->eval();  // frozen from here on: running statistics, no graph
        }

        // 2. The objectives, by name, with their hyperparameters from a config (defaults unless
        //    set) and the shapes of the features they compare, taken from one trial batch.
        Config config;
        declare_objective_keys(config);
        config.set("kd.T", "4", "example");
        const std::vector<std::string> stages = {"layer1", "layer2", "layer3"};
        loader.start_epoch(0);
        Batch trial;
        loader.next(trial);
        Taps s_trial(stages), t_trial(stages);
        {
            NoGradGuard no_grad;
            student->eval();
            student->forward(trial.images, &s_trial);
            teacher->forward(trial.images, &t_trial);
        }
        ObjectiveSetup setup;
        setup.num_classes = 4;
        setup.num_samples = data->size();
        for (const std::string& s : stages)
            setup.pairs.push_back({s, s_trial.at(s).shape(), t_trial.at(s).shape()});
        std::shared_ptr<Objective> at = create_objective("at", config, setup);
        std::shared_ptr<Objective> kd = create_objective("kd", config, ObjectiveSetup{{}, 4, data->size(), 0});

        // 3. The student: loss = 0.1 CE + 0.9 KD + 1000 AT (RepDistiller's weights). KD's T^2
        //    factor makes its gradients 16 times larger than CE's: a smaller step keeps it stable.
        student->train();
        sgd.lr = 0.01;
        SGD optimizer(student->parameters(), sgd);
        double first = 0, last = 0, parts[3] = {0, 0, 0};
        for (int epoch = 0; epoch < 4; ++epoch) {
            loader.start_epoch(epoch);
            Batch batch;
            double sum = 0;
            int steps = 0;
            while (loader.next(batch)) {
                Taps s_taps(stages), t_taps(stages);
                ObjectiveInputs in;
                in.student_logits = student->forward(batch.images, &s_taps);
                {
                    NoGradGuard no_grad;  // the teacher is only read
                    in.teacher_logits = teacher->forward(batch.images, &t_taps);
                }
                in.labels = batch.labels;
                for (const std::string& s : stages)
                    in.features.push_back({s, s_taps.at(s), t_taps.at(s)});

                const Tensor ce = cross_entropy(in.student_logits, batch.labels);
                const Tensor kd_loss = kd->forward(in), at_loss = at->forward(in);
                const Tensor loss = ce * 0.1 + kd_loss * 0.9 + at_loss * 1000.0;
                optimizer.zero_grad();
                loss.backward();  // through the student only: the teacher's tensors have no graph
                optimizer.step();
                sum += loss.item();
                parts[0] += ce.item();
                parts[1] += kd_loss.item();
                parts[2] += at_loss.item();
                ++steps;
            }
            last = sum / steps;
            if (epoch == 0) first = last;
            std::printf("epoch %d: loss %.4f = 0.1 x ce %.4f + 0.9 x kd %.4f + 1000 x at %.6f\n",
                        epoch + 1, last, parts[0] / steps, parts[1] / steps, parts[2] / steps);
            parts[0] = parts[1] = parts[2] = 0;
        }
        if (!(last < first)) {
            std::fprintf(stderr, "distill_loop: the loss did not fall (%.4f -> %.4f)\n", first, last);
            return 1;
        }
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "distill_loop: %s\n", e.what());
        return 1;
    }
}
