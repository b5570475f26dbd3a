// distill/progress.h: what a training run prints while it runs.
//
// On a terminal, one line per epoch redrawn in place ('\r'): epoch, step/steps, running loss,
// images per second and the time left in the epoch. Anywhere else (a log file, a pipe, CI), a
// plain line every log_every steps instead, so logs stay readable. Either way, each epoch ends
// with one summary line: train loss, validation and test top-1, seconds, images per second.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace retort {

struct EpochSummary {
    std::int64_t epoch = 0, epochs = 0;
    double train_loss = 0;
    double val_top1 = -1, test_top1 = -1;  // -1: split absent
    double seconds = 0, images_per_second = 0;
    bool best = false;
};

class ProgressPrinter {
public:
    // out == nullptr prints nothing; live selects the redrawn line (normally isatty(stdout)).
    ProgressPrinter(std::FILE* out, bool live, std::int64_t log_every)
        : out_(out), live_(live), log_every_(log_every) {}

    // steps_done: steps of this epoch already trained before this process took over (a run
    // resumed part way through an epoch); they are left out of the time-left estimate.
    void begin_epoch(std::int64_t epoch, std::int64_t epochs, std::int64_t steps,
                     std::int64_t steps_done = 0);
    // After step `step` (1-based within the epoch); seconds: this process's training time in
    // the epoch so far.
    void step(std::int64_t step, double loss, double lr, std::int64_t images, double seconds);
    // A one-word status while validation and test run ("val", "test"); live mode only.
    void evaluating(const std::string& split);
    void end_epoch(const EpochSummary& summary);
    void message(const std::string& line);
    // The progress line after `step` (what step() prints).
    std::string line(std::int64_t step, double loss, double lr, std::int64_t images,
                     double seconds) const;

private:
    void draw(const std::string& text);

    std::FILE* out_;
    bool live_;
    std::int64_t log_every_;
    std::int64_t epoch_ = 0, epochs_ = 0, steps_ = 0, steps_done_ = 0;
    double last_draw_ = -1;
    bool line_open_ = false;  // a live line is on screen without its newline
};

}  // namespace retort
